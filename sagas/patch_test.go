package sagas_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/topics"
)

// fraudCheckPatch names the change between OrderFlow's two releases.
const fraudCheckPatch = "fraud-check"

// orderFlow is a saga in two releases: the first holds stock, waits for
// an approval and ships; the second checks for fraud before holding
// stock, behind IsPatched so that instances started by the first release
// keep the steps they were started with.
func orderFlow(patched bool) workflow.Workflow {
	return func(ctx *workflow.WorkflowContext) (any, error) {
		steps := []sagas.Step{
			cmd("hold"),
			{Name: "approval", Wait: &sagas.Wait{Event: "approval"}, Timeout: time.Hour},
			cmd("ship"),
		}
		if patched && ctx.IsPatched(fraudCheckPatch) {
			steps = append([]sagas.Step{cmd("fraud")}, steps...)
		}
		return sagas.Run(ctx, sagas.Saga{Name: "OrderFlow", Steps: steps})
	}
}

// TestPatchedSagaUpgradedMidFlight upgrades a saga while an instance waits
// half-way: the worker is stopped and started on the same database with
// the patched code. The instance that started before the upgrade finishes
// on the steps it began with; one started after takes the patched branch,
// and keeps taking it when the worker restarts again mid-flight, because
// the engine recorded the patch in the instance's history.
func TestPatchedSagaUpgradedMidFlight(t *testing.T) {
	db := filepath.Join(t.TempDir(), "wf.db")
	atApproval := func(k *kit, id string) func() bool {
		return func() bool {
			e, err := k.Engine(t.Context())
			if err != nil {
				return false
			}
			st, err := e.Get(t.Context(), id)
			return err == nil && contains(st.CustomStatus, `"step":"approval"`)
		}
	}

	v1 := newKit(t, kitOptions{db: db, workflows: map[string]workflow.Workflow{"OrderFlow": orderFlow(false)}})
	v1.Start("OrderFlow", "before-upgrade", plan{})
	testkit.WaitUntil(t, 10*time.Second, "the first release's instance at the approval", atApproval(v1, "before-upgrade"))
	v1.Close()

	v2 := newKit(t, kitOptions{db: db, workflows: map[string]workflow.Workflow{"OrderFlow": orderFlow(true)}})
	v2.Start("OrderFlow", "after-upgrade", plan{})
	testkit.WaitUntil(t, 10*time.Second, "the second release's instance at the approval", atApproval(v2, "after-upgrade"))
	v2.Close()

	// Restarted again: the patched instance replays from its history.
	v3 := newKit(t, kitOptions{db: db, workflows: map[string]workflow.Workflow{"OrderFlow": orderFlow(true)}})
	v3.Raise("before-upgrade", "approval", nil)
	v3.Raise("after-upgrade", "approval", nil)
	for id, want := range map[string][]string{
		"before-upgrade": {"hold:done", "approval:done", "ship:done"},
		"after-upgrade":  {"fraud:done", "hold:done", "approval:done", "ship:done"},
	} {
		out := v3.Outcome(id)
		if out.Status != topics.StatusCompleted || !slices.Equal(stepNames(out), want) {
			t.Errorf("%s: %s, steps %v, want %v (%s)", id, out.Status, stepNames(out), want, out.Error)
		}
	}
	// Each command went out once per instance: nothing was replayed down
	// another branch.
	eq(t, "commands before the upgrade", v1.commandsOf("before-upgrade"), []string{"hold.do#1"})
	eq(t, "commands after the upgrade", v3.commandsOf("before-upgrade"), []string{"ship.do#1"})
	eq(t, "patched instance, first worker", v2.commandsOf("after-upgrade"), []string{"fraud.do#1", "hold.do#1"})
	eq(t, "patched instance, restarted worker", v3.commandsOf("after-upgrade"), []string{"ship.do#1"})
}
