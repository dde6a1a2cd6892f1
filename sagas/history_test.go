package sagas_test

import (
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/compensations"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/topics"
)

// bigPlan is the input of BigSaga: Pad makes it large.
type bigPlan struct {
	FailUndo bool   `json:"failUndo,omitempty"`
	Pad      string `json:"pad"`
}

// bigShop's Ship always fails (retried up to 50 times), so BigSaga goes
// on scheduling copies of its input until the history budget stops it.
type bigShop struct{ ships, undos atomic.Int64 }

func (s *bigShop) activities() map[string]workflow.Activity {
	return map[string]workflow.Activity{
		"Hold": func(ctx workflow.ActivityContext) (any, error) { return "held", nil },
		"Unhold": func(ctx workflow.ActivityContext) (any, error) {
			s.undos.Add(1)
			req, err := sagas.DecodeRequest(ctx)
			if err != nil {
				return nil, err
			}
			var p bigPlan
			if err := json.Unmarshal(req.Payload, &p); err != nil {
				return nil, sagas.Permanent(err)
			}
			if p.FailUndo {
				return nil, errors.New("warehouse busy")
			}
			return nil, nil
		},
		"Ship": func(ctx workflow.ActivityContext) (any, error) {
			s.ships.Add(1)
			return nil, errors.New("carrier down")
		},
	}
}

// testHistoryBudget is a quarter of sagas.DefaultMaxHistoryBytes.
const testHistoryBudget = sagas.DefaultMaxHistoryBytes / 4

func bigSaga(maxHistory int) sagas.Saga {
	return sagas.Saga{Name: "BigSaga", MaxHistoryBytes: maxHistory, NoProgress: true, Steps: []sagas.Step{
		{
			Name: "hold", Activity: &sagas.Activity{Name: "Hold"},
			Compensation: &compensations.Compensation{Name: "unhold", Activity: "Unhold", MaxAttempts: 50},
		},
		{Name: "ship", Activity: &sagas.Activity{Name: "Ship"}, MaxAttempts: 50},
	}}
}

func bigInput(t *testing.T, size int, failUndo bool) []byte {
	t.Helper()
	raw, err := json.Marshal(bigPlan{FailUndo: failUndo, Pad: strings.Repeat("x", size)})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestHistoryBudget: a saga whose input is copied into every attempt
// stops scheduling before its history outgrows what the engine can hand
// the worker (4 MiB gRPC messages), and ends with an outcome that says
// why, instead of staying RUNNING with an error every few seconds.
func TestHistoryBudget(t *testing.T) {
	sh := &bigShop{}
	k := newKit(t, kitOptions{
		workflows: map[string]workflow.Workflow{
			"BigSaga": func(ctx *workflow.WorkflowContext) (any, error) { return sagas.Run(ctx, bigSaga(testHistoryBudget)) },
		},
		activities: sh.activities(),
	})
	// A quarter of the default budget and of the inputs of
	// TestRuntimeOnDaprd (500 KB and 900 KB against 3 MiB): the same
	// decisions for a quarter of the bytes, which the race detector and a
	// busy machine take a long time to copy around.
	// 125 KB through a step that never succeeds: the retries stop at the
	// budget, the compensation runs, the outcome names the budget.
	k.StartRaw("BigSaga", "big-retries", bigInput(t, 125_000, false))
	// 225 KB: the first compensation attempt still fits, its retries do
	// not: nothing more can be done, a person must look.
	k.StartRaw("BigSaga", "big-undo", bigInput(t, 225_000, true))

	t.Run("retries stop at the budget and the saga compensates", func(t *testing.T) {
		out := k.Outcome("big-retries")
		if out.Status != topics.StatusCompensated || !strings.Contains(out.Error, "saga history full") {
			t.Fatalf("outcome %s: %s", out.Status, out.Error)
		}
		eq(t, "compensated", out.Compensated, []string{"hold"})
		t.Logf("error: %s", out.Error)
	})
	t.Run("a compensation out of room ends the saga failed", func(t *testing.T) {
		out := k.Outcome("big-undo")
		if out.Status != topics.StatusFailed || len(out.NotUndone) != 1 || out.NotUndone[0] != "hold" {
			t.Fatalf("outcome %s: %s, not undone %v", out.Status, out.Error, out.NotUndone)
		}
		var undo string
		for _, s := range out.Steps {
			if s.Name == "hold" {
				undo = s.Error
			}
		}
		if !strings.Contains(undo, "saga history full") || !strings.Contains(undo, "compensations") {
			t.Fatalf("hold's compensation error %q does not name the history", undo)
		}
		t.Logf("hold: %s", undo)
	})
	t.Logf("ship attempts %d, unhold attempts %d (each of 50 allowed)", sh.ships.Load(), sh.undos.Load())
}

// TestBigEventsStillHandedOver: five 900 KB events raised on one instance
// (the bridge refuses them, limits.maxInputBytes; the engine API does not)
// put 4.5 MB in its history, which the runtime cannot count before a step
// waits for them. The embedded hub still hands such a history to the
// worker, and the saga ends with an outcome.
func TestBigEventsStillHandedOver(t *testing.T) {
	sh := &bigShop{}
	saga := sagas.Saga{Name: "WaitBig", NoProgress: true, Steps: []sagas.Step{
		{Name: "doc", Wait: &sagas.Wait{Event: "doc"}, Timeout: 30 * time.Second},
		{Name: "hold", Activity: &sagas.Activity{Name: "Hold"}},
	}}
	k := newKit(t, kitOptions{
		workflows:  map[string]workflow.Workflow{"WaitBig": func(ctx *workflow.WorkflowContext) (any, error) { return sagas.Run(ctx, saga) }},
		activities: sh.activities(),
	})
	k.Start("WaitBig", "big-events", map[string]string{"order": "1"})
	doc := map[string]string{"pad": strings.Repeat("d", 900_000)}
	for range 5 {
		k.Raise("big-events", "doc", doc)
	}
	if out := k.Outcome("big-events"); out.Status != topics.StatusCompleted {
		t.Fatalf("outcome %s: %s", out.Status, out.Error)
	}
}
