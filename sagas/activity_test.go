package sagas_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/compensations"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/topics"
)

// shop is a service the saga calls through activities. Its methods are
// registered as method values ("Reserve", ...).
type shop struct {
	mu    sync.Mutex
	calls map[string][]sagas.Request // by activity
}

func newShop() *shop { return &shop{calls: map[string][]sagas.Request{}} }

// shopPlan is the saga input the shop reads.
type shopPlan struct {
	// FailReserve makes the first FailReserve attempts of reserve fail.
	FailReserve int  `json:"failReserve,omitempty"`
	Decline     bool `json:"decline,omitempty"`
}

func (s *shop) record(name string, ctx workflow.ActivityContext) (sagas.Request, shopPlan, error) {
	req, err := sagas.DecodeRequest(ctx)
	if err != nil {
		return req, shopPlan{}, err
	}
	s.mu.Lock()
	s.calls[name] = append(s.calls[name], req)
	s.mu.Unlock()
	var p shopPlan
	_ = json.Unmarshal(req.Payload, &p)
	return req, p, nil
}

func (s *shop) requests(name, instance string) []sagas.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sagas.Request
	for _, r := range s.calls[name] {
		if r.InstanceID == instance {
			out = append(out, r)
		}
	}
	return out
}

type reservation struct {
	ID string `json:"id"`
}

func (s *shop) Reserve(ctx workflow.ActivityContext) (any, error) {
	req, p, err := s.record("reserve", ctx)
	if err != nil {
		return nil, err
	}
	if req.Attempt <= p.FailReserve {
		return nil, fmt.Errorf("stock service busy (attempt %d)", req.Attempt)
	}
	return reservation{ID: "r-" + req.InstanceID}, nil
}

func (s *shop) Release(ctx workflow.ActivityContext) (any, error) {
	_, _, err := s.record("release", ctx)
	return nil, err
}

func (s *shop) Charge(ctx workflow.ActivityContext) (any, error) {
	req, _, err := s.record("charge", ctx)
	if err != nil {
		return nil, err
	}
	var in struct {
		Reservation string `json:"reservation"`
		Decline     bool   `json:"decline"`
	}
	if err := json.Unmarshal(req.Payload, &in); err != nil {
		return nil, sagas.Permanent(err)
	}
	if in.Decline {
		return nil, sagas.Permanent(errors.New("card declined"))
	}
	return map[string]string{"charge": "c-" + in.Reservation}, nil
}

func (s *shop) activities() map[string]workflow.Activity {
	return map[string]workflow.Activity{"Reserve": s.Reserve, "Release": s.Release, "Charge": s.Charge}
}

func activitySaga() sagas.Saga {
	return sagas.Saga{Name: "ActivitySaga", Steps: []sagas.Step{
		{
			Name:        "reserve",
			Activity:    &sagas.Activity{Name: "Reserve", Params: map[string]int{"qty": 2}},
			Timeout:     time.Minute,
			MaxAttempts: 3,
			Backoff:     sagas.Backoff{Initial: 30 * time.Millisecond, Multiplier: 2},
			Compensation: &compensations.Compensation{
				Name: "release", Activity: "Release", MaxAttempts: 2,
			},
		},
		{
			Name:     "charge",
			Activity: &sagas.Activity{Name: "Charge"},
			// The charge is computed from the reservation's result and the
			// saga's input: a pure function of the state.
			Input: func(s *sagas.State) (any, error) {
				var r reservation
				if err := s.Decode("reserve", &r); err != nil {
					return nil, err
				}
				var p shopPlan
				if err := s.DecodeInput(&p); err != nil {
					return nil, err
				}
				return map[string]any{"reservation": r.ID, "decline": p.Decline}, nil
			},
			MaxAttempts: 3,
		},
	}}
}

// ActivitySaga reserves and charges through activities.
func ActivitySaga(ctx *workflow.WorkflowContext) (any, error) { return sagas.Run(ctx, activitySaga()) }

func TestActivitySteps(t *testing.T) {
	sh := newShop()
	k := newKit(t, kitOptions{workflows: map[string]workflow.Workflow{"ActivitySaga": ActivitySaga}, activities: sh.activities()})
	k.Start("ActivitySaga", "act-retry", shopPlan{FailReserve: 2})
	k.Start("ActivitySaga", "act-exhausted", shopPlan{FailReserve: 5})
	k.Start("ActivitySaga", "act-declined", shopPlan{Decline: true})

	t.Run("retried with backoff until it succeeds", func(t *testing.T) {
		out := k.Outcome("act-retry")
		if out.Status != topics.StatusCompleted {
			t.Fatalf("status %s (%s)", out.Status, out.Error)
		}
		reqs := sh.requests("reserve", "act-retry")
		if len(reqs) != 3 {
			t.Fatalf("%d reserve calls, want 3", len(reqs))
		}
		for i, r := range reqs {
			if want := fmt.Sprintf("act-retry/reserve/%d", i+1); r.ID != want || r.Attempt != i+1 {
				t.Errorf("call %d: id %s attempt %d, want %s", i, r.ID, r.Attempt, want)
			}
			if r.Deadline.IsZero() || string(r.Params) != `{"qty":2}` {
				t.Errorf("call %d: deadline %v params %s", i, r.Deadline, r.Params)
			}
		}
		if d := reqs[2].Deadline.Sub(reqs[0].Deadline); d < 90*time.Millisecond {
			t.Errorf("attempts 1 and 3 only %s apart; backoff is 30ms then 60ms", d)
		}
		charge := sh.requests("charge", "act-retry")
		if len(charge) != 1 || string(charge[0].Payload) != `{"decline":false,"reservation":"r-act-retry"}` {
			t.Errorf("charge requests %+v", charge)
		}
	})
	t.Run("an activity out of attempts fails and is not compensated", func(t *testing.T) {
		out := k.Outcome("act-exhausted")
		if out.Status != topics.StatusCompensated || len(out.Compensated) != 0 {
			t.Fatalf("outcome %+v", out)
		}
		if want := "step reserve failed: stock service busy (attempt 3)"; out.Error != want {
			t.Errorf("error %q, want %q", out.Error, want)
		}
		if n := len(sh.requests("release", "act-exhausted")); n != 0 {
			t.Errorf("%d releases", n)
		}
	})
	t.Run("a permanent error is not retried; the compensation activity gets the result", func(t *testing.T) {
		out := k.Outcome("act-declined")
		if out.Status != topics.StatusCompensated || out.Error != "step charge failed: card declined" {
			t.Fatalf("outcome %+v", out)
		}
		eq(t, "compensated", out.Compensated, []string{"reserve"})
		if n := len(sh.requests("charge", "act-declined")); n != 1 {
			t.Errorf("%d charge calls, want 1", n)
		}
		rel := sh.requests("release", "act-declined")
		if len(rel) != 1 || !rel[0].Compensate || rel[0].ID != "act-declined/reserve/undo/1" ||
			string(rel[0].Result) != `{"id":"r-act-declined"}` {
			t.Errorf("release requests %+v", rel)
		}
	})
}
