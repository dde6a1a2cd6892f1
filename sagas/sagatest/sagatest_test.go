package sagatest_test

import (
	"slices"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/compensations"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/declarative"
	"github.com/sagabridge/sagabridge/sagas/sagatest"
	"github.com/sagabridge/sagabridge/topics"
)

// trip books a flight, then a hotel, then a car; each booking but the car
// can be cancelled. Its timeouts are long (an hour, a minute between the
// cancellation's attempts): the tests below wait for none of them.
func trip() sagas.Saga {
	step := func(name string, undo bool) sagas.Step {
		st := sagas.Step{
			Name:        name,
			Command:     topics.CommandSpec{Topic: "trip.commands", Type: name + ".book", ReplyEvent: name + ".booked"},
			Timeout:     time.Hour,
			MaxAttempts: 2,
		}
		if undo {
			st.Compensation = &compensations.Compensation{
				Name:        "cancel-" + name,
				Command:     topics.CommandSpec{Topic: "trip.commands", Type: name + ".cancel", ReplyEvent: name + ".cancelled"},
				Timeout:     time.Hour,
				MaxAttempts: 3,
				Backoff:     sagas.Backoff{Initial: time.Minute},
			}
		}
		return st
	}
	return sagas.Saga{Name: "Trip", Steps: []sagas.Step{step("flight", true), step("hotel", true), step("car", false)}}
}

func eq[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

// Unscripted commands are answered OK, as the saga's reply events say.
func TestHappyPathNeedsNoScript(t *testing.T) {
	env := sagatest.New(t, sagatest.Options{Sagas: []sagas.Saga{trip()}})
	env.Start("Trip", "t-1", map[string]string{"who": "ada"})
	out := env.Outcome("t-1")
	if out.Status != topics.StatusCompleted {
		t.Fatalf("outcome %+v", out)
	}
	eq(t, "commands", env.Commands("t-1"), []string{"flight.book#1", "hotel.book#1", "car.book#1"})
	if outs := env.Outcomes("t-1"); len(outs) != 1 || outs[0].Status != topics.StatusCompleted {
		t.Errorf("published outcomes %+v", outs)
	}
	if c := env.SentCommands("t-1")[0]; c.Topic != "trip.commands" || string(c.Payload) != `{"who":"ada"}` || c.IdempotencyKey != "t-1/flight" {
		t.Errorf("first command %+v", c)
	}
}

// A refusal compensates the steps before it, in reverse order; a reply's
// payload is the step's result.
func TestRefusalCompensates(t *testing.T) {
	env := sagatest.New(t, sagatest.Options{Sagas: []sagas.Saga{trip()}})
	env.OnCommand("flight.book", func(sagatest.Command) sagatest.Reply { return sagatest.OK(map[string]string{"seat": "12A"}) })
	env.OnCommand("car.book", func(c sagatest.Command) sagatest.Reply { return sagatest.Failed("no cars left") })
	env.Start("Trip", "t-2", nil)
	out := env.Outcome("t-2")
	if out.Status != topics.StatusCompensated || out.Error != "step car failed: no cars left" {
		t.Fatalf("outcome %+v", out)
	}
	eq(t, "compensated", out.Compensated, []string{"hotel", "flight"})
	eq(t, "commands", env.Commands("t-2"), []string{"flight.book#1", "hotel.book#1", "car.book#1", "hotel.cancel#1", "flight.cancel#1"})
	eq(t, "compensations", env.Compensations("t-2"), []string{"hotel.cancel#1", "flight.cancel#1"})
}

// A participant that never answers: the step's hour-long timeout fires
// when the test moves the clock, each attempt's in turn, and the step is
// compensated too (no reply does not mean nothing happened). A refused
// cancellation waits its minute of backoff the same way.
func TestTimersFireWhenMoved(t *testing.T) {
	env := sagatest.New(t, sagatest.Options{Sagas: []sagas.Saga{trip()}})
	env.OnCommand("hotel.book", func(sagatest.Command) sagatest.Reply { return sagatest.NoReply() })
	refusals := 0
	env.OnCommand("flight.cancel", func(c sagatest.Command) sagatest.Reply {
		if c.Attempt == 1 {
			refusals++
			return sagatest.Failed("try later")
		}
		return sagatest.OK(nil)
	})
	began, start := time.Now(), env.Now()
	env.Start("Trip", "t-3", nil)
	for _, want := range []time.Duration{time.Hour, time.Hour} { // hotel.book, attempts 1 and 2
		if d := env.FireTimer("t-3"); d <= 0 || d > want {
			t.Errorf("moved %s, want at most %s", d, want)
		}
	}
	if d := env.FireTimer("t-3"); d <= 0 || d > time.Minute { // flight.cancel's backoff
		t.Errorf("backoff: moved %s, want at most a minute", d)
	}
	out := env.Outcome("t-3")
	if out.Status != topics.StatusCompensated {
		t.Fatalf("outcome %+v", out)
	}
	if want := "step hotel timed-out: no reply after 2 attempts of 1h0m0s"; out.Error != want {
		t.Errorf("error %q, want %q", out.Error, want)
	}
	eq(t, "compensated", out.Compensated, []string{"hotel", "flight"})
	eq(t, "commands", env.Commands("t-3"), []string{"flight.book#1", "hotel.book#1", "hotel.book#2", "hotel.cancel#1", "flight.cancel#1", "flight.cancel#2"})
	if refusals != 1 {
		t.Errorf("%d refusals", refusals)
	}
	if moved := env.Now().Sub(start); moved < 2*time.Hour {
		t.Errorf("the clock moved %s, want over two hours", moved)
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Errorf("took %s of wall time", took)
	}
	if !out.FinishedAt.After(start.Add(2 * time.Hour)) {
		t.Errorf("finished at %s, want the saga's own time over two hours after %s", out.FinishedAt, start)
	}
}

// A declarative saga from YAML runs the same way; the Env knows its
// commands' reply events too.
func TestDeclarativeSaga(t *testing.T) {
	parsed, err := declarative.ParseDefinitions("trip.yaml", []byte(`
name: Trip
version: 2
steps:
  - name: flight
    command: {topic: trip.commands, type: flight.book, replyEvent: flight.booked}
    timeout: 1h
    compensation:
      name: cancel-flight
      command: {topic: trip.commands, type: flight.cancel, replyEvent: flight.cancelled}
      timeout: 1h
  - name: hotel
    command: {topic: trip.commands, type: hotel.book, replyEvent: hotel.booked}
    timeout: 1h
`))
	if err != nil {
		t.Fatal(err)
	}
	defs, err := declarative.NewDefinitions(nil, parsed...)
	if err != nil {
		t.Fatal(err)
	}
	env := sagatest.New(t, sagatest.Options{Definitions: defs})
	env.OnCommand("hotel.book", func(sagatest.Command) sagatest.Reply { return sagatest.Failed("full") })
	env.StartDefinition("Trip", 0, "t-4", map[string]int{"nights": 2})
	out := env.Outcome("t-4")
	if out.Status != topics.StatusCompensated {
		t.Fatalf("outcome %+v", out)
	}
	eq(t, "commands", env.Commands("t-4"), []string{"flight.book#1", "hotel.book#1", "flight.cancel#1"})
	if c := env.SentCommands("t-4")[0]; string(c.Payload) != `{"nights":2}` {
		t.Errorf("payload %s", c.Payload)
	}
}

// A crash right after a command reached the broker: the new worker goes
// on from the history, and the participant acted once per step.
func TestCrashOn(t *testing.T) {
	env := sagatest.New(t, sagatest.Options{Sagas: []sagas.Saga{trip()}})
	env.CrashOn(sagatest.CrashLostAck, func(_ string, ev topics.CloudEvent) bool { return ev.Type == "hotel.book" })
	env.Start("Trip", "t-5", nil)
	if out := env.Outcome("t-5"); out.Status != topics.StatusCompleted {
		t.Fatalf("outcome %+v", out)
	}
	eq(t, "commands", env.Commands("t-5"), []string{"flight.book#1", "hotel.book#1", "car.book#1"})
	if n := len(env.Published("trip.commands")); n != 4 {
		t.Errorf("%d publishes, want 4 (hotel.book twice, one id)", n)
	}
}

// TestPaymentDeclined runs the package example.
func TestPaymentDeclined(t *testing.T) { testPaymentDeclined(t) }
