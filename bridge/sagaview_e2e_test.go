package bridge_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/bridge/sagaview"
	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics"
)

// TestSagaListAndHistory lists saga instances and reads their timelines on
// both engines: the embedded one lists from its store and reads the
// engine's history; on daprd, which serves neither, the list is the
// worker's record and the timeline is built from the progress events, and
// both say so.
func TestSagaListAndHistory(t *testing.T) {
	for _, newKit := range withEngines(t, []func(*testing.T) brokerKit{natsKit}) {
		kit := newKit(t)
		t.Run(kit.name, func(t *testing.T) { sagaListAndHistory(t, kit) })
	}
}

func sagaListAndHistory(t *testing.T, kit brokerKit) {
	cfg := devConfig(t, kit, t.TempDir())
	s := startStack(t, kit, cfg, stackOptions{participants: true})
	dapr := cfg.Engine.Kind == "dapr"
	want := map[string]simulated.Order{
		"order-lh-1": {OrderID: "lh-1", Amount: 1, Quantity: 1, SKU: "sku-1"},
		"order-lh-2": {OrderID: "lh-2", Amount: 2, Quantity: 1, SKU: "sku-1", FailPayment: true},
		"order-lh-3": {OrderID: "lh-3", Amount: 3, Quantity: 1, SKU: "sku-1", FailShipping: true},
	}
	publishOrders(t, s, want)
	waitOutcomes(t, s, want, time.Minute)

	ctx := context.Background()
	view := s.bridge.Sagas()
	statuses := map[string]string{}
	var page sagaview.Page
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		if page, err = view.List(ctx, sagaview.Filter{Saga: "OrderSaga"}); err != nil {
			t.Fatal(err)
		}
		clear(statuses)
		for _, in := range page.Instances {
			statuses[in.InstanceID] = in.Status
		}
		if statuses["order-lh-1"] == sagaview.Completed && statuses["order-lh-2"] == sagaview.Compensated && statuses["order-lh-3"] == sagaview.Compensated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list: %v", statuses)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(page.Instances) != 3 {
		t.Errorf("list: %d instances, want 3", len(page.Instances))
	}
	switch {
	case dapr && (page.Source != engine.SourceRecord || !strings.Contains(page.Note, "daprd cannot list")):
		t.Errorf("list on daprd: source %q note %q", page.Source, page.Note)
	case !dapr && page.Source != engine.SourceEngine:
		t.Errorf("list on the embedded engine: source %q", page.Source)
	}
	for _, tc := range []struct {
		f    sagaview.Filter
		want []string
	}{
		{sagaview.Filter{Statuses: []string{sagaview.Compensated}}, []string{"order-lh-2", "order-lh-3"}},
		{sagaview.Filter{Text: "LH-2"}, []string{"order-lh-2"}},
		{sagaview.Filter{IDPrefix: "order-lh-1"}, []string{"order-lh-1"}},
		{sagaview.Filter{Saga: "Nobody"}, nil},
		{sagaview.Filter{FinishedFrom: time.Now().Add(time.Hour)}, nil},
	} {
		p, err := view.List(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, in := range p.Instances {
			got = append(got, in.InstanceID)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("list %+v: %v, want %v", tc.f, got, tc.want)
		}
	}
	counts, err := view.Counts(ctx, sagaview.Filter{})
	if err != nil || counts.Counts[sagaview.Completed] != 1 || counts.Counts[sagaview.Compensated] != 2 || !counts.Complete {
		t.Errorf("counts: %+v %v", counts, err)
	}

	// order-lh-3: three steps, shipping refused, two compensations in
	// reverse order, the outcome.
	var h sagaview.History
	var got []string
	deadline = time.Now().Add(30 * time.Second)
	for {
		if h, err = view.History(ctx, "order-lh-3"); err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, e := range h.Entries {
			switch e.Kind {
			case sagaview.EntryCommand, sagaview.EntryCompensate:
				got = append(got, e.Kind+" "+e.Step+" "+e.Key)
			case sagaview.EntryOutcome:
				got = append(got, e.Kind+" "+e.Status)
			}
		}
		if len(got) > 0 && strings.HasPrefix(got[len(got)-1], "outcome") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantEntries := []string{
		"command reserve-inventory order-lh-3/reserve-inventory/1",
		"command charge-payment order-lh-3/charge-payment/1",
		"command create-shipment order-lh-3/create-shipment/1",
		"compensation charge-payment order-lh-3/charge-payment/undo/1",
		"compensation reserve-inventory order-lh-3/reserve-inventory/undo/1",
		"outcome " + topics.StatusCompensated,
	}
	if !slices.Equal(got, wantEntries) {
		t.Errorf("history of order-lh-3:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantEntries, "\n"))
	}
	wantBars := []string{"reserve-inventory done", "charge-payment done", "create-shipment failed",
		"undo charge-payment compensated", "undo reserve-inventory compensated"}
	var bars []string
	for _, b := range h.Bars {
		s := b.Step + " " + b.Status
		if b.Compensation {
			s = "undo " + s
		}
		bars = append(bars, s)
	}
	if !slices.Equal(bars, wantBars) {
		t.Errorf("bars of order-lh-3: %v, want %v", bars, wantBars)
	}
	if h.Entries[0].Kind != sagaview.EntryStarted || !strings.Contains(string(h.Entries[0].Payload), `"lh-3"`) {
		t.Errorf("first entry: %+v", h.Entries[0])
	}
	if h.Outcome == nil || h.Outcome.Status != topics.StatusCompensated || h.Instance.Status != sagaview.Compensated {
		t.Errorf("outcome %+v, instance %+v", h.Outcome, h.Instance)
	}
	switch {
	case dapr && (h.Source != sagaview.HistoryFromProgress || !strings.Contains(h.Note, "daprd serves no workflow history")):
		t.Errorf("history on daprd: source %q note %q", h.Source, h.Note)
	case !dapr && h.Source != sagaview.HistoryFromEngine:
		t.Errorf("history on the embedded engine: source %q", h.Source)
	}
	if !dapr {
		// The engine's history has the replies too.
		replies := 0
		for _, e := range h.Entries {
			if e.Kind == sagaview.EntryReply && e.Step != "" {
				replies++
			}
		}
		if replies != 5 {
			t.Errorf("%d replies in the history of order-lh-3, want 5", replies)
		}
	}
	if _, err := view.History(ctx, "order-nobody"); err == nil {
		t.Error("history of a missing instance: no error")
	}
}
