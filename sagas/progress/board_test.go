package progress_test

import (
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/sagas/progress"
	"github.com/sagabridge/sagabridge/topics"
)

func TestBoardForgetsOldest(t *testing.T) {
	board, err := progress.NewBoard(2)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"x", "y", "z"} {
		ev, err := topics.NewCloudEvent(progress.ID(id, 1), topics.Source, progress.Type, id, time.Now(),
			progress.Progress{InstanceID: id, Seq: 1, Status: progress.Running, Step: "s"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := board.Apply(ev); err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}
	if _, ok := board.Get("x"); ok {
		t.Error("oldest instance kept")
	}
	if _, ok := board.Get("z"); !ok {
		t.Error("newest instance dropped")
	}
	if _, err := board.Apply(topics.CloudEvent{ID: "1", Type: "other"}); err == nil {
		t.Error("an unrelated event was accepted")
	}
}
