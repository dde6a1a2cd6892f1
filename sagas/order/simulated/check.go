package simulated

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sagabridge/sagabridge/topics"
)

// InstanceID is the saga instance of an order under the dev routes
// (`"order-" + event.data.orderId`).
func InstanceID(orderID string) string { return "order-" + orderID }

// Expected is the outcome an order calls for: a declined payment undoes
// the reservation, a refused shipment undoes the charge and then the
// reservation (reverse order), anything else completes.
func Expected(o Order) (status string, compensated []string) {
	switch {
	case o.FailPayment:
		return topics.StatusCompensated, []string{"reserve-inventory"}
	case o.FailShipping:
		return topics.StatusCompensated, []string{"charge-payment", "reserve-inventory"}
	}
	return topics.StatusCompleted, nil
}

// Report is what Check found.
type Report struct {
	Orders      int
	Completed   int
	Compensated int
	// Problems lists every broken promise, one line each, sorted.
	Problems []string
}

// Err is nil when nothing is wrong, else the problems (at most 20 of them
// in the message, so a broken run does not print thousands of lines).
func (r Report) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	shown := r.Problems
	if len(shown) > 20 {
		shown = append(shown[:20:20], fmt.Sprintf("… and %d more", len(r.Problems)-20))
	}
	return errors.New(strings.Join(shown, "\n"))
}

// Check proves a run of orders end to end from what the outside world can
// see: the outcome topic (as a Watcher collected it) and the participants'
// ledger. It holds when
//
//   - every order has exactly one outcome, and nothing else has one;
//   - the outcome's status and compensations are the ones its failure calls
//     for (Expected): compensations exactly for the failed orders;
//   - the ledger matches: a completed order is reserved, charged and
//     shipped; a compensated one holds no stock, no money and no shipment;
//     the ledger knows no other order; and there was one release per
//     compensated order and one refund per order refused by shipping.
func Check(orders []Order, outcomes map[string][]Received, led Snapshot) Report {
	r := Report{Orders: len(orders)}
	bad := func(format string, args ...any) { r.Problems = append(r.Problems, fmt.Sprintf(format, args...)) }
	known := make(map[string]bool, len(orders))
	var wantReleases, wantRefunds int
	for _, o := range orders {
		known[o.OrderID] = true
		id := InstanceID(o.OrderID)
		status, comp := Expected(o)
		if status == topics.StatusCompensated {
			wantReleases++
			if o.FailShipping && !o.FailPayment {
				wantRefunds++
			}
		}
		got := outcomes[id]
		switch {
		case len(got) == 0:
			bad("%s: no outcome", id)
			continue
		case len(got) > 1:
			var st []string
			for _, g := range got {
				st = append(st, g.Outcome.Status)
			}
			bad("%s: %d outcomes (%s), want 1", id, len(got), strings.Join(st, ", "))
			continue
		}
		out := got[0].Outcome
		if out.Status != status || !slices.Equal(out.Compensated, comp) {
			bad("%s: %s undoing %v, want %s undoing %v", id, out.Status, out.Compensated, status, comp)
			continue
		}
		oid := o.OrderID
		reserved, charged, shipped := led.Reserved[oid], led.Charged[oid], led.Shipped[oid]
		if status == topics.StatusCompleted {
			r.Completed++
			if !reserved || !charged || !shipped {
				bad("%s: completed but ledger has reserved=%v charged=%v shipped=%v", id, reserved, charged, shipped)
			}
			continue
		}
		r.Compensated++
		if reserved || charged || shipped {
			bad("%s: compensated but ledger keeps reserved=%v charged=%v shipped=%v", id, reserved, charged, shipped)
		}
	}
	for id := range outcomes {
		if !known[strings.TrimPrefix(id, "order-")] {
			bad("%s: outcome for an order nobody placed", id)
		}
	}
	for _, m := range []map[string]bool{led.Reserved, led.Charged, led.Shipped} {
		for oid := range m {
			if !known[oid] {
				bad("ledger holds order %s that nobody placed", oid)
			}
		}
	}
	if led.Releases != wantReleases {
		bad("ledger: %d stock releases, want %d (one per compensated order)", led.Releases, wantReleases)
	}
	if led.Refunds != wantRefunds {
		bad("ledger: %d refunds, want %d (one per order refused by shipping)", led.Refunds, wantRefunds)
	}
	sort.Strings(r.Problems)
	r.Problems = slices.Compact(r.Problems)
	return r
}
