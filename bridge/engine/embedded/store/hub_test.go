package store_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/backend"
	"github.com/microsoft/durabletask-go/task"

	"github.com/sagabridge/sagabridge/bridge/engine/embedded/store"
)

// testHub runs the store with durabletask's own workers and its in-process
// executor: the same backend contract the embedded hub uses, without gRPC.
type testHub struct {
	be     *store.Backend
	client backend.TaskHubClient
	worker backend.TaskHubWorker
}

func probeRegistry() *task.TaskRegistry {
	r := task.NewTaskRegistry()
	_ = r.AddOrchestratorN("ProbeSaga", func(ctx *task.OrchestrationContext) (any, error) {
		for i := 0; i < 3; i++ {
			if err := ctx.CallActivity("ProbeStep", task.WithActivityInput(i)).Await(nil); err != nil {
				return nil, err
			}
		}
		if err := ctx.WaitForSingleEvent("approval", 10*time.Minute).Await(nil); err != nil {
			return nil, err
		}
		return nil, ctx.CallActivity("ProbeDone", task.WithActivityInput(string(ctx.ID))).Await(nil)
	})
	_ = r.AddActivityN("ProbeStep", func(ctx task.ActivityContext) (any, error) { return 1, nil })
	_ = r.AddActivityN("ProbeDone", func(ctx task.ActivityContext) (any, error) {
		var id string
		if err := ctx.GetInput(&id); err != nil {
			return nil, err
		}
		if ch, ok := probeDone.LoadAndDelete(id); ok {
			close(ch.(chan struct{}))
		}
		return nil, nil
	})
	return r
}

func startHubWith(t testing.TB, path string, par int32, r *task.TaskRegistry) *testHub {
	t.Helper()
	be, err := store.Open(store.Options{Path: path, Synchronous: os.Getenv("STORE_SYNCHRONOUS")})
	if err != nil {
		t.Fatal(err)
	}
	exec := task.NewTaskExecutor(r)
	nop := quietLogger{}
	w := backend.NewTaskHubWorker(be,
		backend.NewOrchestrationWorker(be, exec, nop, backend.WithMaxParallelism(par)),
		backend.NewActivityTaskWorker(be, exec, nop, backend.WithMaxParallelism(par)), nop)
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &testHub{be: be, client: backend.NewTaskHubClient(be), worker: w}
}

func startHub(t testing.TB, path string, par int32) *testHub {
	return startHubWith(t, path, par, probeRegistry())
}

func (h *testHub) stop() {
	_ = h.worker.Shutdown(context.Background())
	_ = h.be.Close()
}

func (h *testHub) startAndRaise(t testing.TB, ctx context.Context, id string) {
	if _, err := h.client.ScheduleNewOrchestration(ctx, "ProbeSaga", api.WithInstanceID(api.InstanceID(id))); err != nil {
		t.Fatal(err)
	}
	if err := h.client.RaiseEvent(ctx, api.InstanceID(id), "approval"); err != nil {
		t.Fatal(err)
	}
}

type quietLogger struct{}

func (quietLogger) Debug(...any)          {}
func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Info(...any)           {}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Warn(...any)           {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Error(...any)          {}
func (quietLogger) Errorf(string, ...any) {}
