package sagas_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/progress"
	"github.com/sagabridge/sagabridge/topics"
)

// QuietSaga is ThreeSteps without progress events.
func QuietSaga(ctx *workflow.WorkflowContext) (any, error) {
	s := threeSteps()
	s.Name, s.NoProgress = "Quiet", true
	return sagas.Run(ctx, s)
}

func progressOf(t *testing.T, k *kit, id string) []progress.Progress {
	t.Helper()
	var out []progress.Progress
	for _, ev := range distinct(k.Published(progress.DefaultTopic)) {
		if ev.Subject != id {
			continue
		}
		p, err := progress.Decode(ev)
		if err != nil {
			t.Fatal(err)
		}
		if ev.ID != progress.ID(id, p.Seq) || ev.Type != progress.Type {
			t.Errorf("progress event id %s type %s", ev.ID, ev.Type)
		}
		out = append(out, p)
	}
	return out
}

func TestProgressEvents(t *testing.T) {
	k := newKit(t, kitOptions{workflows: map[string]workflow.Workflow{"ThreeSteps": ThreeSteps, "PatientApprovalSaga": PatientApprovalSaga, "QuietSaga": QuietSaga}})
	k.Start("ThreeSteps", "prog-c-fails", plan{Fail: []string{"c"}})
	k.Start("PatientApprovalSaga", "prog-wait", plan{})
	k.Start("QuietSaga", "prog-quiet", plan{})

	t.Run("every wait is reported, riding with its command", func(t *testing.T) {
		k.Outcome("prog-c-fails")
		var got []string
		for _, p := range progressOf(t, k, "prog-c-fails") {
			got = append(got, p.Status+" "+p.Step+" "+p.Kind+" "+p.WaitingFor[0])
		}
		eq(t, "progress", got, []string{
			"running a command event a.do.reply",
			"running b command event b.do.reply",
			"running c command event c.do.reply",
			"compensating b compensation event b.undo.reply",
			"compensating a compensation event a.undo.reply",
		})
		// Each progress event directly follows its command: one activity
		// published both.
		var order []string
		for _, e := range k.Events() {
			if e.Event.Subject == "prog-c-fails" {
				order = append(order, e.Topic)
			}
		}
		for i, topic := range order {
			if topic == progress.DefaultTopic && (i == 0 || order[i-1] != cmdTopic) {
				t.Errorf("progress event %d not right after a command: %v", i, order)
			}
		}
	})

	t.Run("a waiting saga shows what it waits for", func(t *testing.T) {
		board, err := progress.NewBoard(10)
		if err != nil {
			t.Fatal(err)
		}
		var p progress.Progress
		testkit.WaitUntil(t, 10*time.Second, "the approval step's progress", func() bool {
			for _, ev := range k.Published(progress.DefaultTopic) {
				_, _ = board.Apply(ev)
			}
			var ok bool
			p, ok = board.Get("prog-wait")
			return ok && p.Step == "approval"
		})
		if p.Status != progress.Running || p.Kind != sagas.KindWait || p.WaitingFor[0] != "event approval" ||
			len(p.Done) != 1 || p.Done[0] != "hold" || p.Since.IsZero() {
			t.Errorf("progress %+v", p)
		}
		// The engine has the same position, as the custom status.
		e, err := k.Engine(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		running, err := e.Get(t.Context(), "prog-wait")
		if err != nil {
			t.Fatal(err)
		}
		fromEngine, known := progress.Of("prog-wait", running.RuntimeStatus, running.Output, running.CustomStatus)
		if !known || fromEngine.Step != "approval" || fromEngine.WaitingFor[0] != "event approval" || fromEngine.Seq != p.Seq {
			t.Errorf("ProgressOf a running saga, from the engine: %+v (%q)", fromEngine, running.CustomStatus)
		}
		t.Logf("workflow get would show: %s", p)
		k.Raise("prog-wait", "approval", approval{Approved: true, By: "carol"})
		k.Outcome("prog-wait")

		// The outcome event is the last word, whatever order events arrive in.
		evs := append(distinct(k.Published(progress.DefaultTopic)), distinct(k.Published(topics.Outcomes))...)
		rand.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		board, _ = progress.NewBoard(10)
		for _, ev := range evs {
			_, _ = board.Apply(ev)
		}
		final, ok := board.Get("prog-wait")
		if !ok || !final.Finished() || final.Status != topics.StatusCompleted || final.String() != "completed" {
			t.Errorf("final progress %+v", final)
		}
		// The same from the engine's record of the finished workflow.
		st := k.Wait("prog-wait", time.Second)
		fromOutput, err := progress.FromOutput(st.Output)
		if err != nil || fromOutput.Status != topics.StatusCompleted || len(fromOutput.Done) != 3 {
			t.Errorf("progress from output %+v, %v", fromOutput, err)
		}
		// What `workflow get` combines: the outcome beats the custom status,
		// which holds the outcome's status once the saga finished.
		if got, known := progress.Of("prog-wait", st.RuntimeStatus, st.Output, st.CustomStatus); !known || !got.Finished() {
			t.Errorf("ProgressOf a finished saga: %+v", got)
		}
		if got, _ := progress.Of("prog-wait", st.RuntimeStatus, "", st.CustomStatus); got.Status != topics.StatusCompleted {
			t.Errorf("custom status of a finished saga: %+v (%q)", got, st.CustomStatus)
		}
		if got, known := progress.Of("x", "FAILED", "", ""); known || got.Status != "failed" {
			t.Errorf("ProgressOf a failed workflow: %+v", got)
		}
	})

	t.Run("NoProgress publishes none", func(t *testing.T) {
		k.Outcome("prog-quiet")
		if ps := progressOf(t, k, "prog-quiet"); len(ps) != 0 {
			t.Errorf("%d progress events", len(ps))
		}
		// The engine still keeps where it is, at no broker cost.
		st := k.Wait("prog-quiet", time.Second)
		if got, known := progress.Of("prog-quiet", st.RuntimeStatus, "", st.CustomStatus); !known || got.Status != topics.StatusCompleted {
			t.Errorf("custom status of a quiet saga: %+v (%q)", got, st.CustomStatus)
		}
	})
}

// TestProgressNeverHoldsASagaUp: with the progress topic refused, sagas
// still complete, and the publisher hears of every dropped event.
func TestProgressNeverHoldsASagaUp(t *testing.T) {
	k := newKit(t, kitOptions{workflows: map[string]workflow.Workflow{"PatientApprovalSaga": PatientApprovalSaga}})
	k.FailPublish(func(topic string, _ topics.CloudEvent) error {
		if topic == progress.DefaultTopic {
			return errors.New("no such topic")
		}
		return nil
	})
	k.Start("PatientApprovalSaga", "no-progress-topic", plan{})
	k.Raise("no-progress-topic", "approval", approval{Approved: true})
	if out := k.Outcome("no-progress-topic"); out.Status != topics.StatusCompleted {
		t.Fatalf("outcome %+v", out)
	}
	testkit.WaitUntil(t, 5*time.Second, "three dropped progress events", func() bool {
		return k.ProgressFailures() == 3 // hold, approval (fire-and-forget), ship
	})
}
