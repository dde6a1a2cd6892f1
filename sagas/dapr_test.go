package sagas_test

import (
	"maps"
	"testing"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/internal/daprtest"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/declarative"
	"github.com/sagabridge/sagabridge/sagas/sagatest"
	"github.com/sagabridge/sagabridge/topics"
)

// TestRuntimeOnDaprd runs the saga runtime's features on a real daprd
// (Dapr v1.14 with a Redis actor state store) instead of the embedded
// engine: the same workflows, activities and expectations. It skips on a
// machine without the Dapr test environment (`make dapr` and Redis).
func TestRuntimeOnDaprd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daprd")
	}
	sidecar := daprtest.Start(t, daprtest.Options{})
	feats, err := declarative.ParseDefinitions("features.yaml", []byte(featuresYAML))
	if err != nil {
		t.Fatal(err)
	}
	defs, err := declarative.NewDefinitions(nil, feats...)
	if err != nil {
		t.Fatal(err)
	}
	sh := newShop()
	wfs := defs.Workflows()
	maps.Copy(wfs, map[string]workflow.Workflow{
		"ThreeSteps": ThreeSteps, "ParallelSaga": ParallelSaga, "ParentSaga": ParentSaga, "ShippingSaga": ShippingSaga,
		"PatientApprovalSaga": PatientApprovalSaga, "LegacySaga": LegacySaga, "ActivitySaga": ActivitySaga,
	})
	wfs["BigSaga"] = func(ctx *workflow.WorkflowContext) (any, error) { return sagas.Run(ctx, bigSaga(0)) }
	acts := sh.activities()
	maps.Copy(acts, (&bigShop{}).activities())
	k := newKit(t, kitOptions{dapr: sidecar, activities: acts, workflows: wfs})
	// The history budget of TestHistoryBudget, where it matters most:
	// daprd refuses gRPC messages over 4 MiB.
	k.StartRaw("BigSaga", "d-big-retries", bigInput(t, 500_000, false))
	k.StartRaw("BigSaga", "d-big-undo", bigInput(t, 900_000, true))
	k.Start("ThreeSteps", "d-c-fails", plan{Fail: []string{"c"}})
	k.Start("ThreeSteps", "d-stuck", plan{Fail: []string{"c"}, RefuseUndo: []string{"a"}})
	k.Start("ParallelSaga", "d-par", plan{After: map[string][]string{"p1": {"p2", "p3"}}, Fail: []string{"p2"}})
	k.Start("ParentSaga", "d-parent", plan{})
	k.Start("PatientApprovalSaga", "d-appr", plan{})
	k.Start("LegacySaga", "d-legacy", plan{})
	k.Start("ActivitySaga", "d-act", shopPlan{FailReserve: 2})
	st, err := defs.Start("Features", 1, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	in, err := st.Encode()
	if err != nil {
		t.Fatal(err)
	}
	k.StartRaw("Features", "d-yaml", in)
	k.Raise("d-appr", "approval", approval{Approved: false, By: "dana"})
	k.Raise("d-yaml", "approval", map[string]any{"approved": true})

	for _, c := range []struct {
		id, status  string
		compensated []string
		notUndone   []string
	}{
		{id: "d-c-fails", status: topics.StatusCompensated, compensated: []string{"b", "a"}},
		{id: "d-stuck", status: topics.StatusFailed, compensated: []string{"b"}, notUndone: []string{"a"}},
		{id: "d-par", status: topics.StatusCompensated, compensated: []string{"stock", "p3", "p1", "a"}},
		{id: "d-parent", status: topics.StatusCompleted},
		{id: "d-parent:ship:1", status: topics.StatusCompleted},
		{id: "d-appr", status: topics.StatusCompensated, compensated: []string{"hold"}},
		{id: "d-legacy", status: topics.StatusCompleted},
		{id: "d-act", status: topics.StatusCompleted},
		{id: "d-yaml", status: topics.StatusCompleted},
		{id: "d-big-retries", status: topics.StatusCompensated, compensated: []string{"hold"}},
		{id: "d-big-undo", status: topics.StatusFailed, notUndone: []string{"hold"}},
	} {
		t.Run(c.id, func(t *testing.T) {
			out := k.Outcome(c.id)
			if out.Status != c.status {
				t.Errorf("status %s, want %s (%s)", out.Status, c.status, out.Error)
			}
			eq(t, "compensated", out.Compensated, c.compensated)
			eq(t, "not undone", out.NotUndone, c.notUndone)
			if n := len(k.Outcomes(c.id)); n != 1 {
				t.Errorf("%d distinct outcome events", n)
			}
		})
	}
	if got := stepNames(k.Outcome("d-legacy")); len(got) != 3 || got[2] != "fallback:done" {
		t.Errorf("legacy steps %v", got)
	}

	// The app dies between steps (after daprd recorded the publish) and a
	// new worker connects to the same daprd. Dying in the middle of an
	// activity is not tested here: daprd v1.14's activity actor then waits
	// for the lost worker's answer until its one-hour activity timeout
	// (activity_actor.go: "need to handle the case where the app crashes"),
	// so the saga resumes only after an hour.
	t.Run("the app dies between steps; daprd keeps the saga", func(t *testing.T) {
		k.CrashOn(sagatest.CrashStop, func(topic string, ev topics.CloudEvent) bool {
			return topic == cmdTopic && ev.Type == "b.undo"
		})
		k.Start("ThreeSteps", "d-crash", plan{Fail: []string{"c"}})
		out := k.Outcome("d-crash")
		eq(t, "compensated", out.Compensated, []string{"b", "a"})
		for _, key := range []string{"d-crash/a", "d-crash/b", "d-crash/b/undo", "d-crash/a/undo"} {
			if n := k.parts.effect(key); n != 1 {
				t.Errorf("%s acted on %d times, want 1", key, n)
			}
		}
	})
}
