package sagas_test

import (
	"testing"
	"time"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/compensations"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/topics"
)

func parallelSaga() sagas.Saga {
	return sagas.Saga{Name: "ParallelSaga", Steps: []sagas.Step{
		cmd("a"),
		{
			Name: "fanout",
			Parallel: []sagas.Step{
				cmd("p1"),
				cmd("p2"),
				cmd("p3"),
				{
					Name:         "stock",
					Activity:     &sagas.Activity{Name: "Reserve"},
					MaxAttempts:  2,
					Compensation: &compensations.Compensation{Name: "release", Activity: "Release"},
				},
			},
		},
		cmd("z"),
	}}
}

// ParallelSaga runs a fan-out of three commands and an activity between
// two command steps.
func ParallelSaga(ctx *workflow.WorkflowContext) (any, error) { return sagas.Run(ctx, parallelSaga()) }

func TestParallelGroup(t *testing.T) {
	sh := newShop()
	k := newKit(t, kitOptions{workflows: map[string]workflow.Workflow{"ParallelSaga": ParallelSaga}, activities: sh.activities()})
	// p1's participant answers only once p2's and p3's commands arrived:
	// with members run one after the other the saga would hang.
	gate := map[string][]string{"p1": {"p2", "p3"}}
	k.Start("ParallelSaga", "par-ok", plan{After: gate})
	k.Start("ParallelSaga", "par-p2-fails", plan{After: gate, Fail: []string{"p2"}})

	t.Run("members run at once and all succeed", func(t *testing.T) {
		out := k.Outcome("par-ok")
		if out.Status != topics.StatusCompleted {
			t.Fatalf("status %s (%s)", out.Status, out.Error)
		}
		names := make([]string, len(out.Steps))
		for i, s := range out.Steps {
			names[i] = s.Name + ":" + s.Status
		}
		eq(t, "steps", names, []string{"a:done", "p1:done", "p2:done", "p3:done", "stock:done", "z:done"})
		if k.parts.gateMisses() != 0 {
			t.Errorf("p1 was answered before p2 and p3 were sent: members did not fan out")
		}
	})
	t.Run("a failing member undoes the members that succeeded, then the earlier steps", func(t *testing.T) {
		out := k.Outcome("par-p2-fails")
		if out.Status != topics.StatusCompensated {
			t.Fatalf("status %s (%s)", out.Status, out.Error)
		}
		eq(t, "compensated", out.Compensated, []string{"stock", "p3", "p1", "a"})
		if want := "step fanout failed: p2 failed: p2 refused"; out.Error != want {
			t.Errorf("error %q, want %q", out.Error, want)
		}
		if k.parts.effect("par-p2-fails/p2/undo") != 0 || k.parts.effect("par-p2-fails/z") != 0 {
			t.Error("the failed member was undone, or the step after the group ran")
		}
		if n := len(sh.requests("release", "par-p2-fails")); n != 1 {
			t.Errorf("%d releases, want 1", n)
		}
	})
}

// TestParallelValidation: groups hold commands, activities, children and
// waits, never two members waiting for the same event.
func TestParallelValidation(t *testing.T) {
	s := sagas.Saga{Name: "Bad", Steps: []sagas.Step{{
		Name:    "g",
		Timeout: time.Second,
		Parallel: []sagas.Step{
			cmd("x"),
			{Name: "y", Command: topics.CommandSpec{Topic: "t", Type: "y", ReplyEvent: "X.DO.REPLY"}, Timeout: time.Second},
			{Name: "f", Func: func(*workflow.WorkflowContext, *sagas.State) (any, error) { return nil, nil }},
		},
	}}}
	err := s.Validate()
	for _, want := range []string{
		"saga Bad step g: a parallel group takes no timeout",
		"saga Bad step y: waits for event X.DO.REPLY like member x",
		"saga Bad step f: a func step cannot be a member of a parallel group",
	} {
		if err == nil || !contains(err.Error(), want) {
			t.Errorf("validation error %v lacks %q", err, want)
		}
	}
}
