package bridge

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/sagas/progress"
	"github.com/sagabridge/sagabridge/topics"
)

func TestRunningSagas(t *testing.T) {
	r := newRunningSagas(2)
	now := time.Now()
	apply := func(id, status string, since time.Time) {
		t.Helper()
		p := progress.Progress{Saga: "OrderSaga", InstanceID: id, Seq: 1, Status: status, Since: since}
		ev, err := topics.NewCloudEvent(progress.ID(id, 1), topics.Source, progress.Type, id, since, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	outcome := func(id string) {
		t.Helper()
		data, _ := json.Marshal(topics.Outcome{Saga: "OrderSaga", InstanceID: id, Status: topics.StatusCompleted})
		ev := topics.CloudEvent{ID: topics.OutcomeID(id, topics.StatusCompleted), Type: topics.OutcomeCompleted, Source: topics.Source, Subject: id, Data: data}
		if _, err := r.Apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	apply("a", progress.Running, now.Add(-time.Hour))
	apply("b", progress.Compensating, now.Add(-time.Minute))
	apply("c", progress.Running, now.Add(-2*time.Hour)) // full: not kept
	if got := r.Oldest(now)["OrderSaga"]; got != time.Hour {
		t.Errorf("oldest %s, want 1h", got)
	}
	apply("a", progress.Running, now) // a later event does not make it younger
	if got := r.Oldest(now)["OrderSaga"]; got != time.Hour {
		t.Errorf("oldest after a later event %s, want 1h", got)
	}
	outcome("a")
	if got := r.Oldest(now)["OrderSaga"]; got != time.Minute {
		t.Errorf("oldest after a's outcome %s, want 1m", got)
	}
	outcome("b")
	if got, ok := r.Oldest(now)["OrderSaga"]; ok {
		t.Errorf("oldest with none running: %s", got)
	}
}
