package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/engine/embedded"
)

// finishAs is a workflow that ends with the custom status a saga leaves:
// the outcome's status, named by its input.
func finishAs(ctx *workflow.WorkflowContext) (any, error) {
	var status string
	if err := ctx.GetInput(&status); err != nil {
		return nil, err
	}
	ctx.SetCustomStatus(`{"status":"` + status + `"}`)
	return nil, nil
}

// TestEmbeddedRetentionPerOutcome: the embedded store purges a finished
// instance once its outcome's period has passed, reading the outcome from
// the custom status: a completed saga goes after its short period, a
// compensated one stays for its longer one, and a period of zero keeps
// failed ones.
func TestEmbeddedRetentionPerOutcome(t *testing.T) {
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Config{
		Kind:      engine.KindEmbedded,
		Embedded:  embedded.Config{DBPath: filepath.Join(t.TempDir(), "wf.db")},
		Retention: engine.Retention{Completed: time.Second, Compensated: time.Hour},
	}, engine.Registry{Workflows: map[string]workflow.Workflow{"FinishAs": finishAs}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	for _, status := range []string{"completed", "compensated", "failed"} {
		if _, err := e.Start(ctx, "FinishAs", "r-"+status, []byte(`"`+status+`"`)); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, e, "r-"+status, "COMPLETED")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := e.Get(ctx, "r-completed")
		if errors.Is(err, engine.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the completed saga was not purged after its period: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, id := range []string{"r-compensated", "r-failed"} {
		if st, err := e.Get(ctx, id); err != nil || st.RuntimeStatus != "COMPLETED" {
			t.Errorf("%s: %+v, %v; want it kept", id, st, err)
		}
	}
}
