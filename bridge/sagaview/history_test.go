package sagaview

import (
	"slices"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/topics"
)

// A wait step whose event arrived before the saga's first turn has its
// first entry after the next step's; the bars still follow the saga.
func TestBarsFollowTheOutcomesStepOrder(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	entries := []Entry{
		{At: at(0), Kind: EntryStarted},
		{At: at(1), Kind: EntryStep, Step: "never", Detail: "waiting"},
		{At: at(2), Kind: EntryStep, Step: "hold"},
		{At: at(300), Kind: EntryCompensate, Step: "hold", Attempt: 1},
		{At: at(500), Kind: EntryOutcome},
	}
	out := &topics.Outcome{Steps: []topics.StepResult{
		{Name: "hold", Status: topics.StepCompensationFailed},
		{Name: "never", Status: topics.StepTimedOut},
	}}
	var got []string
	for _, b := range bars(entries, out, Instance{}) {
		name := b.Step + " " + b.Status
		if b.Compensation {
			name = "undo " + name
		}
		got = append(got, name)
	}
	want := []string{"hold done", "never timed-out", "undo hold compensation-failed"}
	if !slices.Equal(got, want) {
		t.Errorf("bars %v, want %v", got, want)
	}
}
