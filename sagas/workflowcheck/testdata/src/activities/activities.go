// Package activities checks that activity code may do anything.
package activities

import (
	"math/rand"
	"os"
	"time"

	"github.com/dapr/durabletask-go/workflow"
)

// Charge is an activity: it runs once and its result is recorded.
func Charge(ctx workflow.ActivityContext) (any, error) {
	_ = time.Now()
	_ = rand.Intn(3)
	_ = os.Getenv("PAYMENT_URL")
	return nil, nil
}

// PointerActivity takes the context by pointer; still an activity.
func PointerActivity(ctx *workflow.ActivityContext) (any, error) {
	time.Sleep(time.Millisecond)
	return nil, nil
}

// chargeHelper is only called from the activity, so it is never checked.
func chargeHelper() { _ = time.Now() }

func ChargeWithHelper(ctx workflow.ActivityContext) (any, error) {
	chargeHelper()
	return nil, nil
}

func Saga(ctx *workflow.WorkflowContext) (any, error) {
	// Named activities are values, not calls: not followed.
	if err := ctx.CallActivity(Charge, workflow.WithActivityInput(1)).Await(nil); err != nil {
		return nil, err
	}
	// Literal activities with an ActivityContext parameter are exempt.
	_ = ctx.CallActivity(func(actx workflow.ActivityContext) (any, error) {
		return time.Now(), nil
	})
	// Any literal handed to CallActivity runs as an activity.
	_ = ctx.CallActivity(func() int { return rand.Intn(3) })
	// But the other arguments are evaluated by the workflow.
	_ = ctx.CallActivity(Charge, workflow.WithActivityInput(time.Now())) // want `time\.Now in workflow function Saga`
	// A direct call to an activity function is not followed either.
	_, _ = Charge(nil)
	return nil, nil
}

var register = []workflow.Activity{
	func(ctx workflow.ActivityContext) (any, error) { return os.Hostname() },
}
