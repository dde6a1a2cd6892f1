package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/dapr/durabletask-go/api"
	"github.com/dapr/durabletask-go/api/protos"
	"github.com/dapr/durabletask-go/backend"
	"github.com/dapr/durabletask-go/backend/runtimestate"
	"github.com/dapr/durabletask-go/task"

	"github.com/sagabridge/sagabridge/engine/embedded/store"
)

// retentionRegistry: "Quick" runs one activity and ends as its input says;
// "Family" starts a Quick child and ends with it.
func retentionRegistry() *task.TaskRegistry {
	r := task.NewTaskRegistry()
	_ = r.AddOrchestratorN("Quick", func(ctx *task.OrchestrationContext) (any, error) {
		var in string
		_ = ctx.GetInput(&in)
		if err := ctx.CallActivity("Echo", task.WithActivityInput(in)).Await(nil); err != nil {
			return nil, err
		}
		switch {
		case in == "fail":
			return nil, errors.New("failed")
		case in == "wait":
			return nil, ctx.WaitForSingleEvent("go", time.Hour).Await(nil)
		case strings.HasPrefix(in, "status:"):
			ctx.SetCustomStatus(strings.TrimPrefix(in, "status:"))
		}
		return len(in), nil
	})
	_ = r.AddOrchestratorN("Family", func(ctx *task.OrchestrationContext) (any, error) {
		var in string
		_ = ctx.GetInput(&in)
		return nil, ctx.CallSubOrchestrator("Quick", task.WithSubOrchestratorInput(in),
			task.WithSubOrchestrationInstanceID(string(ctx.ID)+"-child")).Await(nil)
	})
	_ = r.AddActivityN("Echo", func(ctx task.ActivityContext) (any, error) { return nil, nil })
	return r
}

func withRetention(r store.Retention) func(*store.Options) {
	return func(o *store.Options) { o.Retention = &r }
}

func instanceExists(t *testing.T, be *store.Backend, id string) bool {
	t.Helper()
	_, err := be.GetOrchestrationMetadata(context.Background(), api.InstanceID(id))
	if err != nil && !errors.Is(err, api.ErrInstanceNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// TestRetentionRules: a sweep deletes finished instances past the age set
// for their status, keeps what Keep keeps, and deletes a child with its
// root once the whole tree finished.
func TestRetentionRules(t *testing.T) {
	keep := func(c store.RetentionCandidate) bool { return c.CustomStatus == "compensated" }
	h := startHubWith(t, filepath.Join(t.TempDir(), "wf.db"), 8, retentionRegistry(), withRetention(store.Retention{
		Completed:  time.Millisecond,
		Terminated: time.Hour, // too young to go
		Interval:   time.Hour, // sweeps run by hand here
		Keep:       keep,
	}))
	defer h.stop()
	ctx := context.Background()
	start := func(name, id, in string) {
		t.Helper()
		if _, err := h.client.ScheduleNewOrchestration(ctx, name, api.WithInstanceID(api.InstanceID(id)), api.WithInput(in)); err != nil {
			t.Fatal(err)
		}
	}
	start("Quick", "done", "ok")
	start("Quick", "failed", "fail")
	start("Quick", "running", "wait")
	start("Quick", "terminated", "wait")
	start("Quick", "compensated", "status:compensated")
	start("Family", "family", "ok")
	start("Family", "busy", "wait")
	waitStatus(t, h.be, "running", api.RUNTIME_STATUS_RUNNING)
	waitStatus(t, h.be, "terminated", api.RUNTIME_STATUS_RUNNING)
	if err := h.client.TerminateOrchestration(ctx, "terminated"); err != nil {
		t.Fatal(err)
	}
	for id, st := range map[string]api.OrchestrationStatus{
		"done": api.RUNTIME_STATUS_COMPLETED, "failed": api.RUNTIME_STATUS_FAILED, "terminated": api.RUNTIME_STATUS_TERMINATED,
		"compensated": api.RUNTIME_STATUS_COMPLETED, "family": api.RUNTIME_STATUS_COMPLETED, "busy": api.RUNTIME_STATUS_RUNNING,
	} {
		waitStatus(t, h.be, api.InstanceID(id), st)
	}
	waitStatus(t, h.be, "busy-child", api.RUNTIME_STATUS_RUNNING)
	countIs := func(want int) {
		t.Helper()
		if n, err := h.be.CountInstances(ctx); err != nil || n != want {
			t.Errorf("CountInstances: %d %v, want %d", n, err, want)
		}
	}
	countIs(9)
	time.Sleep(5 * time.Millisecond) // past the completed age
	n, err := h.be.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("sweep deleted %d instances, want 3 (done, family, family-child)", n)
	}
	countIs(6)
	for id, want := range map[string]bool{
		"done": false, "family": false, "family-child": false,
		"failed": true, "running": true, "terminated": true, "compensated": true, "busy": true, "busy-child": true,
	} {
		if got := instanceExists(t, h.be, id); got != want {
			t.Errorf("%s: exists %v, want %v", id, got, want)
		}
	}
	// The child alone is not a root: it waits for its parent.
	if err := h.client.RaiseEvent(ctx, "busy-child", "go"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, h.be, "busy", api.RUNTIME_STATUS_COMPLETED)
	time.Sleep(5 * time.Millisecond)
	if n, err := h.be.Sweep(ctx); err != nil || n != 2 {
		t.Fatalf("second sweep: %d %v, want busy and its child", n, err)
	}
	countIs(4)
}

// TestRetentionInBackground: with an interval set, sweeps run by
// themselves; a watcher sees its instance go.
func TestRetentionInBackground(t *testing.T) {
	h := startHubWith(t, filepath.Join(t.TempDir(), "wf.db"), 8, retentionRegistry(),
		withRetention(store.Retention{Completed: 10 * time.Millisecond, Interval: 50 * time.Millisecond}))
	defer h.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := h.client.ScheduleNewOrchestration(ctx, "Quick", api.WithInstanceID("a"), api.WithInput("ok")); err != nil {
		t.Fatal(err)
	}
	err := h.be.WatchOrchestrationRuntimeStatus(ctx, "a", func(*backend.OrchestrationMetadata) bool { return false })
	if !errors.Is(err, api.ErrInstanceNotFound) {
		t.Fatalf("watch until purged: %v", err)
	}
}

// finishInstances creates n instances with inputs of size bytes and
// completes each with one work item, by hand (no executor: the test is
// about the file).
func finishInstances(t testing.TB, be *store.Backend, prefix string, n, size int) {
	t.Helper()
	ctx := context.Background()
	in := strings.Repeat("z", size)
	for i := 0; i < n; i++ {
		if err := create(t, be, fmt.Sprintf("%s-%d", prefix, i), api.WithInput(in)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		wi, err := fetch(t, be, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		st, err := be.GetOrchestrationRuntimeState(ctx, wi)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range wi.NewEvents {
			_ = runtimestate.AddEvent(st, e)
		}
		_ = runtimestate.AddEvent(st, &protos.HistoryEvent{
			EventId:   0,
			Timestamp: timestamppb.Now(),
			EventType: &protos.HistoryEvent_ExecutionCompleted{ExecutionCompleted: &protos.ExecutionCompletedEvent{
				OrchestrationStatus: api.RUNTIME_STATUS_COMPLETED,
				Result:              wrapperspb.String(in),
			}},
		})
		wi.State = st
		if err := be.CompleteOrchestrationWorkItem(ctx, wi); err != nil {
			t.Fatal(err)
		}
	}
}

func fileSize(t testing.TB, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestRetentionKeepsFileFlat: rounds of instances, each swept once
// finished: after the first round, freed pages take the new rows and the
// file stops growing; without retention it grows with every round.
func TestRetentionKeepsFileFlat(t *testing.T) {
	const rounds, perRound, size = 4, 50, 16000
	measure := func(ret bool) []int64 {
		path := filepath.Join(t.TempDir(), "wf.db")
		var sizes []int64
		for r := 0; r < rounds; r++ {
			o := store.Options{Path: path}
			if ret {
				o.Retention = &store.Retention{Completed: time.Nanosecond, Interval: time.Hour}
			}
			be, err := store.Open(o)
			if err != nil {
				t.Fatal(err)
			}
			finishInstances(t, be, fmt.Sprint("r", r), perRound, size)
			if ret {
				if n, err := be.Sweep(context.Background()); err != nil || n != perRound {
					t.Fatalf("round %d: swept %d, %v", r, n, err)
				}
			}
			// The last connection's close checkpoints the WAL into the file.
			if err := be.Close(); err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, fileSize(t, path))
		}
		return sizes
	}
	with, without := measure(true), measure(false)
	t.Logf("database size after each round of %d instances: with retention %v, without %v", perRound, with, without)
	for r := 1; r < rounds; r++ {
		if with[r] > with[0]+with[0]/10 {
			t.Errorf("with retention the file grew from %d to %d bytes by round %d", with[0], with[r], r+1)
		}
	}
	if without[rounds-1] < 3*without[0] {
		t.Errorf("without retention the file did not grow: %v", without)
	}
}
