package sagas_test

import (
	"errors"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/topics"
)

type approval struct {
	Approved bool   `json:"approved"`
	By       string `json:"by"`
}

// ApprovalSaga holds stock, waits 400 ms for a person's decision, then ships.
func ApprovalSaga(ctx *workflow.WorkflowContext) (any, error) {
	return sagas.Run(ctx, approvalSaga(400*time.Millisecond))
}

// PatientApprovalSaga waits a minute for the decision: tests that raise it
// must not race the timeout on a slow machine.
func PatientApprovalSaga(ctx *workflow.WorkflowContext) (any, error) {
	return sagas.Run(ctx, approvalSaga(time.Minute))
}

func approvalSaga(timeout time.Duration) sagas.Saga {
	return sagas.Saga{Name: "Approval", Steps: []sagas.Step{
		cmd("hold"),
		{
			Name:    "approval",
			Wait:    &sagas.Wait{Event: "approval", OnTimeout: sagas.Fail("nobody approved")},
			Timeout: timeout,
			Decide: func(s *sagas.State) (sagas.Decision, error) {
				var a approval
				if err := s.Decode("approval", &a); err != nil {
					return sagas.Decision{}, err
				}
				if !a.Approved {
					return sagas.Fail("rejected by " + a.By), nil
				}
				return sagas.Next(), nil
			},
		},
		cmd("ship"),
	}}
}

// LegacySaga waits for a legacy system's reply; without one it takes the
// fallback path, with one it completes early. The test raises the reply
// right after the start; the timeout leaves a loaded machine time to
// deliver it.
func LegacySaga(ctx *workflow.WorkflowContext) (any, error) {
	return sagas.Run(ctx, sagas.Saga{Name: "Legacy", Steps: []sagas.Step{
		cmd("a"),
		{
			Name:    "legacy",
			Wait:    &sagas.Wait{Event: "legacy.reply", OnTimeout: sagas.Goto("fallback")},
			Timeout: 2 * time.Second,
			Decide:  func(*sagas.State) (sagas.Decision, error) { return sagas.Complete(), nil },
		},
		cmd("fallback"),
	}})
}

func stepNames(out topics.Outcome) []string {
	names := make([]string, len(out.Steps))
	for i, s := range out.Steps {
		names[i] = s.Name + ":" + s.Status
	}
	return names
}

func TestWaitForEventBranches(t *testing.T) {
	k := newKit(t, kitOptions{workflows: map[string]workflow.Workflow{"ApprovalSaga": ApprovalSaga, "PatientApprovalSaga": PatientApprovalSaga, "LegacySaga": LegacySaga}})
	k.Start("PatientApprovalSaga", "appr-yes", plan{})
	k.Start("PatientApprovalSaga", "appr-no", plan{})
	k.Start("ApprovalSaga", "appr-none", plan{})
	k.Start("LegacySaga", "legacy-answers", plan{})
	k.Start("LegacySaga", "legacy-silent", plan{})
	k.Raise("appr-yes", "approval", approval{Approved: true, By: "alice"})
	k.Raise("appr-no", "approval", approval{Approved: false, By: "bob"})
	k.Raise("legacy-answers", "legacy.reply", map[string]string{"status": "ok"})

	t.Run("approved goes on", func(t *testing.T) {
		out := k.Outcome("appr-yes")
		eq(t, "steps", stepNames(out), []string{"hold:done", "approval:done", "ship:done"})
	})
	t.Run("rejected fails and compensates", func(t *testing.T) {
		out := k.Outcome("appr-no")
		if out.Status != topics.StatusCompensated || out.Error != "step approval: rejected by bob" {
			t.Fatalf("outcome %+v", out)
		}
		eq(t, "compensated", out.Compensated, []string{"hold"})
	})
	t.Run("no decision in time fails", func(t *testing.T) {
		out := k.Outcome("appr-none")
		want := "step approval timed-out: no approval event within 400ms (nobody approved)"
		if out.Status != topics.StatusCompensated || out.Error != want {
			t.Fatalf("outcome %+v, want error %q", out, want)
		}
		eq(t, "steps", stepNames(out), []string{"hold:compensated", "approval:timed-out"})
	})
	t.Run("an answer completes early", func(t *testing.T) {
		out := k.Outcome("legacy-answers")
		if out.Status != topics.StatusCompleted {
			t.Fatalf("outcome %+v", out)
		}
		eq(t, "steps", stepNames(out), []string{"a:done", "legacy:done"})
	})
	t.Run("silence jumps to the fallback", func(t *testing.T) {
		out := k.Outcome("legacy-silent")
		if out.Status != topics.StatusCompleted {
			t.Fatalf("outcome %+v", out)
		}
		eq(t, "steps", stepNames(out), []string{"a:done", "legacy:timed-out", "fallback:done"})
	})
}

// PollingSaga uses the escape hatch: a loop of durable timers, then a
// branch on its result.
func PollingSaga(ctx *workflow.WorkflowContext) (any, error) {
	return sagas.Run(ctx, sagas.Saga{Name: "Polling", Steps: []sagas.Step{
		{
			Name:        "poll",
			MaxAttempts: 2,
			Func: func(ctx *workflow.WorkflowContext, s *sagas.State) (any, error) {
				if s.Attempt == 1 {
					return nil, errors.New("first attempt fails")
				}
				start := ctx.CurrentTimeUTC()
				polls := 0
				for ; polls < 3; polls++ {
					if err := ctx.CreateTimer(20 * time.Millisecond).Await(nil); err != nil {
						return nil, err
					}
				}
				return map[string]any{"polls": polls, "waited": ctx.CurrentTimeUTC().Sub(start).String()}, nil
			},
		},
		{
			Name: "enough",
			Decide: func(s *sagas.State) (sagas.Decision, error) {
				var r struct {
					Polls int `json:"polls"`
				}
				if err := s.Decode("poll", &r); err != nil {
					return sagas.Decision{}, err
				}
				if r.Polls != 3 {
					return sagas.Fail("polled wrong"), nil
				}
				return sagas.Next(), nil
			},
		},
		cmd("a"),
	}})
}

func TestFuncEscapeHatch(t *testing.T) {
	k := newKit(t, kitOptions{workflows: map[string]workflow.Workflow{"PollingSaga": PollingSaga}})
	k.Start("PollingSaga", "poll-1", plan{})
	out := k.Outcome("poll-1")
	if out.Status != topics.StatusCompleted {
		t.Fatalf("outcome %+v", out)
	}
	eq(t, "steps", stepNames(out), []string{"poll:done", "enough:done", "a:done"})
}
