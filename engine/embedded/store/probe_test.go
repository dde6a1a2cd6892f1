package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/api"
	"github.com/dapr/durabletask-go/task"
	"github.com/dapr/durabletask-go/workflow"
)

// The probe saga: three activities, an external event, a last activity
// that signals the driver. It is the shape of the bench's saga.

var probeDone sync.Map // instance ID -> chan struct{}

func signalDone(id string) {
	if ch, ok := probeDone.LoadAndDelete(id); ok {
		close(ch.(chan struct{}))
	}
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
		signalDone(id)
		return nil, nil
	})
	return r
}

func probeWorkflows() *workflow.Registry {
	r := workflow.NewRegistry()
	_ = r.AddWorkflowN("ProbeSaga", func(ctx *workflow.WorkflowContext) (any, error) {
		for i := 0; i < 3; i++ {
			if err := ctx.CallActivity("ProbeStep", workflow.WithActivityInput(i)).Await(nil); err != nil {
				return nil, err
			}
		}
		if err := ctx.WaitForExternalEvent("approval", 10*time.Minute).Await(nil); err != nil {
			return nil, err
		}
		return nil, ctx.CallActivity("ProbeDone", workflow.WithActivityInput(ctx.ID())).Await(nil)
	})
	_ = r.AddActivityN("ProbeStep", func(ctx workflow.ActivityContext) (any, error) { return 1, nil })
	_ = r.AddActivityN("ProbeDone", func(ctx workflow.ActivityContext) (any, error) {
		var id string
		if err := ctx.GetInput(&id); err != nil {
			return nil, err
		}
		signalDone(id)
		return nil, nil
	})
	return r
}

// TestProbeEngine measures the store behind durabletask's gRPC executor,
// driven by the workflow client as the engine layer drives it: PROBE=n
// sagas at 1, 32 and 128 in flight.
func TestProbeEngine(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PROBE"))
	if n == 0 {
		t.Skip("set PROBE=n")
	}
	h := startGrpcHub(t, filepath.Join(t.TempDir(), "wf.db"), 128, probeWorkflows(), false)
	defer h.stop()
	ctx := context.Background()
	for _, c := range []int{1, 32, 128} {
		sem := make(chan struct{}, c)
		var wg sync.WaitGroup
		var tStart, tRaise time.Duration
		t0 := time.Now()
		for i := 0; i < n; i++ {
			sem <- struct{}{}
			id := fmt.Sprintf("p%d-%d", c, i)
			ch := make(chan struct{})
			probeDone.Store(id, ch)
			ts := time.Now()
			if _, err := h.client.ScheduleWorkflow(ctx, "ProbeSaga", workflow.WithInstanceID(id), workflow.WithInput(struct{}{})); err != nil {
				t.Fatal(err)
			}
			tStart += time.Since(ts)
			ts = time.Now()
			if err := h.client.RaiseEvent(ctx, id, "approval", workflow.WithEventPayload(true)); err != nil {
				t.Fatal(err)
			}
			tRaise += time.Since(ts)
			wg.Add(1)
			go func() { defer wg.Done(); <-ch; <-sem }()
		}
		wg.Wait()
		t.Logf("c=%d: %.0f sagas/s; driver: start %v raise %v", c, float64(n)/time.Since(t0).Seconds(), tStart/time.Duration(n), tRaise/time.Duration(n))
	}
}

// TestProbeStore measures the store with durabletask's in-process executor
// (no gRPC): PROBE=n sagas.
func TestProbeStore(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PROBE"))
	if n == 0 {
		t.Skip("set PROBE=n")
	}
	path := filepath.Join(t.TempDir(), "wf.db")
	h := startHubWith(t, path, 128, probeRegistry())
	defer h.stop()
	defer func() {
		for _, f := range []string{path, path + "-wal"} {
			if fi, err := os.Stat(f); err == nil {
				t.Logf("%s: %.1f MiB", filepath.Base(f), float64(fi.Size())/(1<<20))
			}
		}
	}()
	ctx := context.Background()
	for _, c := range []int{1, 32, 128} {
		s0 := h.be.Stats()
		sem := make(chan struct{}, c)
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := 0; i < n; i++ {
			sem <- struct{}{}
			id := fmt.Sprintf("s%d-%d", c, i)
			ch := make(chan struct{})
			probeDone.Store(id, ch)
			h.startAndRaise(t, ctx, id)
			wg.Add(1)
			go func() { defer wg.Done(); <-ch; <-sem }()
		}
		wg.Wait()
		s1 := h.be.Stats()
		el := time.Since(t0)
		t.Logf("c=%d: %.0f sagas/s; batches %d writes %d commit %v batch %v (%.0f%% of wall)", c, float64(n)/el.Seconds(),
			s1.Batches-s0.Batches, s1.Writes-s0.Writes, s1.CommitTime-s0.CommitTime, s1.BatchTime-s0.BatchTime,
			100*float64(s1.BatchTime-s0.BatchTime)/float64(el))
	}
}

func (h *testHub) startAndRaise(t testing.TB, ctx context.Context, id string) {
	if _, err := h.client.ScheduleNewOrchestration(ctx, "ProbeSaga", api.WithInstanceID(api.InstanceID(id))); err != nil {
		t.Fatal(err)
	}
	if err := h.client.RaiseEvent(ctx, api.InstanceID(id), "approval"); err != nil {
		t.Fatal(err)
	}
}
