package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/backend"
	"github.com/microsoft/durabletask-go/backend/sqlite"
	"github.com/microsoft/durabletask-go/task"
)

// TestImportStock: instances the stock SQLite backend left in the file (a
// running one waiting for an event, a finished one) go on under the store.
func TestImportStock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wf.db")
	r := task.NewTaskRegistry()
	_ = r.AddOrchestratorN("W", func(ctx *task.OrchestrationContext) (any, error) {
		var a string
		if err := ctx.CallActivity("A", task.WithActivityInput("x")).Await(&a); err != nil {
			return nil, err
		}
		var b string
		if err := ctx.WaitForSingleEvent("go", time.Minute).Await(&b); err != nil {
			return nil, err
		}
		return a + b, nil
	})
	_ = r.AddOrchestratorN("Quick", func(ctx *task.OrchestrationContext) (any, error) { return "quick", nil })
	_ = r.AddActivityN("A", func(ctx task.ActivityContext) (any, error) { return "a", nil })

	ctx := context.Background()
	stock := sqlite.NewSqliteBackend(sqlite.NewSqliteOptions("file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)"), quietLogger{})
	exec := task.NewTaskExecutor(r)
	polls := pollStopLogger{stopped: make(chan struct{}, 2)}
	w := backend.NewTaskHubWorker(stock,
		backend.NewOrchestrationWorker(stock, exec, polls),
		backend.NewActivityTaskWorker(stock, exec, polls), quietLogger{})
	workCtx, stopPolls := context.WithCancel(ctx)
	defer stopPolls()
	if err := w.Start(workCtx); err != nil {
		t.Fatal(err)
	}
	client := backend.NewTaskHubClient(stock)
	if _, err := client.ScheduleNewOrchestration(ctx, "W", api.WithInstanceID("run")); err != nil {
		t.Fatal(err)
	}
	if _, err := client.ScheduleNewOrchestration(ctx, "Quick", api.WithInstanceID("done")); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, stock, "done", api.RUNTIME_STATUS_COMPLETED)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := stock.GetOrchestrationRuntimeState(ctx, &backend.OrchestrationWorkItem{InstanceID: "run"})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range st.OldEvents() {
			if e.GetTaskCompleted() != nil {
				n++
			}
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("stock backend did not run the activity")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The event is raised once the stock workers stopped: it waits in the
	// stock NewEvents table.
	//
	// durabletask-go v0.5.0's workers add to their WaitGroup on every poll,
	// so a Shutdown (which waits on it) while a poll starts misuses the
	// WaitGroup: the race detector caught it in CI. Stop the polls first
	// and wait until both workers say so.
	stopPolls()
	for range 2 {
		select {
		case <-polls.stopped:
		case <-time.After(20 * time.Second):
			t.Fatal("stock workers did not stop polling")
		}
	}
	_ = w.Shutdown(ctx)
	if err := client.RaiseEvent(ctx, "run", "go", api.WithEventPayload("b")); err != nil {
		t.Fatal(err)
	}

	h := startHubWith(t, path, 4, r)
	defer h.stop()
	md := waitStatus(t, h.be, "run", api.RUNTIME_STATUS_COMPLETED)
	if md.SerializedOutput != `"ab"` || md.Name != "W" {
		t.Fatalf("imported running instance: %+v", md)
	}
	md = waitStatus(t, h.be, "done", api.RUNTIME_STATUS_COMPLETED)
	if md.SerializedOutput != `"quick"` || md.CreatedAt.IsZero() || md.CreatedAt.Before(time.Now().Add(-time.Minute)) {
		t.Fatalf("imported finished instance: %+v", md)
	}
}

// pollStopLogger is quiet but for the line a durabletask worker logs when
// its polling loop has ended.
type pollStopLogger struct {
	quietLogger
	stopped chan struct{}
}

func (l pollStopLogger) Infof(format string, _ ...any) {
	if format == "%v: stopped listening for new work items" {
		l.stopped <- struct{}{}
	}
}
