package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/workflow"
	"go.uber.org/zap/zaptest"

	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/engine/embedded"
)

func Greet(ctx workflow.ActivityContext) (any, error) {
	var name string
	if err := ctx.GetInput(&name); err != nil {
		return nil, err
	}
	return "hello " + name, nil
}

func GreetAfterApproval(ctx *workflow.WorkflowContext) (any, error) {
	var name string
	if err := ctx.GetInput(&name); err != nil {
		return nil, err
	}
	var approval string
	if err := ctx.WaitForExternalEvent("approval", time.Minute).Await(&approval); err != nil {
		return nil, err
	}
	var out string
	if err := ctx.CallActivity(Greet, workflow.WithActivityInput(name)).Await(&out); err != nil {
		return nil, err
	}
	return out + " (" + approval + ")", nil
}

func startEmbedded(t *testing.T, dir string) *engine.Engine {
	t.Helper()
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Config{
		Kind:     engine.KindEmbedded,
		Embedded: embedded.Config{DBPath: filepath.Join(dir, "wf.db")},
	}, engine.Registry{
		Workflows:  map[string]workflow.Workflow{"GreetAfterApproval": GreetAfterApproval},
		Activities: map[string]workflow.Activity{"Greet": Greet},
	}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("start engine: %v", err)
	}
	return e
}

func waitStatus(t *testing.T, e *engine.Engine, id, want string) engine.Status {
	t.Helper()
	return waitStatusFor(t, e, id, want, 20*time.Second)
}

func waitStatusFor(t *testing.T, e *engine.Engine, id, want string, d time.Duration) engine.Status {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st, err := e.Get(context.Background(), id)
		if err == nil && st.RuntimeStatus == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s: want %s, last %+v err %v", id, want, st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEmbeddedEngineOneMeaning(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := startEmbedded(t, dir)

	oneMeaning(t, e)

	// A second process may not open the same database.
	if _, err := engine.New(ctx, engine.Config{Embedded: embedded.Config{DBPath: filepath.Join(dir, "wf.db")}}, engine.Registry{}, nil); err == nil {
		t.Fatal("second engine on the same database started")
	}

	// State survives a restart: start an instance, stop, restart, finish it.
	if _, err := e.Start(ctx, "GreetAfterApproval", "g-2", []byte(`"bob"`)); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, "g-2", "RUNNING")
	if err := e.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	e = startEmbedded(t, dir)
	defer e.Close(ctx)
	if err := e.Raise(ctx, "g-2", "approval", []byte(`"ok"`), engine.RaiseOptions{ReportFinished: true}); err != nil {
		t.Fatalf("raise after restart: %v", err)
	}
	if st := waitStatus(t, e, "g-2", "COMPLETED"); st.Output != `"hello bob (ok)"` {
		t.Fatalf("output after restart %q", st.Output)
	}
}

// oneMeaning checks what the bridge relies on, on any engine: a raise on a
// missing instance is ErrNotFound; a second start of an instance ID while
// it runs is success with started=false and is counted; the instance
// completes; a raise on it then is ErrFinished; a start after it finished
// is success and does not run it again.
func oneMeaning(t *testing.T, e *engine.Engine) {
	t.Helper()
	ctx := context.Background()
	err := e.Raise(ctx, "missing-1", "approval", []byte(`"yes"`), engine.RaiseOptions{ReportFinished: true})
	if !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("raise on missing instance: want ErrNotFound, got %v", err)
	}

	started, err := e.Start(ctx, "GreetAfterApproval", "g-1", []byte(`"ada"`))
	if err != nil || !started {
		t.Fatalf("first start: started=%v err=%v", started, err)
	}
	started, err = e.Start(ctx, "GreetAfterApproval", "g-1", []byte(`"ada"`))
	if err != nil || started {
		t.Fatalf("second start: want started=false and no error, got started=%v err=%v", started, err)
	}
	if got := e.DuplicateStarts(); got != 1 {
		t.Fatalf("duplicate starts counted %d, want 1", got)
	}
	if err := e.Raise(ctx, "g-1", "approval", []byte(`"yes"`), engine.RaiseOptions{ReportFinished: true}); err != nil {
		t.Fatalf("raise: %v", err)
	}
	st := waitStatus(t, e, "g-1", "COMPLETED")
	if st.Output != `"hello ada (yes)"` {
		t.Fatalf("output %q", st.Output)
	}
	if err := e.Raise(ctx, "g-1", "approval", []byte(`"again"`), engine.RaiseOptions{ReportFinished: true}); !errors.Is(err, engine.ErrFinished) {
		t.Fatalf("raise on finished instance: want ErrFinished, got %v", err)
	}

	// A start redelivered after the saga finished must not run it again.
	// The ID reuse policy makes the engine ignore it, without saying so:
	// it is success, not counted as a duplicate.
	if _, err := e.Start(ctx, "GreetAfterApproval", "g-1", []byte(`"eve"`)); err != nil {
		t.Fatalf("start of a finished instance: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // a re-run would have begun by now
	if st, err := e.Get(ctx, "g-1"); err != nil || st.RuntimeStatus != "COMPLETED" || st.Output != `"hello ada (yes)"` {
		t.Fatalf("finished instance after a second start: %+v, %v", st, err)
	}
}

// TestStartOfUnregisteredWorkflowIsRefused: a start of a name this worker
// does not run stores nothing; and Workflow, which access checks read,
// names an instance's workflow.
func TestStartOfUnregisteredWorkflowIsRefused(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	defer e.Close(context.Background())
	ctx := t.Context()
	if _, err := e.Start(ctx, "NoSuchWorkflow", "nope-1", nil); !errors.Is(err, engine.ErrUnknownWorkflow) {
		t.Fatalf("start of an unregistered workflow: %v", err)
	}
	if _, err := e.Get(ctx, "nope-1"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("the refused start left an instance: %v", err)
	}
	if _, err := e.Start(ctx, "GreetAfterApproval", "wf-1", []byte(`"ann"`)); err != nil {
		t.Fatal(err)
	}
	if name, err := e.Workflow(ctx, "wf-1"); err != nil || name != "GreetAfterApproval" {
		t.Fatalf("workflow of wf-1: %q, %v", name, err)
	}
	if _, err := e.Workflow(ctx, "nobody"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("workflow of a missing instance: %v", err)
	}
}
