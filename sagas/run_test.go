package sagas_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/topics"
)

func threeSteps() sagas.Saga {
	return sagas.Saga{Name: "ThreeSteps", Steps: []sagas.Step{cmd("a"), cmd("b"), cmd("c")}}
}

// ThreeSteps is a saga of three command steps, each with a compensation.
func ThreeSteps(ctx *workflow.WorkflowContext) (any, error) { return sagas.Run(ctx, threeSteps()) }

// QuickTimeouts is ThreeSteps with b's reply awaited 300 ms.
func QuickTimeouts(ctx *workflow.WorkflowContext) (any, error) {
	s := threeSteps()
	s.Name = "QuickTimeouts"
	s.Steps[1].Timeout = 300 * time.Millisecond
	return sagas.Run(ctx, s)
}

func TestSagasValidate(t *testing.T) {
	if err := threeSteps().Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestFailureAtEveryStep fails each step in turn and checks that exactly
// the steps before it are compensated, in reverse order, and that nothing
// after it runs.
func TestFailureAtEveryStep(t *testing.T) {
	k := newKit(t, kitOptions{workflows: map[string]workflow.Workflow{"ThreeSteps": ThreeSteps}})
	cases := []struct {
		name        string
		fail        string
		status      string
		compensated []string
		commands    []string
		steps       []topics.StepResult
	}{
		{
			name: "none fails", status: topics.StatusCompleted,
			commands: []string{"a.do#1", "b.do#1", "c.do#1"},
			steps:    []topics.StepResult{{Name: "a", Status: "done"}, {Name: "b", Status: "done"}, {Name: "c", Status: "done"}},
		},
		{
			name: "first fails", fail: "a", status: topics.StatusCompensated,
			commands: []string{"a.do#1"},
			steps:    []topics.StepResult{{Name: "a", Status: "failed", Error: "a refused"}},
		},
		{
			name: "second fails", fail: "b", status: topics.StatusCompensated, compensated: []string{"a"},
			commands: []string{"a.do#1", "b.do#1", "a.undo#1"},
			steps:    []topics.StepResult{{Name: "a", Status: "compensated"}, {Name: "b", Status: "failed", Error: "b refused"}},
		},
		{
			name: "third fails", fail: "c", status: topics.StatusCompensated, compensated: []string{"b", "a"},
			commands: []string{"a.do#1", "b.do#1", "c.do#1", "b.undo#1", "a.undo#1"},
			steps: []topics.StepResult{{Name: "a", Status: "compensated"}, {Name: "b", Status: "compensated"},
				{Name: "c", Status: "failed", Error: "c refused"}},
		},
	}
	for _, tc := range cases {
		p := plan{}
		if tc.fail != "" {
			p.Fail = []string{tc.fail}
		}
		k.Start("ThreeSteps", "fail-"+tc.name, p)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := "fail-" + tc.name
			out := k.Outcome(id)
			if out.Status != tc.status {
				t.Errorf("status %s, want %s (error %q)", out.Status, tc.status, out.Error)
			}
			eq(t, "compensated", out.Compensated, tc.compensated)
			eq(t, "commands", k.commandsOf(id), tc.commands)
			eq(t, "steps", out.Steps, tc.steps)
			if tc.fail != "" && out.Error != "step "+tc.fail+" failed: "+tc.fail+" refused" {
				t.Errorf("error %q", out.Error)
			}
			outs := k.Outcomes(id)
			if len(outs) != 1 || outs[0].Status != tc.status {
				t.Errorf("published outcomes %+v, want one %s", outs, tc.status)
			}
			if ev := distinct(k.Published(topics.Outcomes)); !hasID(ev, topics.OutcomeID(id, tc.status)) {
				t.Errorf("no outcome event with id %s", topics.OutcomeID(id, tc.status))
			}
		})
	}
}

func hasID(evs []topics.CloudEvent, id string) bool {
	for _, e := range evs {
		if e.ID == id {
			return true
		}
	}
	return false
}

// TestNoReplyIsRetriedThenCompensated: a participant that never answers
// gets the command MaxAttempts times; the step then counts as timed out
// and is compensated too, since no reply does not mean nothing happened.
func TestNoReplyIsRetriedThenCompensated(t *testing.T) {
	k := newKit(t, kitOptions{workflows: map[string]workflow.Workflow{"QuickTimeouts": QuickTimeouts}})
	k.Start("QuickTimeouts", "silent-b", plan{Silent: []string{"b"}})
	out := k.Outcome("silent-b")
	if out.Status != topics.StatusCompensated {
		t.Fatalf("status %s (%s)", out.Status, out.Error)
	}
	eq(t, "commands", k.commandsOf("silent-b"), []string{"a.do#1", "b.do#1", "b.do#2", "b.undo#1", "a.undo#1"})
	eq(t, "compensated", out.Compensated, []string{"b", "a"})
	if want := "step b timed-out: no reply after 2 attempts of 300ms"; out.Error != want {
		t.Errorf("error %q, want %q", out.Error, want)
	}
}

// TestCompensationFailureEndsFailed: a compensation refused on every
// attempt leaves the saga "failed" with the step listed as not undone; the
// other compensations still run.
func TestCompensationFailureEndsFailed(t *testing.T) {
	k := newKit(t, kitOptions{workflows: map[string]workflow.Workflow{"ThreeSteps": ThreeSteps}})
	k.Start("ThreeSteps", "stuck", plan{Fail: []string{"c"}, RefuseUndo: []string{"a"}})
	out := k.Outcome("stuck")
	if out.Status != topics.StatusFailed {
		t.Fatalf("status %s, want failed", out.Status)
	}
	eq(t, "not undone", out.NotUndone, []string{"a"})
	eq(t, "compensated", out.Compensated, []string{"b"})
	eq(t, "commands", k.commandsOf("stuck"),
		[]string{"a.do#1", "b.do#1", "c.do#1", "b.undo#1", "a.undo#1", "a.undo#2", "a.undo#3"})
	if s := out.Steps[0]; s.Status != topics.StepCompensationFailed ||
		s.Error != "undo-a not confirmed after 3 attempts: cannot undo a" {
		t.Errorf("step a %+v", s)
	}
	evs := distinct(k.Published(topics.Outcomes))
	if len(evs) != 1 || evs[0].Type != topics.OutcomeFailed || evs[0].ID != "stuck/failed" {
		t.Errorf("outcome events %+v", evs)
	}
	if !strings.HasPrefix(out.Error, "step c failed") {
		t.Errorf("error %q", out.Error)
	}
}
