package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/sagabridge/sagabridge/sagas/registry"
	"github.com/sagabridge/sagabridge/sagas/sagatest"
	"github.com/sagabridge/sagabridge/topics"
)

func newEnv(t *testing.T) *sagatest.Env {
	t.Helper()
	r := registry.New()
	if err := register(r); err != nil {
		t.Fatal(err)
	}
	return sagatest.New(t, sagatest.Options{Registry: r})
}

// A declined card releases the room held before it.
func TestDeclinedCardReleasesTheRoom(t *testing.T) {
	env := newEnv(t)
	env.OnCommand("card.charge", func(sagatest.Command) sagatest.Reply {
		return sagatest.Failed("card declined")
	})
	env.Start("BookTrip", "trip-1", map[string]string{"guest": "ada"})

	out := env.Outcome("trip-1")
	if out.Status != topics.StatusCompensated || out.Error != "step charge-card failed: card declined" {
		t.Fatalf("outcome %s (%s)", out.Status, out.Error)
	}
	want := []string{"room.hold#1", "card.charge#1", "room.release#1"}
	if got := env.Commands("trip-1"); !slices.Equal(got, want) {
		t.Errorf("commands %v, want %v", got, want)
	}
}

// A hotel that never answers: each attempt's minute passes on the kit's
// clock, not the test's, and the room is released all the same (no reply
// does not mean no hold).
func TestSilentHotelTimesOut(t *testing.T) {
	env := newEnv(t)
	env.OnCommand("room.hold", func(sagatest.Command) sagatest.Reply { return sagatest.NoReply() })
	env.Start("BookTrip", "trip-2", nil)
	for range 3 { // three attempts of hold-room
		env.FireTimer("trip-2")
	}

	out := env.Outcome("trip-2")
	if out.Status != topics.StatusCompensated || !slices.Equal(out.Compensated, []string{"hold-room"}) {
		t.Fatalf("outcome %+v", out)
	}
	want := []string{"room.release#1"}
	if got := env.Compensations("trip-2"); !slices.Equal(got, want) {
		t.Errorf("compensations %v, want %v", got, want)
	}
}

// TestDocQuotesThisCode keeps docs/go-sagas.md in step with this code: it
// quotes the saga, main and both tests as they are here.
func TestDocQuotesThisCode(t *testing.T) {
	doc, err := os.ReadFile("../../go-sagas.md")
	if err != nil {
		t.Fatal(err)
	}
	for file, from := range map[string][]string{
		"main.go":      {"// bookTrip holds", "func register(", "func main()", "func run("},
		"main_test.go": {"func newEnv(", "// A declined card", "// A hotel that never answers"},
	} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, start := range from {
			i := strings.Index(string(src), start)
			if i < 0 {
				t.Fatalf("%s: no %q", file, start)
			}
			block, _, _ := strings.Cut(string(src[i:]), "\n}\n")
			if !strings.Contains(string(doc), block) {
				t.Errorf("docs/go-sagas.md does not quote %s's %q as it is", file, start)
			}
		}
	}
}
