package simulated

import (
	"strings"
	"testing"

	"github.com/sagabridge/sagabridge/topics"
)

// checkFixture is a consistent result of three orders: one completed, one declined
// by payment, one refused by shipping.
func checkFixture() ([]Order, map[string][]Received, Snapshot) {
	orders := []Order{{OrderID: "a"}, {OrderID: "b", FailPayment: true}, {OrderID: "c", FailShipping: true}}
	outcomes := map[string][]Received{}
	for _, o := range orders {
		status, comp := Expected(o)
		outcomes[InstanceID(o.OrderID)] = []Received{{EventID: "outcome-" + o.OrderID, Outcome: topics.Outcome{
			InstanceID: InstanceID(o.OrderID), Status: status, Compensated: comp,
		}}}
	}
	led := Snapshot{
		Reserved: map[string]bool{"a": true},
		Charged:  map[string]bool{"a": true},
		Shipped:  map[string]bool{"a": true},
		Releases: 2,
		Refunds:  1,
	}
	return orders, outcomes, led
}

func TestCheck(t *testing.T) {
	orders, outcomes, led := checkFixture()
	r := Check(orders, outcomes, led)
	if err := r.Err(); err != nil {
		t.Fatalf("consistent run reported:\n%v", err)
	}
	if r.Orders != 3 || r.Completed != 1 || r.Compensated != 2 {
		t.Errorf("report %+v, want 3 orders, 1 completed, 2 compensated", r)
	}

	cases := []struct {
		name   string
		mutate func(outcomes map[string][]Received, led *Snapshot)
		want   string
	}{
		{"missing outcome", func(o map[string][]Received, _ *Snapshot) { delete(o, "order-a") }, "order-a: no outcome"},
		{"two outcomes", func(o map[string][]Received, _ *Snapshot) {
			o["order-a"] = append(o["order-a"], Received{Outcome: topics.Outcome{Status: topics.StatusFailed}})
		}, "order-a: 2 outcomes"},
		{"wrong status", func(o map[string][]Received, _ *Snapshot) {
			o["order-b"][0].Outcome.Status = topics.StatusCompleted
		}, "order-b: completed"},
		{"compensation missing", func(o map[string][]Received, _ *Snapshot) {
			o["order-c"][0].Outcome.Compensated = []string{"reserve-inventory"}
		}, "order-c: compensated undoing [reserve-inventory], want compensated undoing [charge-payment reserve-inventory]"},
		{"compensation of a completed order", func(o map[string][]Received, _ *Snapshot) {
			o["order-a"][0].Outcome.Compensated = []string{"reserve-inventory"}
		}, "order-a: completed undoing [reserve-inventory]"},
		{"stranger's outcome", func(o map[string][]Received, _ *Snapshot) {
			o["order-z"] = []Received{{Outcome: topics.Outcome{Status: topics.StatusCompleted}}}
		}, "order-z: outcome for an order nobody placed"},
		{"stock kept", func(_ map[string][]Received, l *Snapshot) { l.Reserved["b"] = true }, "order-b: compensated but ledger keeps reserved=true"},
		{"charge kept", func(_ map[string][]Received, l *Snapshot) { l.Charged["c"] = true }, "order-c: compensated but ledger keeps reserved=false charged=true"},
		{"not shipped", func(_ map[string][]Received, l *Snapshot) { delete(l.Shipped, "a") }, "order-a: completed but ledger has"},
		{"stranger in ledger", func(_ map[string][]Received, l *Snapshot) { l.Charged["z"] = true }, "ledger holds order z"},
		{"refund twice", func(_ map[string][]Received, l *Snapshot) { l.Refunds = 2 }, "ledger: 2 refunds, want 1"},
		{"release missing", func(_ map[string][]Received, l *Snapshot) { l.Releases = 1 }, "ledger: 1 stock releases, want 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			orders, outcomes, led := checkFixture()
			c.mutate(outcomes, &led)
			err := Check(orders, outcomes, led).Err()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want a problem containing %q", err, c.want)
			}
		})
	}
}

func TestReportErrShortensLongLists(t *testing.T) {
	r := Report{}
	for range 25 {
		r.Problems = append(r.Problems, "x")
	}
	msg := r.Err().Error()
	if got := strings.Count(msg, "\n"); got != 20 {
		t.Errorf("%d lines, want 21 (20 problems and a count)", got+1)
	}
	if !strings.HasSuffix(msg, "… and 5 more") {
		t.Errorf("message ends %q", msg[len(msg)-20:])
	}
}
