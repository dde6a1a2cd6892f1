package sagas_test

import (
	"testing"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/topics"
)

// ShippingSaga is the child: pack, then send.
func ShippingSaga(ctx *workflow.WorkflowContext) (any, error) {
	return sagas.Run(ctx, sagas.Saga{Name: "Shipping", Steps: []sagas.Step{cmd("pack"), cmd("send")}})
}

// ParentSaga runs ShippingSaga as its middle step.
func ParentSaga(ctx *workflow.WorkflowContext) (any, error) {
	ship := sagas.Step{Name: "ship", Child: &sagas.Child{Workflow: "ShippingSaga"}, Compensation: undo("ship")}
	return sagas.Run(ctx, sagas.Saga{Name: "Parent", Steps: []sagas.Step{cmd("a"), ship, cmd("z")}})
}

func TestChildSaga(t *testing.T) {
	k := newKit(t, kitOptions{workflows: map[string]workflow.Workflow{"ParentSaga": ParentSaga, "ShippingSaga": ShippingSaga}})
	k.Start("ParentSaga", "p-ok", plan{})
	k.Start("ParentSaga", "p-child-compensated", plan{Fail: []string{"send"}})
	k.Start("ParentSaga", "p-child-failed", plan{Fail: []string{"send"}, RefuseUndo: []string{"pack"}})
	k.Start("ParentSaga", "p-after-child", plan{Fail: []string{"z"}})

	t.Run("completes with the child under a deterministic instance ID", func(t *testing.T) {
		out := k.Outcome("p-ok")
		if out.Status != topics.StatusCompleted {
			t.Fatalf("status %s (%s)", out.Status, out.Error)
		}
		child := k.Outcome("p-ok:ship:1")
		if child.Saga != "Shipping" || child.Status != topics.StatusCompleted {
			t.Fatalf("child outcome %+v", child)
		}
		if n := len(k.Outcomes("p-ok:ship:1")); n != 1 {
			t.Errorf("child published %d outcomes, want 1", n)
		}
	})
	t.Run("a child that compensated fails the step without undoing it twice", func(t *testing.T) {
		out := k.Outcome("p-child-compensated")
		if out.Status != topics.StatusCompensated {
			t.Fatalf("status %s (%s)", out.Status, out.Error)
		}
		eq(t, "compensated", out.Compensated, []string{"a"})
		want := "step ship failed: child p-child-compensated:ship:1 compensated: step send failed: send refused"
		if out.Error != want {
			t.Errorf("error %q, want %q", out.Error, want)
		}
		if k.parts.effect("p-child-compensated:ship:1/pack/undo") != 1 || k.parts.effect("p-child-compensated/ship/undo") != 0 {
			t.Error("the child should undo its own steps and the parent should not undo the child step")
		}
	})
	t.Run("what a failed child could not undo fails the parent", func(t *testing.T) {
		out := k.Outcome("p-child-failed")
		if out.Status != topics.StatusFailed {
			t.Fatalf("status %s (%s)", out.Status, out.Error)
		}
		eq(t, "not undone", out.NotUndone, []string{"p-child-failed:ship:1/pack"})
		eq(t, "compensated", out.Compensated, []string{"a"})
	})
	t.Run("a completed child is compensated when a later step fails", func(t *testing.T) {
		out := k.Outcome("p-after-child")
		eq(t, "compensated", out.Compensated, []string{"ship", "a"})
		if k.parts.effect("p-after-child/ship/undo") != 1 {
			t.Error("ship's compensation did not run once")
		}
	})
}
