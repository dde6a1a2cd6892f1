// Package ignore checks the //workflowcheck:ignore directive.
package ignore

import (
	"math/rand"
	"os"
	"time"

	"github.com/dapr/durabletask-go/workflow"
)

func Saga(ctx *workflow.WorkflowContext) (any, error) {
	_ = time.Now() //workflowcheck:ignore logged only, never used for decisions

	//workflowcheck:ignore
	_ = rand.Intn(3)

	//workflowcheck:ignore only covers the next line
	_ = os.Getenv("A")
	_ = os.Getenv("B") // want `os\.Getenv in workflow function Saga`

	// workflowcheck:ignore with a space is an ordinary comment, not a directive
	_ = time.Now() // want `time\.Now in workflow function Saga`

	//workflowcheck:ignore the whole closure is opted out
	go func() {
		_ = time.Now()
	}()

	debug()
	return nil, nil
}

// debug is opted out as a whole, so neither it nor what it calls is checked.
//
//workflowcheck:ignore
func debug() {
	_ = time.Now()
	deeper()
}

func deeper() { _ = time.Now() }

//workflowcheck:ignore a whole workflow can be opted out
func Legacy(ctx *workflow.WorkflowContext) (any, error) {
	_ = time.Now()
	return nil, nil
}
