package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dapr/durabletask-go/api"
	"github.com/dapr/durabletask-go/api/protos"
	"github.com/dapr/durabletask-go/backend"
	"github.com/dapr/durabletask-go/task"
	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/engine/embedded/store"
)

// familyRegistry: Parent starts Child (which waits for "go") and waits
// for it; Step marks its progress in the custom status.
func familyRegistry() *task.TaskRegistry {
	r := task.NewTaskRegistry()
	_ = r.AddOrchestratorN("Child", func(ctx *task.OrchestrationContext) (any, error) {
		ctx.SetCustomStatus("child waiting")
		if err := ctx.WaitForSingleEvent("go", time.Hour).Await(nil); err != nil {
			return nil, err
		}
		return "child done", nil
	})
	_ = r.AddOrchestratorN("Parent", func(ctx *task.OrchestrationContext) (any, error) {
		ctx.SetCustomStatus("step 1: waiting for the child")
		var out string
		if err := ctx.CallSubOrchestrator("Child", task.WithSubOrchestrationInstanceID(string(ctx.ID)+"-child")).Await(&out); err != nil {
			return nil, err
		}
		ctx.SetCustomStatus("step 2: done")
		return out, nil
	})
	return r
}

// TestCustomStatus: the status an orchestration sets is stored and
// returned in its metadata, and follows it from step to step.
func TestCustomStatus(t *testing.T) {
	h := startHubWith(t, filepath.Join(t.TempDir(), "wf.db"), 4, familyRegistry())
	defer h.stop()
	ctx := context.Background()
	if _, err := h.client.ScheduleNewOrchestration(ctx, "Parent", api.WithInstanceID("p")); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, h.be, "p", api.RUNTIME_STATUS_RUNNING) // the child exists from the parent's first commit
	md := waitStatus(t, h.be, "p-child", api.RUNTIME_STATUS_RUNNING)
	if md.GetCustomStatus().GetValue() != "child waiting" {
		t.Fatalf("child custom status %v", md.GetCustomStatus())
	}
	if md, _ := h.be.GetOrchestrationMetadata(ctx, "p"); md.GetCustomStatus().GetValue() != "step 1: waiting for the child" {
		t.Fatalf("parent custom status %v", md.GetCustomStatus())
	}
	if err := h.client.RaiseEvent(ctx, "p-child", "go"); err != nil {
		t.Fatal(err)
	}
	md = waitStatus(t, h.be, "p", api.RUNTIME_STATUS_COMPLETED)
	if md.GetCustomStatus().GetValue() != "step 2: done" || md.GetOutput().GetValue() != `"child done"` {
		t.Fatalf("parent metadata %v", md)
	}
}

// TestRecursiveTerminate: durabletask sends terminate to the children from
// the parent's work item; both end TERMINATED. Without recursion the child
// goes on. A child that was purged meanwhile does not hold up its parent.
func TestRecursiveTerminate(t *testing.T) {
	h := startHubWith(t, filepath.Join(t.TempDir(), "wf.db"), 4, familyRegistry())
	defer h.stop()
	ctx := context.Background()
	for _, id := range []string{"rec", "flat", "orphan"} {
		if _, err := h.client.ScheduleNewOrchestration(ctx, "Parent", api.WithInstanceID(api.InstanceID(id))); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, h.be, api.InstanceID(id), api.RUNTIME_STATUS_RUNNING)
		waitStatus(t, h.be, api.InstanceID(id+"-child"), api.RUNTIME_STATUS_RUNNING)
	}
	if err := h.client.TerminateOrchestration(ctx, "rec", api.WithRecursiveTerminate(true)); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, h.be, "rec", api.RUNTIME_STATUS_TERMINATED)
	waitStatus(t, h.be, "rec-child", api.RUNTIME_STATUS_TERMINATED)

	if err := h.client.TerminateOrchestration(ctx, "flat", api.WithRecursiveTerminate(false)); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, h.be, "flat", api.RUNTIME_STATUS_TERMINATED)
	if md, _ := h.be.GetOrchestrationMetadata(ctx, "flat-child"); md.RuntimeStatus != api.RUNTIME_STATUS_RUNNING {
		t.Fatalf("child of a non-recursive terminate: %v", md.RuntimeStatus)
	}

	if err := h.be.PurgeOrchestrationState(ctx, "orphan-child", true); err != nil {
		t.Fatal(err)
	}
	if err := h.client.TerminateOrchestration(ctx, "orphan", api.WithRecursiveTerminate(true)); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, h.be, "orphan", api.RUNTIME_STATUS_TERMINATED)
}

// TestPurge: a recursive purge (durabletask's client purges the children
// first, each with a call to the store) removes the child; force purges a
// running instance, whose queued work goes with it.
func TestPurge(t *testing.T) {
	h := startHubWith(t, filepath.Join(t.TempDir(), "wf.db"), 4, familyRegistry())
	defer h.stop()
	ctx := context.Background()
	for _, id := range []string{"done", "running"} {
		if _, err := h.client.ScheduleNewOrchestration(ctx, "Parent", api.WithInstanceID(api.InstanceID(id))); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, h.be, api.InstanceID(id), api.RUNTIME_STATUS_RUNNING)
		waitStatus(t, h.be, api.InstanceID(id+"-child"), api.RUNTIME_STATUS_RUNNING)
	}
	if err := h.client.RaiseEvent(ctx, "done-child", "go"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, h.be, "done", api.RUNTIME_STATUS_COMPLETED)
	if err := h.client.PurgeOrchestrationState(ctx, "done", api.WithRecursivePurge(true)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []api.InstanceID{"done", "done-child"} {
		if _, err := h.be.GetOrchestrationMetadata(ctx, id); !errors.Is(err, api.ErrInstanceNotFound) {
			t.Fatalf("%s after a recursive purge: %v", id, err)
		}
	}

	if err := h.be.PurgeOrchestrationState(ctx, "running-child", false); !errors.Is(err, api.ErrNotCompleted) {
		t.Fatalf("purge of a running instance without force: %v", err)
	}
	// The child has its "go" event queued when it is force-purged: the
	// event goes with it, and nothing runs for it afterwards.
	if err := h.be.AddNewOrchestrationEvent(ctx, "running-child", raisedEvent("go")); err != nil {
		t.Fatal(err)
	}
	if err := h.be.PurgeOrchestrationState(ctx, "running-child", true); err != nil {
		t.Fatalf("force purge: %v", err)
	}
	if _, err := h.be.GetOrchestrationMetadata(ctx, "running-child"); !errors.Is(err, api.ErrInstanceNotFound) {
		t.Fatalf("after force purge: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := h.be.GetOrchestrationMetadata(ctx, "running-child"); !errors.Is(err, api.ErrInstanceNotFound) {
		t.Fatalf("force-purged instance came back: %v", err)
	}
	if err := h.be.PurgeOrchestrationState(ctx, "running", true); err != nil {
		t.Fatalf("force purge of the parent: %v", err)
	}
}

func raisedEvent(name string) *backend.HistoryEvent {
	return &protos.HistoryEvent{
		EventId:   -1,
		Timestamp: timestamppb.Now(),
		EventType: &protos.HistoryEvent_EventRaised{EventRaised: &protos.EventRaisedEvent{Name: name}},
	}
}

// TestWatchIsPushed: a watch reads the metadata once, then only when a
// commit changed the instance; an idle instance costs it nothing (the
// stock backend polls every 100 ms and up).
func TestWatchIsPushed(t *testing.T) {
	be := open(t, filepath.Join(t.TempDir(), "wf.db"))
	defer be.Close()
	if err := create(t, be, "a"); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- be.WatchOrchestrationRuntimeStatus(context.Background(), "a", func(md *backend.OrchestrationMetadata) bool {
			calls.Add(1)
			return md.RuntimeStatus == api.RUNTIME_STATUS_RUNNING
		})
	}()
	time.Sleep(500 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Fatalf("watch of an idle instance looked %d times in 500 ms", n)
	}
	// Another instance's commits do not wake it.
	if err := create(t, be, "b"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Fatalf("watch woken by another instance: %d looks", n)
	}
	wi, err := fetch(t, be, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if wi.InstanceID != "a" {
		t.Fatalf("work item for %s", wi.InstanceID)
	}
	complete(t, be, wi)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch not woken by the commit")
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("watch looked %d times, want 2", n)
	}
}

// TestListAndHistory: ListInstanceIDs pages through every ID in order;
// GetInstanceHistory returns what the worker recorded.
func TestListAndHistory(t *testing.T) {
	h := startHubWith(t, filepath.Join(t.TempDir(), "wf.db"), 4, familyRegistry())
	defer h.stop()
	ctx := context.Background()
	var want []string
	for i := 0; i < 7; i++ {
		id := fmt.Sprintf("f%d", i)
		if _, err := h.client.ScheduleNewOrchestration(ctx, "Parent", api.WithInstanceID(api.InstanceID(id))); err != nil {
			t.Fatal(err)
		}
		want = append(want, id, id+"-child")
	}
	for _, id := range want { // parents first: a child exists from its parent's first commit
		waitStatus(t, h.be, api.InstanceID(id), api.RUNTIME_STATUS_RUNNING)
	}
	slices.Sort(want)
	var got []string
	var token *string
	pages := 0
	for {
		size := uint32(4)
		resp, err := h.be.ListInstanceIDs(ctx, &protos.ListInstanceIDsRequest{PageSize: &size, ContinuationToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, resp.InstanceIds...)
		if resp.ContinuationToken == nil {
			break
		}
		token = resp.ContinuationToken
	}
	if !slices.Equal(got, want) || pages != 4 {
		t.Fatalf("%d pages: %v, want %v", pages, got, want)
	}
	all, err := h.be.ListInstanceIDs(ctx, &protos.ListInstanceIDsRequest{})
	if err != nil || !slices.Equal(all.InstanceIds, want) || all.ContinuationToken != nil {
		t.Fatalf("all at once: %v %v", all, err)
	}

	hist, err := h.be.GetInstanceHistory(ctx, &protos.GetInstanceHistoryRequest{InstanceId: "f0"})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range hist.Events {
		switch {
		case e.GetExecutionStarted() != nil:
			kinds = append(kinds, "started")
		case e.GetSubOrchestrationInstanceCreated() != nil:
			kinds = append(kinds, "child:"+e.GetSubOrchestrationInstanceCreated().InstanceId)
		}
	}
	if !slices.Equal(kinds, []string{"started", "child:f0-child"}) {
		t.Fatalf("history %v", kinds)
	}
}

// TestListInstances: the console's query: filters by name, status, time
// ranges and ID prefix, newest first, in pages.
func TestListInstances(t *testing.T) {
	h := startHubWith(t, filepath.Join(t.TempDir(), "wf.db"), 4, familyRegistry())
	defer h.stop()
	ctx := context.Background()
	t0 := time.Now()
	for i := 0; i < 5; i++ {
		id := fmt.Sprintf("order-%d", i)
		if _, err := h.client.ScheduleNewOrchestration(ctx, "Parent", api.WithInstanceID(api.InstanceID(id))); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, h.be, api.InstanceID(id), api.RUNTIME_STATUS_RUNNING)
		waitStatus(t, h.be, api.InstanceID(id+"-child"), api.RUNTIME_STATUS_RUNNING)
	}
	for i := 0; i < 2; i++ {
		if err := h.client.RaiseEvent(ctx, api.InstanceID(fmt.Sprintf("order-%d-child", i)), "go"); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, h.be, api.InstanceID(fmt.Sprintf("order-%d", i)), api.RUNTIME_STATUS_COMPLETED)
	}
	t1 := time.Now()
	if _, err := h.client.ScheduleNewOrchestration(ctx, "Parent", api.WithInstanceID("late")); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, h.be, "late", api.RUNTIME_STATUS_RUNNING)
	waitStatus(t, h.be, "late-child", api.RUNTIME_STATUS_RUNNING)

	ids := func(f store.InstanceFilter) []string {
		t.Helper()
		var out []string
		pages := 0
		for {
			page, err := h.be.ListInstances(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, md := range page.Instances {
				out = append(out, md.InstanceId)
				done := md.RuntimeStatus == api.RUNTIME_STATUS_COMPLETED
				if md.GetCustomStatus() == nil || (f.WithPayloads && done) != (md.GetOutput() != nil) {
					t.Fatalf("payloads %v in %v", f.WithPayloads, md)
				}
			}
			if page.NextPageToken == "" {
				return out
			}
			f.PageToken = page.NextPageToken
		}
	}
	for _, c := range []struct {
		name string
		f    store.InstanceFilter
		want []string
	}{
		{"by name, newest first, pages of 2", store.InstanceFilter{Name: "Parent", PageSize: 2},
			[]string{"late", "order-4", "order-3", "order-2", "order-1", "order-0"}},
		{"by status", store.InstanceFilter{Statuses: []api.OrchestrationStatus{api.RUNTIME_STATUS_COMPLETED}, WithPayloads: true},
			[]string{"order-1-child", "order-1", "order-0-child", "order-0"}},
		{"by two statuses and name", store.InstanceFilter{Name: "Child", Statuses: []api.OrchestrationStatus{api.RUNTIME_STATUS_COMPLETED, api.RUNTIME_STATUS_TERMINATED}},
			[]string{"order-1-child", "order-0-child"}},
		{"by ID prefix", store.InstanceFilter{IDPrefix: "order-3"}, []string{"order-3-child", "order-3"}},
		{"created after", store.InstanceFilter{CreatedFrom: t1}, []string{"late-child", "late"}},
		{"created before", store.InstanceFilter{CreatedTo: t0}, nil},
		{"completed in a range", store.InstanceFilter{CompletedFrom: t0, CompletedTo: t1, Name: "Parent"}, []string{"order-1", "order-0"}},
	} {
		if got := ids(c.f); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if _, err := h.be.ListInstances(ctx, store.InstanceFilter{PageToken: "nonsense"}); !errors.Is(err, store.ErrBadPageToken) {
		t.Fatalf("bad token: %v", err)
	}
}

// TestRerunFromEvent: a finished saga rerun from its second activity
// keeps the first activity's result, runs the second (with a new input)
// and the third again, under a new ID.
func TestRerunFromEvent(t *testing.T) {
	var runs atomic.Int32
	r := task.NewTaskRegistry()
	_ = r.AddOrchestratorN("Three", func(ctx *task.OrchestrationContext) (any, error) {
		var out []string
		for i := 0; i < 3; i++ {
			var s string
			if err := ctx.CallActivity("Step", task.WithActivityInput(fmt.Sprint("in", i))).Await(&s); err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return strings.Join(out, ","), nil
	})
	_ = r.AddActivityN("Step", func(ctx task.ActivityContext) (any, error) {
		var in string
		_ = ctx.GetInput(&in)
		return fmt.Sprintf("%s#%d", in, runs.Add(1)), nil
	})
	h := startHubWith(t, filepath.Join(t.TempDir(), "wf.db"), 4, r)
	defer h.stop()
	ctx := context.Background()
	if _, err := h.client.ScheduleNewOrchestration(ctx, "Three", api.WithInstanceID("src")); err != nil {
		t.Fatal(err)
	}
	md := waitStatus(t, h.be, "src", api.RUNTIME_STATUS_COMPLETED)
	if md.GetOutput().GetValue() != `"in0#1,in1#2,in2#3"` {
		t.Fatalf("source output %v", md.GetOutput())
	}
	hist, _ := h.be.GetInstanceHistory(ctx, &protos.GetInstanceHistoryRequest{InstanceId: "src"})
	var second int32 = -1
	n := 0
	for _, e := range hist.Events {
		if e.GetTaskScheduled() != nil {
			if n == 1 {
				second = e.EventId
			}
			n++
		}
	}
	id, err := h.client.RerunWorkflowFromEvent(ctx, "src", uint32(second), api.WithRerunNewInstanceID("again"), api.WithRerunInput("new"))
	if err != nil || id != "again" {
		t.Fatalf("rerun: %q %v", id, err)
	}
	md = waitStatus(t, h.be, "again", api.RUNTIME_STATUS_COMPLETED)
	if md.GetOutput().GetValue() != `"in0#1,new#4,in2#5"` {
		t.Fatalf("rerun output %v", md.GetOutput())
	}
	if _, err := h.client.RerunWorkflowFromEvent(ctx, "src", uint32(second), api.WithRerunNewInstanceID("again")); !errors.Is(err, api.ErrDuplicateInstance) {
		t.Fatalf("rerun onto an existing ID: %v", err)
	}
	if _, err := h.client.RerunWorkflowFromEvent(ctx, "src", 999); status.Code(err) != codes.NotFound {
		t.Fatalf("rerun from a missing event: %v", err)
	}
	if _, err := h.client.RerunWorkflowFromEvent(ctx, "nope", 0); !errors.Is(err, api.ErrInstanceNotFound) {
		t.Fatalf("rerun of a missing instance: %v", err)
	}
}

// TestGrpcSemantics drives the store through durabletask's gRPC executor
// with the workflow client, as the engine layer does, and checks the
// errors it sees there: they cross as text (or a gRPC code).
func TestGrpcSemantics(t *testing.T) {
	r := workflow.NewRegistry()
	_ = r.AddWorkflowN("Wait", func(ctx *workflow.WorkflowContext) (any, error) {
		ctx.SetCustomStatus("waiting for go")
		var v string
		if err := ctx.WaitForExternalEvent("go", time.Hour).Await(&v); err != nil {
			return nil, err
		}
		return v, nil
	})
	h := startGrpcHub(t, filepath.Join(t.TempDir(), "wf.db"), 8, r, true)
	defer h.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := h.client

	// A start returns once the instance started (the executor waits on
	// WatchOrchestrationRuntimeStatus).
	if _, err := c.ScheduleWorkflow(ctx, "Wait", workflow.WithInstanceID("w")); err != nil {
		t.Fatal(err)
	}
	md, err := c.FetchWorkflowMetadata(ctx, "w")
	if err != nil || md.RuntimeStatus != api.RUNTIME_STATUS_RUNNING || md.CustomStatus.GetValue() != "waiting for go" {
		t.Fatalf("after start: %v %v", md, err)
	}
	if _, err := c.ScheduleWorkflow(ctx, "Wait", workflow.WithInstanceID("w")); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate start: %v", err)
	}
	if err := c.RaiseEvent(ctx, "missing", "go"); err == nil || !strings.Contains(err.Error(), api.ErrInstanceNotFound.Error()) {
		t.Fatalf("raise on a missing instance: %v", err)
	}
	if err := c.RaiseEvent(ctx, "w", "go", workflow.WithEventPayload("yes")); err != nil {
		t.Fatal(err)
	}
	md, err = c.WaitForWorkflowCompletion(ctx, "w")
	if err != nil || md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED || md.Output.GetValue() != `"yes"` {
		t.Fatalf("completion: %v %v", md, err)
	}
	if err := c.RaiseEvent(ctx, "w", "go"); err == nil || !strings.Contains(err.Error(), store.FinishedMessage) {
		t.Fatalf("raise on a finished instance: %v", err)
	}
	ignore := workflow.NewWorkflowOptions(api.WithOrchestrationIdReusePolicy(&api.OrchestrationIdReusePolicy{
		OperationStatus: []api.OrchestrationStatus{api.RUNTIME_STATUS_COMPLETED, api.RUNTIME_STATUS_FAILED, api.RUNTIME_STATUS_TERMINATED},
		Action:          api.REUSE_ID_ACTION_IGNORE,
	}))
	if _, err := c.ScheduleWorkflow(ctx, "Wait", workflow.WithInstanceID("w"), ignore); err != nil {
		t.Fatalf("duplicate start with IGNORE of a completed ID: %v", err)
	}
	if md, _ := c.FetchWorkflowMetadata(ctx, "w"); md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED {
		t.Fatalf("ignored start changed the instance: %v", md)
	}
	if err := c.TerminateWorkflow(ctx, "missing"); err == nil || !strings.Contains(err.Error(), api.ErrInstanceNotFound.Error()) {
		t.Fatalf("terminate of a missing instance: %v", err)
	}
	ids, err := c.ListInstanceIDs(ctx)
	if err != nil || !slices.Equal(ids.InstanceIds, []string{"w"}) {
		t.Fatalf("list: %v %v", ids, err)
	}
	hist, err := c.GetInstanceHistory(ctx, "w")
	if err != nil || len(hist.Events) == 0 {
		t.Fatalf("history: %v %v", hist, err)
	}
	if err := c.PurgeWorkflowState(ctx, "w"); err != nil {
		t.Fatal(err)
	}
}

// TestListInstancesSameTime: instances created at the same instant are
// each listed once across pages (the page token carries the row as well
// as the time).
func TestListInstancesSameTime(t *testing.T) {
	be := open(t, filepath.Join(t.TempDir(), "wf.db"))
	defer be.Close()
	ctx := context.Background()
	at := timestamppb.Now()
	for i := 0; i < 5; i++ {
		err := be.CreateOrchestrationInstance(ctx, &protos.HistoryEvent{
			EventId:   -1,
			Timestamp: at,
			EventType: &protos.HistoryEvent_ExecutionStarted{ExecutionStarted: &protos.ExecutionStartedEvent{
				Name:                  "W",
				OrchestrationInstance: &protos.OrchestrationInstance{InstanceId: fmt.Sprint("same-", i)},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	f := store.InstanceFilter{PageSize: 2}
	for {
		page, err := be.ListInstances(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, md := range page.Instances {
			got = append(got, md.InstanceId)
		}
		if page.NextPageToken == "" {
			break
		}
		f.PageToken = page.NextPageToken
	}
	if want := []string{"same-4", "same-3", "same-2", "same-1", "same-0"}; !slices.Equal(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
}

// TestContinueAsNew: each generation replaces the history; the metadata
// shows the last generation's input and the final output.
func TestContinueAsNew(t *testing.T) {
	r := task.NewTaskRegistry()
	_ = r.AddOrchestratorN("Count", func(ctx *task.OrchestrationContext) (any, error) {
		var n int
		_ = ctx.GetInput(&n)
		if err := ctx.CallActivity("Echo").Await(nil); err != nil {
			return nil, err
		}
		if n < 3 {
			ctx.ContinueAsNew(n + 1)
			return nil, nil
		}
		return n, nil
	})
	_ = r.AddActivityN("Echo", func(task.ActivityContext) (any, error) { return nil, nil })
	h := startHubWith(t, filepath.Join(t.TempDir(), "wf.db"), 4, r)
	defer h.stop()
	ctx := context.Background()
	if _, err := h.client.ScheduleNewOrchestration(ctx, "Count", api.WithInstanceID("c"), api.WithInput(0)); err != nil {
		t.Fatal(err)
	}
	md := waitStatus(t, h.be, "c", api.RUNTIME_STATUS_COMPLETED)
	if md.GetOutput().GetValue() != "3" || md.GetInput().GetValue() != "3" {
		t.Fatalf("metadata %v", md)
	}
	hist, err := h.be.GetInstanceHistory(ctx, &protos.GetInstanceHistoryRequest{InstanceId: "c"})
	if err != nil {
		t.Fatal(err)
	}
	started := 0
	for _, e := range hist.Events {
		if e.GetExecutionStarted() != nil {
			started++
		}
	}
	if started != 1 {
		t.Fatalf("history holds %d generations", started)
	}
}
