// Package concurrency covers goroutines, select and channels.
package concurrency

import "github.com/dapr/durabletask-go/workflow"

func Fanout(ctx *workflow.WorkflowContext) (any, error) {
	ch := make(chan int, 1)
	go func() {}() // want `go statement in workflow function Fanout: goroutines are not replayed`
	ch <- 1        // want `channel send in workflow function Fanout: channels are not replayed`
	<-ch           // want `channel receive in workflow function Fanout`
	select {       // want `select statement in workflow function Fanout: ready cases are chosen at random`
	case v := <-ch: // want `channel receive in workflow function Fanout`
		_ = v
	default:
	}
	for range ch { // want `range over channel in workflow function Fanout`
	}
	return nil, nil
}

// Tasks is the replay-safe way to fan out.
func Tasks(ctx *workflow.WorkflowContext) (any, error) {
	var tasks []workflow.Task
	for i := 0; i < 3; i++ {
		tasks = append(tasks, ctx.CallActivity(Work, workflow.WithActivityInput(i)))
	}
	for _, t := range tasks {
		if err := t.Await(nil); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func Work(ctx workflow.ActivityContext) (any, error) {
	done := make(chan struct{})
	go func() { close(done) }()
	<-done
	return nil, nil
}
