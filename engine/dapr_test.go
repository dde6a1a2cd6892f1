package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/api/protos"
	"github.com/dapr/durabletask-go/workflow"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/internal/daprtest"
)

func startDapr(t *testing.T, sidecar *daprtest.Sidecar) *engine.Engine {
	t.Helper()
	e, err := engine.New(context.Background(), engine.Config{
		Kind: engine.KindDapr,
		Dapr: engine.DaprConfig{GRPCEndpoint: sidecar.GRPCAddr()},
	}, engine.Registry{
		Workflows:  map[string]workflow.Workflow{"GreetAfterApproval": GreetAfterApproval},
		Activities: map[string]workflow.Activity{"Greet": Greet},
	}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("start engine on daprd: %v", err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	waitWorkflowsRun(t, e)
	return e
}

// waitWorkflowsRun runs one instance to completion before the test's own.
// daprd v1.14 connects its scheduler stream only after the worker has
// registered the workflow actors; a reminder that fires before that is
// lost ("no connections available" in the scheduler's log, seen in CI)
// and runs again on the reminder period, a minute later. The tests' own
// waits are shorter than that, so they start on a sidecar past it.
func waitWorkflowsRun(t *testing.T, e *engine.Engine) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.Start(ctx, "GreetAfterApproval", "ready-probe", []byte(`"probe"`)); err != nil {
		t.Fatalf("probe start: %v", err)
	}
	if err := e.Raise(ctx, "ready-probe", "approval", []byte(`"ok"`), engine.RaiseOptions{ReportFinished: true}); err != nil {
		t.Fatalf("probe raise: %v", err)
	}
	waitStatusFor(t, e, "ready-probe", "COMPLETED", 150*time.Second)
}

// TestDaprEngineOneMeaning runs the checks of the embedded engine against a
// real daprd with a Redis actor state store, with the workflow reminders in
// the scheduler and, as Dapr 1.14 keeps them by default, in the state store.
func TestDaprEngineOneMeaning(t *testing.T) {
	for _, stateStoreReminders := range []bool{false, true} {
		name := "scheduler-reminders"
		if stateStoreReminders {
			name = "state-store-reminders"
		}
		t.Run(name, func(t *testing.T) {
			sidecar := daprtest.Start(t, daprtest.Options{StateStoreReminders: stateStoreReminders})
			e := startDapr(t, sidecar)
			if e.Kind() != engine.KindDapr {
				t.Fatalf("kind %q", e.Kind())
			}
			if err := e.Ping(context.Background()); err != nil {
				t.Fatalf("ping: %v", err)
			}
			oneMeaning(t, e)
		})
	}
}

// TestDaprEngineSurvivesSidecarKill: an instance waiting for an event when
// daprd is killed is still there after daprd restarts, and the same engine
// (its worker reconnects by itself) finishes it. While daprd is down the
// engine says ErrUnavailable, which the bridge retries.
func TestDaprEngineSurvivesSidecarKill(t *testing.T) {
	ctx := context.Background()
	sidecar := daprtest.Start(t, daprtest.Options{})
	e := startDapr(t, sidecar)

	if _, err := e.Start(ctx, "GreetAfterApproval", "k-1", []byte(`"bob"`)); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, "k-1", "RUNNING")

	sidecar.Kill()
	callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := e.Raise(callCtx, "k-1", "approval", []byte(`"ok"`), engine.RaiseOptions{ReportFinished: true})
	cancel()
	if !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("raise with daprd down: want ErrUnavailable, got %v", err)
	}
	callCtx, cancel = context.WithTimeout(ctx, 5*time.Second)
	_, err = e.Start(callCtx, "GreetAfterApproval", "k-2", []byte(`"eve"`))
	cancel()
	if !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("start with daprd down: want ErrUnavailable, got %v", err)
	}

	sidecar.Restart()
	// The bridge retries what the engine refused while daprd came back.
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := e.Raise(ctx, "k-1", "approval", []byte(`"ok"`), engine.RaiseOptions{ReportFinished: true})
		if err == nil {
			break
		}
		if !errors.Is(err, engine.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("raise after restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// daprd v1.14 resumes a workflow that was between steps when its
	// sidecar died on the workflow reminder period, one minute.
	if st := waitStatusFor(t, e, "k-1", "COMPLETED", 2*time.Minute); st.Output != `"hello bob (ok)"` {
		t.Fatalf("output after restart %q", st.Output)
	}
}

// TestDaprStrandedStartIsDriven: an instance daprd 1.16.0 stranded in
// PENDING (saved, but no reminder to run it: its sidecar died while it
// created it) runs once its start event comes again. The repeated start
// is refused as "already exists" and counts as a duplicate; the engine
// sees the instance pending and nudges it with an event, which makes
// daprd run its inbox.
func TestDaprStrandedStartIsDriven(t *testing.T) {
	ctx := context.Background()
	pg := daprtest.StartPostgres(t)
	sidecar := daprtest.Start(t, daprtest.Options{StateStore: pg})
	e := startDapr(t, sidecar)

	const id = "stranded-1"
	started := &protos.HistoryEvent{
		EventId:   -1,
		Timestamp: timestamppb.Now(),
		EventType: &protos.HistoryEvent_ExecutionStarted{ExecutionStarted: &protos.ExecutionStartedEvent{
			Name:  "GreetAfterApproval",
			Input: wrapperspb.String(`"stranded"`),
			OrchestrationInstance: &protos.OrchestrationInstance{
				InstanceId: id, ExecutionId: wrapperspb.String("e0f6e7f2-5b9c-4c3e-9d55-7d1f1b0c2a11"),
			},
		}},
	}
	if err := pg.StrandStart(ctx, sidecar.AppID(), started); err != nil {
		t.Fatalf("strand a start: %v", err)
	}
	if st, err := e.Get(ctx, id); err != nil || st.RuntimeStatus != "PENDING" {
		t.Fatalf("stranded instance: %+v %v, want PENDING", st, err)
	}

	started2, err := e.Start(ctx, "GreetAfterApproval", id, []byte(`"stranded"`))
	if err != nil || started2 {
		t.Fatalf("repeated start: started=%v err=%v, want a duplicate", started2, err)
	}
	if n := e.PendingNudges(); n != 1 {
		t.Fatalf("%d pending instances nudged, want 1", n)
	}
	waitStatusFor(t, e, id, "RUNNING", 30*time.Second)
	if err := e.Raise(ctx, id, "approval", []byte(`"ok"`), engine.RaiseOptions{}); err != nil {
		t.Fatal(err)
	}
	st := waitStatusFor(t, e, id, "COMPLETED", 30*time.Second)
	if st.Output != `"hello stranded (ok)"` {
		t.Errorf("output %s", st.Output)
	}

	// A repeated start of an instance that runs nudges nothing.
	if _, err := e.Start(ctx, "GreetAfterApproval", "running-1", []byte(`"running"`)); err != nil {
		t.Fatal(err)
	}
	waitStatusFor(t, e, "running-1", "RUNNING", 30*time.Second)
	if started, err := e.Start(ctx, "GreetAfterApproval", "running-1", []byte(`"running"`)); err != nil || started {
		t.Fatalf("repeated start of a running instance: started=%v err=%v, want a duplicate", started, err)
	}
	if n := e.PendingNudges(); n != 1 {
		t.Errorf("%d pending instances nudged after a repeated start of a running one, want 1", n)
	}
}
