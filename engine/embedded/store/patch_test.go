package store_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/api"
	"github.com/dapr/durabletask-go/api/protos"
	"github.com/dapr/durabletask-go/backend"
	"github.com/dapr/durabletask-go/task"
)

// patchRegistry is version 1 of a saga (steps A, then C after "go") or,
// patched, version 2, which runs B after A where IsPatched says so.
func patchRegistry(patched bool) *task.TaskRegistry {
	r := task.NewTaskRegistry()
	_ = r.AddOrchestratorN("Saga", func(ctx *task.OrchestrationContext) (any, error) {
		var steps []string
		call := func(name string) error {
			var s string
			err := ctx.CallActivity("Step", task.WithActivityInput(name)).Await(&s)
			steps = append(steps, s)
			return err
		}
		if err := call("A"); err != nil {
			return nil, err
		}
		if patched && ctx.IsPatched("add-b") {
			if err := call("B"); err != nil {
				return nil, err
			}
		}
		ctx.SetCustomStatus("waiting")
		if err := ctx.WaitForSingleEvent("go", time.Hour).Await(nil); err != nil {
			return nil, err
		}
		if err := call("C"); err != nil {
			return nil, err
		}
		return strings.Join(steps, ","), nil
	})
	_ = r.AddActivityN("Step", func(ctx task.ActivityContext) (any, error) {
		var s string
		err := ctx.GetInput(&s)
		return s, err
	})
	return r
}

func waitCustomStatus(t *testing.T, be backend.Backend, id api.InstanceID, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := be.WatchOrchestrationRuntimeStatus(ctx, id, func(md *backend.OrchestrationMetadata) bool {
		return md.GetCustomStatus().GetValue() == want
	}); err != nil {
		t.Fatalf("%s: custom status %q: %v", id, want, err)
	}
}

// patches lists the patches recorded in an instance's history (durabletask
// records them on the OrchestratorStarted event of the work item that first
// took the patched path).
func patches(t *testing.T, be backend.Backend, id string) []string {
	t.Helper()
	hist, err := be.GetInstanceHistory(context.Background(), &protos.GetInstanceHistoryRequest{InstanceId: id})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range hist.Events {
		out = append(out, e.GetOrchestratorStarted().GetVersion().GetPatches()...)
	}
	return out
}

// TestPatchedUpgradeMidFlight: a saga is upgraded (IsPatched) while an
// instance waits. After the restart the old instance replays its history
// unpatched and finishes on the old path; a new one takes the patched path,
// and keeps it across another restart because the store kept the patch
// decision in its history.
func TestPatchedUpgradeMidFlight(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wf.db")
	ctx := context.Background()
	h := startHubWith(t, path, 4, patchRegistry(false))
	if _, err := h.client.ScheduleNewOrchestration(ctx, "Saga", api.WithInstanceID("old")); err != nil {
		t.Fatal(err)
	}
	waitCustomStatus(t, h.be, "old", "waiting")
	h.stop()

	h = startHubWith(t, path, 4, patchRegistry(true))
	if _, err := h.client.ScheduleNewOrchestration(ctx, "Saga", api.WithInstanceID("new")); err != nil {
		t.Fatal(err)
	}
	waitCustomStatus(t, h.be, "new", "waiting")
	h.stop()

	// A second restart: "new" replays from the stored history alone.
	h = startHubWith(t, path, 4, patchRegistry(true))
	defer h.stop()
	for _, id := range []api.InstanceID{"old", "new"} {
		if err := h.client.RaiseEvent(ctx, id, "go"); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[api.InstanceID]string{"old": `"A,C"`, "new": `"A,B,C"`} {
		md := waitStatus(t, h.be, id, api.RUNTIME_STATUS_COMPLETED)
		if got := md.GetOutput().GetValue(); got != want {
			t.Errorf("%s: output %s, want %s", id, got, want)
		}
	}
	if p := patches(t, h.be, "old"); len(p) != 0 {
		t.Errorf("old instance recorded patches %v", p)
	}
	if p := patches(t, h.be, "new"); !slices.Contains(p, "add-b") {
		t.Errorf("new instance's patches %v, want add-b", p)
	}
}
