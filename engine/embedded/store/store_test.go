package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/api"
	"github.com/dapr/durabletask-go/api/protos"
	"github.com/dapr/durabletask-go/backend"
	"github.com/dapr/durabletask-go/backend/runtimestate"
	"github.com/dapr/durabletask-go/task"

	"github.com/sagabridge/sagabridge/engine/embedded/store"
)

func open(t testing.TB, path string) *store.Backend {
	t.Helper()
	be, err := store.Open(store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// create starts an instance through durabletask's client, which builds the
// ExecutionStarted event as the gRPC executor does.
func create(t testing.TB, be backend.Backend, id string, opts ...api.NewOrchestrationOptions) error {
	t.Helper()
	_, err := backend.NewTaskHubClient(be).ScheduleNewOrchestration(context.Background(), "W",
		append([]api.NewOrchestrationOptions{api.WithInstanceID(api.InstanceID(id))}, opts...)...)
	return err
}

func raise(t testing.TB, be backend.Backend, id, name string) error {
	t.Helper()
	return backend.NewTaskHubClient(be).RaiseEvent(context.Background(), api.InstanceID(id), name)
}

// fetch gets an orchestration work item or fails after d.
func fetch(t testing.TB, be backend.Backend, d time.Duration) (*backend.OrchestrationWorkItem, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return be.NextOrchestrationWorkItem(ctx)
}

// complete commits a work item that only appends its events (no actions).
func complete(t testing.TB, be backend.Backend, wi *backend.OrchestrationWorkItem) {
	t.Helper()
	ctx := context.Background()
	st, err := be.GetOrchestrationRuntimeState(ctx, wi)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range wi.NewEvents {
		_ = runtimestate.AddEvent(st, e)
	}
	wi.State = st
	if err := be.CompleteOrchestrationWorkItem(ctx, wi); err != nil {
		t.Fatal(err)
	}
}

func eventNames(wi *backend.OrchestrationWorkItem) []string {
	var out []string
	for _, e := range wi.NewEvents {
		switch {
		case e.GetExecutionStarted() != nil:
			out = append(out, "started")
		case e.GetEventRaised() != nil:
			out = append(out, "raised:"+e.GetEventRaised().Name)
		case e.GetExecutionTerminated() != nil:
			out = append(out, "terminated")
		default:
			out = append(out, fmt.Sprintf("%T", e.EventType))
		}
	}
	return out
}

func policy(action api.CreateOrchestrationAction, statuses ...api.OrchestrationStatus) api.NewOrchestrationOptions {
	return api.WithOrchestrationIdReusePolicy(&api.OrchestrationIdReusePolicy{OperationStatus: statuses, Action: action})
}

func TestDuplicateCreateAndReusePolicy(t *testing.T) {
	be := open(t, filepath.Join(t.TempDir(), "wf.db"))
	defer be.Close()
	if err := create(t, be, "a"); err != nil {
		t.Fatal(err)
	}
	err := create(t, be, "a")
	if !errors.Is(err, api.ErrDuplicateInstance) {
		t.Fatalf("second create: want ErrDuplicateInstance, got %v", err)
	}
	// The message is what the engine layer recognises through gRPC.
	if want := "already exists"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	// A policy for other statuses does not apply to a PENDING instance.
	if err := create(t, be, "a", policy(api.REUSE_ID_ACTION_IGNORE, api.RUNTIME_STATUS_COMPLETED)); !errors.Is(err, api.ErrDuplicateInstance) {
		t.Fatalf("create with policy for other statuses: %v", err)
	}
	if err := create(t, be, "a", policy(api.REUSE_ID_ACTION_IGNORE, api.RUNTIME_STATUS_PENDING)); err != nil {
		t.Fatalf("create with IGNORE: %v", err)
	}
	// One work item, with one ExecutionStarted: nothing was added twice.
	wi, err := fetch(t, be, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := eventNames(wi); len(got) != 1 || got[0] != "started" {
		t.Fatalf("events %v", got)
	}
	// TERMINATE replaces the instance, even while a work item is out; the
	// stale work item can then be neither completed nor put back.
	if err := create(t, be, "a", policy(api.REUSE_ID_ACTION_TERMINATE, api.RUNTIME_STATUS_PENDING, api.RUNTIME_STATUS_RUNNING)); err != nil {
		t.Fatalf("create with TERMINATE: %v", err)
	}
	st, _ := be.GetOrchestrationRuntimeState(context.Background(), wi)
	for _, e := range wi.NewEvents {
		_ = runtimestate.AddEvent(st, e)
	}
	wi.State = st
	if err := be.CompleteOrchestrationWorkItem(context.Background(), wi); !errors.Is(err, backend.ErrWorkItemLockLost) {
		t.Fatalf("complete of a replaced instance's work item: %v", err)
	}
	if err := be.AbandonOrchestrationWorkItem(context.Background(), wi); err != nil {
		t.Fatalf("abandon of a replaced instance's work item: %v", err)
	}
	wi2, err := fetch(t, be, time.Second)
	if err != nil {
		t.Fatalf("new instance's work item: %v", err)
	}
	if got := eventNames(wi2); len(got) != 1 || got[0] != "started" {
		t.Fatalf("new instance events %v", got)
	}
}

// TestReuseIgnoreOnFinished: with reuse policy IGNORE for the finished
// statuses, a start of a completed, failed or terminated ID does nothing
// and succeeds (the engine layer's duplicate start); of a running ID it
// still fails with "already exists".
func TestReuseIgnoreOnFinished(t *testing.T) {
	r := task.NewTaskRegistry()
	_ = r.AddOrchestratorN("W", func(ctx *task.OrchestrationContext) (any, error) {
		var mode string
		_ = ctx.GetInput(&mode)
		switch mode {
		case "fail":
			return nil, errors.New("boom")
		case "wait":
			return nil, ctx.WaitForSingleEvent("go", time.Hour).Await(nil)
		}
		return "done", nil
	})
	h := startHubWith(t, filepath.Join(t.TempDir(), "wf.db"), 4, r)
	defer h.stop()
	ctx := context.Background()
	ignore := policy(api.REUSE_ID_ACTION_IGNORE, api.RUNTIME_STATUS_COMPLETED, api.RUNTIME_STATUS_FAILED, api.RUNTIME_STATUS_TERMINATED)
	start := func(id, mode string, opts ...api.NewOrchestrationOptions) error {
		_, err := h.client.ScheduleNewOrchestration(ctx, "W", append([]api.NewOrchestrationOptions{api.WithInstanceID(api.InstanceID(id)), api.WithInput(mode)}, opts...)...)
		return err
	}
	for _, c := range []struct{ id, mode string }{{"ok", "ok"}, {"failed", "fail"}, {"terminated", "wait"}, {"running", "wait"}} {
		if err := start(c.id, c.mode); err != nil {
			t.Fatal(err)
		}
	}
	waitStatus(t, h.be, "ok", api.RUNTIME_STATUS_COMPLETED)
	waitStatus(t, h.be, "failed", api.RUNTIME_STATUS_FAILED)
	waitStatus(t, h.be, "running", api.RUNTIME_STATUS_RUNNING)
	waitStatus(t, h.be, "terminated", api.RUNTIME_STATUS_RUNNING)
	if err := h.client.TerminateOrchestration(ctx, "terminated"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, h.be, "terminated", api.RUNTIME_STATUS_TERMINATED)
	for _, id := range []string{"ok", "failed", "terminated"} {
		before, _ := h.be.GetInstanceHistory(ctx, &protos.GetInstanceHistoryRequest{InstanceId: id})
		md0, _ := h.be.GetOrchestrationMetadata(ctx, api.InstanceID(id))
		if err := start(id, "ok", ignore); err != nil {
			t.Fatalf("IGNORE start of %s: %v", id, err)
		}
		after, _ := h.be.GetInstanceHistory(ctx, &protos.GetInstanceHistoryRequest{InstanceId: id})
		md1, _ := h.be.GetOrchestrationMetadata(ctx, api.InstanceID(id))
		if len(after.Events) != len(before.Events) || md1.RuntimeStatus != md0.RuntimeStatus || !md1.LastUpdatedAt.AsTime().Equal(md0.LastUpdatedAt.AsTime()) {
			t.Fatalf("%s changed by an ignored start: %v -> %v", id, md0, md1)
		}
	}
	err := start("running", "ok", ignore)
	if !errors.Is(err, api.ErrDuplicateInstance) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("IGNORE start of a running ID: %v", err)
	}
}

func TestMissingInstance(t *testing.T) {
	be := open(t, filepath.Join(t.TempDir(), "wf.db"))
	defer be.Close()
	ctx := context.Background()
	err := raise(t, be, "nope", "x")
	if !errors.Is(err, api.ErrInstanceNotFound) || !strings.Contains(err.Error(), "no such instance exists") {
		t.Fatalf("event for a missing instance: %v", err)
	}
	if _, err := be.GetOrchestrationMetadata(ctx, "nope"); !errors.Is(err, api.ErrInstanceNotFound) {
		t.Fatalf("metadata of a missing instance: %v", err)
	}
	if err := be.PurgeOrchestrationState(ctx, "nope", false); !errors.Is(err, api.ErrInstanceNotFound) {
		t.Fatalf("purge of a missing instance: %v", err)
	}
	if _, err := be.GetInstanceHistory(ctx, &protos.GetInstanceHistoryRequest{InstanceId: "nope"}); !errors.Is(err, api.ErrInstanceNotFound) {
		t.Fatalf("history of a missing instance: %v", err)
	}
	if err := be.WatchOrchestrationRuntimeStatus(ctx, "nope", statusIs(api.RUNTIME_STATUS_COMPLETED)); !errors.Is(err, api.ErrInstanceNotFound) {
		t.Fatalf("watch of a missing instance: %v", err)
	}
	// Nothing was queued.
	if _, err := fetch(t, be, 100*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("work item after refused event: %v", err)
	}
}

// TestEventsWhileLocked: events that arrive while an instance's work item
// is out go into its next work item, and the instance is never handed out
// twice at once.
func TestEventsWhileLocked(t *testing.T) {
	be := open(t, filepath.Join(t.TempDir(), "wf.db"))
	defer be.Close()
	if err := create(t, be, "a"); err != nil {
		t.Fatal(err)
	}
	wi, err := fetch(t, be, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := raise(t, be, "a", "e1"); err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(t, be, 100*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("locked instance handed out again: %v", err)
	}
	complete(t, be, wi)
	wi, err = fetch(t, be, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := eventNames(wi); len(got) != 1 || got[0] != "raised:e1" {
		t.Fatalf("next work item %v", got)
	}
	complete(t, be, wi)
	md, err := be.GetOrchestrationMetadata(context.Background(), "a")
	if err != nil || md.RuntimeStatus != api.RUNTIME_STATUS_RUNNING || md.Name != "W" {
		t.Fatalf("metadata %+v %v", md, err)
	}
	st, err := be.GetOrchestrationRuntimeState(context.Background(), &backend.OrchestrationWorkItem{InstanceID: "a"})
	if err != nil || len(st.OldEvents) != 2 {
		t.Fatalf("history: %d events, %v", len(st.OldEvents), err)
	}
}

func TestAbandon(t *testing.T) {
	be := open(t, filepath.Join(t.TempDir(), "wf.db"))
	defer be.Close()
	if err := create(t, be, "a"); err != nil {
		t.Fatal(err)
	}
	wi, err := fetch(t, be, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if wi.RetryCount != 0 {
		t.Fatalf("first retry count %d", wi.RetryCount)
	}
	if err := raise(t, be, "a", "late"); err != nil {
		t.Fatal(err)
	}
	// First abandon: no delay; the events come back first, then the one
	// that arrived meanwhile.
	if err := be.AbandonOrchestrationWorkItem(context.Background(), wi); err != nil {
		t.Fatal(err)
	}
	if err := be.AbandonOrchestrationWorkItem(context.Background(), wi); !errors.Is(err, backend.ErrWorkItemLockLost) {
		t.Fatalf("second abandon of the same work item: %v", err)
	}
	wi, err = fetch(t, be, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := eventNames(wi); len(got) != 2 || got[0] != "started" || got[1] != "raised:late" || wi.RetryCount != 1 {
		t.Fatalf("after abandon: %v retry %d", got, wi.RetryCount)
	}
	// Second abandon: the work item's delay (1 s at retry 1).
	t0 := time.Now()
	if err := be.AbandonOrchestrationWorkItem(context.Background(), wi); err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(t, be, 500*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("abandoned work item back before its delay: %v", err)
	}
	wi, err = fetch(t, be, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 900*time.Millisecond {
		t.Fatalf("back after %v, want ~1s", d)
	}
	complete(t, be, wi)
}

// startOrchestrationWorker runs durabletask's orchestration worker alone,
// so that a test hands out activity work items itself.
func startOrchestrationWorker(be backend.Backend, exec backend.Executor) func() {
	w := backend.NewOrchestrationWorker(backend.OrchestratorOptions{Backend: be, Executor: exec, Logger: quietLogger{}})
	w.Start(context.Background())
	return w.StopAndDrain
}

func TestActivityAbandonAndComplete(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wf.db")
	r := task.NewTaskRegistry()
	_ = r.AddOrchestratorN("W", func(ctx *task.OrchestrationContext) (any, error) {
		var out string
		err := ctx.CallActivity("A").Await(&out)
		return out, err
	})
	_ = r.AddActivityN("A", func(task.ActivityContext) (any, error) { return "done", nil })
	exec := task.NewTaskExecutor(r)
	be := open(t, path)
	ctx := context.Background()
	stop := startOrchestrationWorker(be, exec)
	if err := create(t, be, "a"); err != nil {
		t.Fatal(err)
	}
	awi, err := be.NextActivityWorkItem(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := be.AbandonActivityWorkItem(ctx, awi); err != nil {
		t.Fatal(err)
	}
	if err := be.AbandonActivityWorkItem(ctx, awi); !errors.Is(err, backend.ErrWorkItemLockLost) {
		t.Fatalf("second abandon: %v", err)
	}
	actx, cancel := context.WithTimeout(ctx, time.Second)
	_, err = be.NextActivityWorkItem(actx)
	cancel()
	if err != nil {
		t.Fatalf("activity after abandon: %v", err)
	}
	// Stop with the task out: it is queued again at the next Open.
	stop()
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
	be = open(t, path)
	defer be.Close()
	stop = startOrchestrationWorker(be, exec)
	defer stop()
	actx, cancel = context.WithTimeout(ctx, time.Second)
	awi, err = be.NextActivityWorkItem(actx)
	cancel()
	if err != nil {
		t.Fatalf("activity after reopen: %v", err)
	}
	if awi.Result, err = exec.ExecuteActivity(ctx, awi.InstanceID, awi.NewEvent); err != nil {
		t.Fatal(err)
	}
	if err := be.CompleteActivityWorkItem(ctx, awi); err != nil {
		t.Fatal(err)
	}
	if err := be.CompleteActivityWorkItem(ctx, awi); !errors.Is(err, backend.ErrWorkItemLockLost) {
		t.Fatalf("second completion: %v", err)
	}
	md := waitStatus(t, be, "a", api.RUNTIME_STATUS_COMPLETED)
	if md.GetOutput().GetValue() != `"done"` {
		t.Fatalf("metadata %v", md)
	}
}

// TestQueuesRebuiltAfterReopen: pending events, activity tasks and future
// timers all survive a close (or a crash) and are queued again.
func TestQueuesRebuiltAfterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wf.db")
	be := open(t, path)
	for i := 0; i < 20; i++ {
		if err := create(t, be, fmt.Sprint("i", i)); err != nil {
			t.Fatal(err)
		}
		if err := raise(t, be, fmt.Sprint("i", i), "go"); err != nil {
			t.Fatal(err)
		}
	}
	// One of them is out when the process stops: it must come back too.
	if _, err := fetch(t, be, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
	be = open(t, path)
	defer be.Close()
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		wi, err := fetch(t, be, time.Second)
		if err != nil {
			t.Fatalf("after reopen, work item %d: %v", i, err)
		}
		if got := eventNames(wi); len(got) != 2 || got[0] != "started" || got[1] != "raised:go" {
			t.Fatalf("%s events %v", wi.InstanceID, got)
		}
		if seen[string(wi.InstanceID)] {
			t.Fatalf("%s handed out twice", wi.InstanceID)
		}
		seen[string(wi.InstanceID)] = true
		complete(t, be, wi)
	}
	if _, err := fetch(t, be, 100*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("extra work item: %v", err)
	}
}

// TestTimers: durable timers fire in order of their time and never early,
// also after a reopen rebuilt them from the file, and a start scheduled
// for later waits for its time. The times are read from the instances'
// histories, not from a clock around the calls, so a loaded machine that
// runs a turn late changes when things happen but not what is checked.
func TestTimers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wf.db")
	var mu sync.Mutex
	var order []string
	r := task.NewTaskRegistry()
	_ = r.AddOrchestratorN("W", func(ctx *task.OrchestrationContext) (any, error) {
		var d time.Duration
		if err := ctx.GetInput(&d); err != nil {
			return nil, err
		}
		if err := ctx.CreateTimer(d).Await(nil); err != nil {
			return nil, err
		}
		return nil, ctx.CallActivity("Mark", task.WithActivityInput(string(ctx.ID))).Await(nil)
	})
	_ = r.AddActivityN("Mark", func(ctx task.ActivityContext) (any, error) {
		var id string
		_ = ctx.GetInput(&id)
		mu.Lock()
		order = append(order, id)
		mu.Unlock()
		return nil, nil
	})
	// One orchestration and one activity at a time: Mark runs in the
	// order the store hands the fired timers out.
	h := startHubWith(t, path, 1, r)
	timed := []string{"t3", "t1", "t2", "t0"}
	delays := map[string]time.Duration{"t3": 1500 * time.Millisecond, "t1": 500 * time.Millisecond, "t2": time.Second, "t0": 0}
	for _, id := range timed {
		if _, err := h.client.ScheduleNewOrchestration(context.Background(), "W", api.WithInstanceID(api.InstanceID(id)), api.WithInput(delays[id])); err != nil {
			t.Fatal(err)
		}
	}
	// Scheduled to start in 1.2 s, with no timer of its own.
	startAt := time.Now().Add(1200 * time.Millisecond)
	if _, err := h.client.ScheduleNewOrchestration(context.Background(), "W", api.WithInstanceID("s"),
		api.WithInput(time.Duration(0)), api.WithStartTime(startAt)); err != nil {
		t.Fatal(err)
	}
	// Stop once every timer is in the file, and reopen: the ones not yet
	// due are rebuilt from it.
	for _, id := range timed {
		waitHistory(t, h.be, id, "a timer", func(events []*protos.HistoryEvent) bool {
			return slices.ContainsFunc(events, func(e *protos.HistoryEvent) bool { return e.GetTimerCreated() != nil })
		})
	}
	h.stop()
	h = startHubWith(t, path, 1, r)
	defer h.stop()
	for _, id := range append(timed, "s") {
		waitStatus(t, h.be, api.InstanceID(id), api.RUNTIME_STATUS_COMPLETED)
	}

	ctx := context.Background()
	fireAt := map[string]time.Time{}
	for _, id := range append(timed, "s") {
		hist, err := h.be.GetInstanceHistory(ctx, &protos.GetInstanceHistoryRequest{InstanceId: id})
		if err != nil {
			t.Fatal(err)
		}
		var turn time.Time // the current turn's OrchestratorStarted
		for _, e := range hist.Events {
			switch {
			case e.GetOrchestratorStarted() != nil:
				if turn.IsZero() && id == "s" && e.Timestamp.AsTime().Before(startAt) {
					t.Errorf("s started at %s, before its start time %s", e.Timestamp.AsTime().Format(time.StampMilli), startAt.Format(time.StampMilli))
				}
				turn = e.Timestamp.AsTime()
			case e.GetTimerCreated() != nil:
				fireAt[id] = e.GetTimerCreated().FireAt.AsTime()
			case e.GetTimerFired() != nil:
				if turn.Before(fireAt[id]) {
					t.Errorf("%s: timer due at %s fired at %s", id, fireAt[id].Format(time.StampMilli), turn.Format(time.StampMilli))
				}
			}
		}
		if _, ok := fireAt[id]; !ok {
			t.Errorf("%s: no timer in its history", id)
		}
	}
	want := slices.Clone(timed)
	slices.SortFunc(want, func(a, b string) int { return fireAt[a].Compare(fireAt[b]) })
	mu.Lock()
	defer mu.Unlock()
	got := slices.DeleteFunc(slices.Clone(order), func(id string) bool { return id == "s" })
	if !slices.Equal(got, want) {
		t.Fatalf("timers ran %v, want the order of their times %v", got, want)
	}
	if len(order) != len(timed)+1 {
		t.Fatalf("marks %v, want one per instance", order)
	}
}

// waitHistory waits until ok holds for instance id's history.
func waitHistory(t *testing.T, be *store.Backend, id, what string, ok func([]*protos.HistoryEvent) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		hist, err := be.GetInstanceHistory(context.Background(), &protos.GetInstanceHistoryRequest{InstanceId: id})
		if err == nil && ok(hist.Events) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s in its history after 20s (last error: %v)", id, what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNoDoubleHandOut hammers the store from many goroutines: events keep
// arriving while work items are fetched and completed (or abandoned), and
// no instance is ever out twice at once. Run with -race.
func TestNoDoubleHandOut(t *testing.T) {
	be := open(t, filepath.Join(t.TempDir(), "wf.db"))
	defer be.Close()
	const instances, eventsEach, workers = 16, 25, 8
	for i := 0; i < instances; i++ {
		if err := create(t, be, fmt.Sprint("i", i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out sync.Map // instance -> struct{}
	var delivered atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers+instances)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				wi, err := be.NextOrchestrationWorkItem(ctx)
				if err != nil {
					return
				}
				if _, dup := out.LoadOrStore(wi.InstanceID, struct{}{}); dup {
					errc <- fmt.Errorf("%s handed out twice", wi.InstanceID)
					return
				}
				time.Sleep(time.Duration(n%3) * time.Millisecond)
				if n%7 == 3 && wi.RetryCount == 0 {
					out.Delete(wi.InstanceID)
					if err := be.AbandonOrchestrationWorkItem(ctx, wi); err != nil {
						errc <- err
						return
					}
					continue
				}
				st, err := be.GetOrchestrationRuntimeState(ctx, wi)
				if err != nil {
					errc <- err
					return
				}
				for _, e := range wi.NewEvents {
					_ = runtimestate.AddEvent(st, e)
				}
				wi.State = st
				out.Delete(wi.InstanceID)
				if err := be.CompleteOrchestrationWorkItem(context.Background(), wi); err != nil {
					errc <- err
					return
				}
				delivered.Add(int64(len(wi.NewEvents)))
			}
		}()
	}
	var rg sync.WaitGroup
	for i := 0; i < instances; i++ {
		rg.Add(1)
		go func(i int) {
			defer rg.Done()
			for j := 0; j < eventsEach; j++ {
				if err := raise(t, be, fmt.Sprint("i", i), fmt.Sprint("e", j)); err != nil {
					errc <- err
					return
				}
			}
		}(i)
	}
	rg.Wait()
	want := int64(instances * (eventsEach + 1))
	deadline := time.Now().Add(20 * time.Second)
	for delivered.Load() < want && time.Now().Before(deadline) {
		select {
		case err := <-errc:
			t.Fatal(err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	if got := delivered.Load(); got != want {
		t.Fatalf("delivered %d events, want %d", got, want)
	}
	// Every event is in the history exactly once, in the order raised.
	for i := 0; i < instances; i++ {
		st, err := be.GetOrchestrationRuntimeState(context.Background(), &backend.OrchestrationWorkItem{InstanceID: api.InstanceID(fmt.Sprint("i", i))})
		if err != nil {
			t.Fatal(err)
		}
		next := 0
		for _, e := range st.OldEvents {
			if er := e.GetEventRaised(); er != nil {
				if er.Name != fmt.Sprint("e", next) {
					t.Fatalf("i%d: event %s where e%d expected", i, er.Name, next)
				}
				next++
			}
		}
		if next != eventsEach {
			t.Fatalf("i%d: %d events in history, want %d", i, next, eventsEach)
		}
	}
}

// TestLifecycle runs real orchestrations: suspend, resume, terminate, a
// sub-orchestration, a raise on a finished instance, and purge rules.
func TestLifecycle(t *testing.T) {
	r := task.NewTaskRegistry()
	_ = r.AddOrchestratorN("Child", func(ctx *task.OrchestrationContext) (any, error) {
		var s string
		_ = ctx.GetInput(&s)
		return s + "!", nil
	})
	_ = r.AddOrchestratorN("Parent", func(ctx *task.OrchestrationContext) (any, error) {
		var out string
		if err := ctx.CallSubOrchestrator("Child", task.WithSubOrchestratorInput("hi")).Await(&out); err != nil {
			return nil, err
		}
		if err := ctx.WaitForSingleEvent("go", time.Minute).Await(nil); err != nil {
			return nil, err
		}
		return out, nil
	})
	h := startHubWith(t, filepath.Join(t.TempDir(), "wf.db"), 4, r)
	defer h.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := h.client
	if _, err := c.ScheduleNewOrchestration(ctx, "Parent", api.WithInstanceID("p")); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, h.be, "p", api.RUNTIME_STATUS_RUNNING)
	if err := c.PurgeOrchestrationState(ctx, "p"); !errors.Is(err, api.ErrNotCompleted) {
		t.Fatalf("purge of a running instance: %v", err)
	}
	if err := c.SuspendOrchestration(ctx, "p", "hold"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, h.be, "p", api.RUNTIME_STATUS_SUSPENDED)
	if err := c.RaiseEvent(ctx, "p", "go"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if md, _ := h.be.GetOrchestrationMetadata(ctx, "p"); md.RuntimeStatus != api.RUNTIME_STATUS_SUSPENDED {
		t.Fatalf("suspended instance moved on: %v", md.RuntimeStatus)
	}
	if err := c.ResumeOrchestration(ctx, "p", "go on"); err != nil {
		t.Fatal(err)
	}
	md := waitStatus(t, h.be, "p", api.RUNTIME_STATUS_COMPLETED)
	if md.GetOutput().GetValue() != `"hi!"` || md.CompletedAt == nil {
		t.Fatalf("metadata %v", md)
	}
	if md, _ := h.be.GetOrchestrationMetadata(ctx, "p:0000"); md.GetParentInstanceId() != "p" {
		t.Fatalf("child metadata %v", md)
	}
	// A raise on a finished instance is refused, with the text the engine
	// layer matches.
	err := c.RaiseEvent(ctx, "p", "late")
	if err == nil || !strings.Contains(err.Error(), store.FinishedMessage) {
		t.Fatalf("raise on a finished instance: %v", err)
	}
	// Suspend, resume and terminate of a finished instance do nothing.
	for _, f := range []func() error{
		func() error { return c.SuspendOrchestration(ctx, "p", "") },
		func() error { return c.ResumeOrchestration(ctx, "p", "") },
		func() error { return c.TerminateOrchestration(ctx, "p") },
	} {
		if err := f(); err != nil {
			t.Fatalf("control event on a finished instance: %v", err)
		}
	}
	if md2, _ := h.be.GetOrchestrationMetadata(ctx, "p"); md2.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED {
		t.Fatalf("finished instance changed: %v", md2)
	}

	if _, err := c.ScheduleNewOrchestration(ctx, "Parent", api.WithInstanceID("q")); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, h.be, "q", api.RUNTIME_STATUS_RUNNING)
	if err := c.TerminateOrchestration(ctx, "q", api.WithOutput("stop")); err != nil {
		t.Fatal(err)
	}
	md = waitStatus(t, h.be, "q", api.RUNTIME_STATUS_TERMINATED)
	if md.GetOutput().GetValue() != `"stop"` {
		t.Fatalf("terminated output %v", md.GetOutput())
	}
	// An ID that finished can be reused only by policy.
	if _, err := c.ScheduleNewOrchestration(ctx, "Parent", api.WithInstanceID("q")); !errors.Is(err, api.ErrDuplicateInstance) {
		t.Fatalf("start of a terminated ID: %v", err)
	}
	if err := h.be.PurgeOrchestrationState(ctx, "q", false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ScheduleNewOrchestration(ctx, "Parent", api.WithInstanceID("q")); err != nil {
		t.Fatalf("start after purge: %v", err)
	}
	waitStatus(t, h.be, "q", api.RUNTIME_STATUS_RUNNING)
}

// waitStatus waits, through WatchOrchestrationRuntimeStatus, for an
// instance to reach a status.
func waitStatus(t testing.TB, be backend.Backend, id api.InstanceID, want api.OrchestrationStatus) *backend.OrchestrationMetadata {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var last *backend.OrchestrationMetadata
	err := be.WatchOrchestrationRuntimeStatus(ctx, id, func(md *backend.OrchestrationMetadata) bool {
		last = md
		return md.RuntimeStatus == want
	})
	if err != nil {
		t.Fatalf("%s: want %v, have %v: %v", id, want, last, err)
	}
	return last
}

func TestSynchronousFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wf.db")
	be, err := store.Open(store.Options{Path: path, Synchronous: "FULL"})
	if err != nil {
		t.Fatal(err)
	}
	if err := create(t, be, "a"); err != nil {
		t.Fatal(err)
	}
	wi, err := fetch(t, be, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	complete(t, be, wi)
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Open(store.Options{Path: path, Synchronous: "sometimes"}); err == nil {
		t.Fatal("synchronous=sometimes accepted")
	}
}
