package engine_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/engine"
)

// TestCloseWithWorkInFlightReturns closes the embedded engine while
// instances are between steps, six times over, and then finds every
// instance finished after one more start: Close returns with work in
// flight, and what it abandoned runs on the next start. (The durabletask-go
// race that once made Close hang, see embedded.Hub.Stop, is too rare to be
// triggered on purpose; this keeps the path it takes exercised.)
func TestCloseWithWorkInFlightReturns(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for round := range 6 {
		e := startEmbedded(t, dir)
		for i := range 150 {
			id := fmt.Sprintf("r%d-%03d", round, i)
			if _, err := e.Start(ctx, "GreetAfterApproval", id, []byte(`"ada"`)); err != nil {
				t.Fatal(err)
			}
			if err := e.Raise(ctx, id, "approval", []byte(`"yes"`), engine.RaiseOptions{ReportFinished: true}); err != nil {
				t.Fatal(err)
			}
		}
		closed := make(chan error, 1)
		go func() { closed <- e.Close(context.Background()) }()
		select {
		case err := <-closed:
			if err != nil {
				t.Logf("round %d: close: %v", round, err)
			}
		case <-time.After(2 * time.Minute):
			buf := make([]byte, 1<<22)
			t.Fatalf("round %d: Close with work in flight did not return in 2 minutes; goroutines:\n%s", round, buf[:runtime.Stack(buf, true)])
		}
	}
	e := startEmbedded(t, dir)
	defer e.Close(ctx)
	for round := range 6 {
		for i := range 150 {
			waitStatusFor(t, e, fmt.Sprintf("r%d-%03d", round, i), "COMPLETED", time.Minute)
		}
	}
}
