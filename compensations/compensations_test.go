package compensations_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/compensations"
	"github.com/sagabridge/sagabridge/topics"
)

func TestBackoffDelay(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    compensations.Backoff
		want []time.Duration // after attempts 1, 2, 3, 4
	}{
		{"zero retries at once", compensations.Backoff{}, []time.Duration{0, 0, 0, 0}},
		{"doubles by default", compensations.Backoff{Initial: time.Second}, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}},
		{"capped", compensations.Backoff{Initial: time.Second, Max: 3 * time.Second}, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}},
		{"constant", compensations.Backoff{Initial: time.Second, Multiplier: 1}, []time.Duration{time.Second, time.Second, time.Second, time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, want := range tc.want {
				if got := tc.b.Delay(i + 1); got != want {
					t.Errorf("Delay(%d) = %s, want %s", i+1, got, want)
				}
			}
		})
	}
	if d := (compensations.Backoff{Initial: time.Hour, Multiplier: 10}).Delay(60); d <= 0 {
		t.Errorf("a huge backoff overflowed to %s", d)
	}
}

func TestCompensationValidate(t *testing.T) {
	cmd := topics.CommandSpec{Topic: "t", Type: "x", ReplyEvent: "x.reply"}
	for _, tc := range []struct {
		name string
		c    compensations.Compensation
		want []string // substrings of the error; none means valid
	}{
		{"command", compensations.Compensation{Name: "c", Command: cmd, Timeout: time.Second}, nil},
		{"activity without timeout", compensations.Compensation{Name: "a", Activity: "Undo"}, nil},
		{"nothing", compensations.Compensation{}, []string{"name is required", "needs a command or an activity"}},
		{"both", compensations.Compensation{Name: "b", Command: cmd, Activity: "Undo", Timeout: time.Second}, []string{"not both"}},
		{"bad command", compensations.Compensation{Name: "c", Command: topics.CommandSpec{Topic: "t"}, MaxAttempts: -1,
			Backoff: compensations.Backoff{Initial: -time.Second}},
			[]string{"needs topic, type and replyEvent", "timeout must be positive", "maxAttempts must not be negative", "initial -1s is negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	backoff := compensations.Backoff{Initial: time.Second, Max: 30 * time.Second, Multiplier: 2}
	release := compensations.Compensation{Name: "release-inventory", Timeout: 10 * time.Second, MaxAttempts: 5, Backoff: backoff,
		Command: topics.CommandSpec{Topic: "inventory.commands", Type: "inventory.release", ReplyEvent: "release-inventory.reply"}}
	refund := compensations.Compensation{Name: "refund-payment", Timeout: 10 * time.Second, MaxAttempts: 5, Backoff: backoff,
		Command: topics.CommandSpec{Topic: "payment.commands", Type: "payment.refund", ReplyEvent: "refund-payment.reply"}}
	r, err := compensations.NewRegistry(release, refund)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Names(), ","); got != "refund-payment,release-inventory" {
		t.Fatalf("names %s", got)
	}
	if c, ok := r.Get("refund-payment"); !ok || c.Attempts() != 5 || c.Backoff.Delay(1) != time.Second {
		t.Errorf("refund-payment %+v", c)
	}
	_, err = compensations.NewRegistry(release, release, compensations.Compensation{})
	if err == nil || !strings.Contains(err.Error(), "registered twice") || !strings.Contains(err.Error(), "name is required") {
		t.Errorf("error %v", err)
	}
	var none *compensations.Registry
	if _, ok := none.Get("x"); ok || none.Names() != nil {
		t.Error("a nil registry has compensations")
	}
}
