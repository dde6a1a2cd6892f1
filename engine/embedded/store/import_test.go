package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/api"
	"github.com/dapr/durabletask-go/backend"
	"github.com/dapr/durabletask-go/backend/sqlite"
	"github.com/dapr/durabletask-go/task"
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
	w := backend.NewTaskHubWorker(stock,
		backend.NewOrchestrationWorker(backend.OrchestratorOptions{Backend: stock, Executor: exec, Logger: quietLogger{}}),
		backend.NewActivityTaskWorker(stock, exec, quietLogger{}), quietLogger{})
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	client := backend.NewTaskHubClient(stock)
	if _, err := client.ScheduleNewOrchestration(ctx, "W", api.WithInstanceID("run")); err != nil {
		t.Fatal(err)
	}
	if _, err := client.ScheduleNewOrchestration(ctx, "Quick", api.WithInstanceID("done")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		md, err := stock.GetOrchestrationMetadata(ctx, "done")
		st, err2 := stock.GetOrchestrationRuntimeState(ctx, &backend.OrchestrationWorkItem{InstanceID: "run"})
		if err2 != nil {
			t.Fatal(err2)
		}
		n := 0
		for _, e := range st.OldEvents {
			if e.GetTaskCompleted() != nil {
				n++
			}
		}
		if err == nil && md.RuntimeStatus == api.RUNTIME_STATUS_COMPLETED && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("stock backend did not run the instances")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The event is raised once the stock workers stopped: it waits in the
	// stock NewEvents table.
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := client.RaiseEvent(ctx, "run", "go", api.WithEventPayload("b")); err != nil {
		t.Fatal(err)
	}

	h := startHubWith(t, path, 4, r)
	defer h.stop()
	md := waitStatus(t, h.be, "run", api.RUNTIME_STATUS_COMPLETED)
	if md.GetOutput().GetValue() != `"ab"` || md.Name != "W" {
		t.Fatalf("imported running instance: %v", md)
	}
	md = waitStatus(t, h.be, "done", api.RUNTIME_STATUS_COMPLETED)
	if md.GetOutput().GetValue() != `"quick"` || md.CreatedAt.AsTime().Before(time.Now().Add(-time.Minute)) {
		t.Fatalf("imported finished instance: %v", md)
	}
}
