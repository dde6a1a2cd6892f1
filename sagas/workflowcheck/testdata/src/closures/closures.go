// Package closures checks function literals, both as workflows and inside them.
package closures

import (
	"math/rand"
	"time"

	"github.com/dapr/durabletask-go/workflow"
)

// A workflow literal assigned to a package-level variable.
var Approval = func(ctx *workflow.WorkflowContext) (any, error) {
	_ = time.Now() // want `time\.Now in workflow function Approval`
	return nil, nil
}

func Register(register func(workflow.Workflow)) {
	_ = time.Now() // Register itself is not a workflow.
	register(func(ctx *workflow.WorkflowContext) (any, error) {
		_ = rand.Intn(2) // want `rand\.Intn in workflow func literal in Register`
		return nil, nil
	})
	local := func(ctx *workflow.WorkflowContext) (any, error) {
		time.Sleep(time.Second) // want `time\.Sleep in workflow function local`
		return nil, nil
	}
	register(local)
}

// Closures inside a workflow are workflow code.
func Outer(ctx *workflow.WorkflowContext) (any, error) {
	stamp := func() time.Time {
		return time.Now() // want `time\.Now in workflow function Outer`
	}
	_ = stamp()
	defer func() {
		_ = rand.Int() // want `rand\.Int in workflow function Outer`
	}()
	// A nested workflow literal is checked as its own workflow.
	child := func(ctx *workflow.WorkflowContext) (any, error) {
		_ = time.Now() // want `time\.Now in workflow function child`
		return nil, nil
	}
	_ = ctx.CallChildWorkflow(child)
	return nil, nil
}
