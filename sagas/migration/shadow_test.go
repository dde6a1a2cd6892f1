package migration_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/sagas/migration"
	"github.com/sagabridge/sagabridge/topics"
)

// scriptFeed plays a fixed legacy flow; when it runs out, every wait times
// out and the clock moves by the timeout, as the engine's timer would.
type scriptFeed struct {
	types []string
	clock time.Time
}

func (f *scriptFeed) Next(timeout time.Duration) (migration.Observation, bool) {
	if len(f.types) == 0 {
		f.clock = f.clock.Add(timeout)
		return migration.Observation{}, false
	}
	t, at, _ := strings.Cut(f.types[0], "@")
	f.types = f.types[1:]
	f.clock = f.clock.Add(time.Millisecond)
	return migration.Observation{Type: t, Time: at}, true
}

// shadowOrderSaga is the OrderSaga's steps as the comparison sees them:
// reserve and charge have a compensation, each step a 1s timeout.
func shadowOrderSaga() ([]migration.Step, *migration.Observe) {
	steps := []migration.Step{
		{Name: "reserve", Timeout: time.Second, Undoable: true},
		{Name: "charge", Timeout: time.Second, Undoable: true},
		{Name: "ship", Timeout: time.Second},
	}
	obs := &migration.Observe{Event: "legacy", Steps: map[string]migration.LegacyStep{
		"reserve": {Done: []string{"inventory.reserved"}, Failed: []string{"inventory.rejected"}, Undone: []string{"inventory.released"}},
		"charge":  {Done: []string{"payment.charged"}, Failed: []string{"payment.declined"}, Undone: []string{"payment.refunded"}},
		"ship":    {Done: []string{"shipping.created"}, Failed: []string{"shipping.refused"}},
	}}
	return steps, obs
}

func TestShadowComparesLegacyFlows(t *testing.T) {
	cases := []struct {
		name        string
		legacy      []string
		status      string
		compensated []string
		divergences []string // kind/step
	}{
		{"healthy completed flow", []string{"inventory.reserved", "payment.charged", "shipping.created"},
			topics.StatusCompleted, nil, nil},
		{"healthy compensated flow", []string{"inventory.reserved", "payment.declined", "inventory.released"},
			topics.StatusCompensated, []string{"reserve"}, nil},
		{"shipping refused, both undone in reverse", []string{"inventory.reserved", "payment.charged", "shipping.refused", "payment.refunded", "inventory.released"},
			topics.StatusCompensated, []string{"charge", "reserve"}, nil},
		{"legacy skips a compensation", []string{"inventory.reserved", "payment.declined"},
			topics.StatusCompensated, nil, []string{"compensation-missing/reserve"}},
		{"compensations in the wrong order", []string{"inventory.reserved", "payment.charged", "shipping.refused", "inventory.released", "payment.refunded"},
			topics.StatusCompensated, []string{"charge", "reserve"}, []string{"out-of-order/reserve"}},
		{"steps out of order", []string{"payment.charged", "inventory.reserved", "shipping.created"},
			topics.StatusCompleted, nil, []string{"out-of-order/charge"}},
		{"a step skipped", []string{"inventory.reserved", "shipping.created"},
			topics.StatusCompleted, nil, []string{"missing-step/charge"}},
		{"stuck after the first step", []string{"inventory.reserved"},
			topics.StatusCompensated, nil, []string{"stuck/charge"}},
		{"compensation the saga would not run", []string{"inventory.reserved", "inventory.released", "payment.charged", "shipping.created"},
			topics.StatusCompleted, nil, []string{"unexpected-compensation/reserve"}},
		{"arrival order differs from the events' own time", []string{"payment.charged@2026-01-01T10:00:02Z", "inventory.reserved@2026-01-01T10:00:01Z", "shipping.created@2026-01-01T10:00:03Z"},
			topics.StatusCompleted, nil, nil},
		{"the events' own time shows steps out of order", []string{"inventory.reserved@2026-01-01T10:00:02Z", "payment.charged@2026-01-01T10:00:01Z", "shipping.created@2026-01-01T10:00:03Z"},
			topics.StatusCompleted, nil, []string{"out-of-order/charge"}},
		{"unrelated legacy events are ignored", []string{"audit.logged", "inventory.reserved", "payment.charged", "mail.sent", "shipping.created"},
			topics.StatusCompleted, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			steps, obs := shadowOrderSaga()
			feed := &scriptFeed{types: tc.legacy, clock: time.Unix(0, 0)}
			sh := migration.NewShadow(steps, obs, feed, func() time.Time { return feed.clock })
			var out topics.Outcome
			divergences := sh.Follow(&out)
			var got []string
			for _, d := range divergences {
				got = append(got, d.Kind+"/"+d.Step)
			}
			if !slices.Equal(got, tc.divergences) {
				t.Errorf("divergences %v, want %v (%+v)", got, tc.divergences, divergences)
			}
			if out.Status != tc.status || !slices.Equal(out.Compensated, tc.compensated) {
				t.Errorf("status %s compensated %v, want %s %v (steps %+v)", out.Status, out.Compensated, tc.status, tc.compensated, out.Steps)
			}
		})
	}
}
