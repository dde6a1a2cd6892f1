package bridge_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/sagas/progress"
	"github.com/sagabridge/sagabridge/sagas/registry"
	"github.com/sagabridge/sagabridge/topics"
)

// TestDeclarativeOrderSagaEndToEnd runs the YAML OrderSaga (order.yaml,
// listed in the config's sagas) through the bridge on real brokers, in
// place of the Go one, started by a route that names the saga and pins its
// version, with the simulated services as plain subscribers. It checks
// outcomes as the Go saga's end-to-end test does, follows every instance's
// progress on the progress topic, and reads the final status the engine
// keeps.
func TestDeclarativeOrderSagaEndToEnd(t *testing.T) {
	for _, newKit := range brokerKits(t) {
		kit := newKit(t)
		t.Run(kit.name, func(t *testing.T) { declarativeOrderSaga(t, kit) })
	}
}

func declarativeOrderSaga(t *testing.T, kit brokerKit) {
	const n = 20
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "order.yaml"), order.YAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(filepath.Join(dir, "dev.yaml"), append(order.BridgeYAML(), "\nsagas: [order.yaml]\n"...))
	if err != nil {
		t.Fatal(err)
	}
	kit.configure(cfg)
	cfg.Engine.Embedded.DBPath = filepath.Join(dir, "workflows.db")
	for i := range cfg.Routes {
		if r := &cfg.Routes[i]; r.Start != nil && r.Start.Workflow == "OrderSaga" {
			r.Start.Version = 1
		}
	}
	// No Go sagas: OrderSaga is the declared one, with the compensations
	// it names.
	reg := registry.New()
	if err := order.RegisterCompensations(reg); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, kit, cfg, stackOptions{participants: true, sagas: reg})

	board, err := progress.NewBoard(n)
	if err != nil {
		t.Fatal(err)
	}
	watchEvents(t, kit.pubsub(t, "test-progress"), progress.DefaultTopic, func(ev topics.CloudEvent) { _, _ = board.Apply(ev) })

	want := map[string]simulated.Order{}
	for i := 1; i <= n; i++ {
		o := simulated.Order{OrderID: orderID("yaml", i), Amount: float64(i)}
		switch {
		case i%5 == 0:
			o.FailPayment = true
		case i%7 == 0:
			o.FailShipping = true
		}
		want["order-"+o.OrderID] = o
		publishOrder(t, s, "evt-"+o.OrderID, o)
	}
	testkit.WaitUntil(t, 2*time.Minute, "every outcome", func() bool { return s.watcher.Count() >= n })

	outcomes := s.watcher.Outcomes()
	for id, o := range want {
		got := outcomes[id]
		if len(got) != 1 {
			t.Errorf("%s: %d outcomes, want 1", id, len(got))
			continue
		}
		switch {
		case o.FailPayment:
			checkOutcome(t, got[0].Outcome, topics.StatusCompensated, []string{"reserve-inventory"})
		case o.FailShipping:
			checkOutcome(t, got[0].Outcome, topics.StatusCompensated, []string{"charge-payment", "reserve-inventory"})
		default:
			checkOutcome(t, got[0].Outcome, topics.StatusCompleted, nil)
		}
	}

	// Each wait was reported: three steps, plus one per compensation.
	testkit.WaitUntil(t, 30*time.Second, "the last progress event of every saga", func() bool {
		for id, o := range want {
			seq := 3
			switch {
			case o.FailPayment:
				seq = 3 // reserve, charge, undo reserve
			case o.FailShipping:
				seq = 5 // reserve, charge, ship, undo charge, undo reserve
			}
			p, ok := board.Get(id)
			if !ok || p.Seq != seq || p.Saga != "OrderSaga" || p.Version != 1 {
				return false
			}
		}
		return true
	})
	p, _ := board.Get("order-" + orderID("yaml", 7))
	if p.Status != progress.Compensating || p.Step != "reserve-inventory" || p.WaitingFor[0] != "event release-inventory.reply" {
		t.Errorf("last progress of a shipping failure: %+v", p)
	}

	// The engine keeps the saga's last word as the custom status: the
	// outcome's status, which the runtime status (COMPLETED) does not say.
	// The outcome is published before the workflow finishes, so an
	// instance is read once its runtime status says it has.
	for id, o := range want {
		testkit.WaitUntil(t, 30*time.Second, id+" to finish in the engine", func() bool {
			st, err := s.bridge.Engine().Get(t.Context(), id)
			return err == nil && st.RuntimeStatus == "COMPLETED"
		})
		st, err := s.bridge.Engine().Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		var last progress.Progress
		if err := json.Unmarshal([]byte(st.CustomStatus), &last); err != nil {
			t.Fatalf("%s: custom status %q: %v", id, st.CustomStatus, err)
		}
		want := topics.StatusCompleted
		if o.FailPayment || o.FailShipping {
			want = topics.StatusCompensated
		}
		if st.Workflow != "OrderSaga" || last.Status != want || last.Saga != "OrderSaga" {
			t.Errorf("%s: workflow %s, custom status %+v, want status %s", id, st.Workflow, last, want)
		}
	}
}
