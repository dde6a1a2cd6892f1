package bridge_test

import (
	"encoding/json"
	"fmt"
	"github.com/sagabridge/sagabridge/sagas/order"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
)

// holRoutes raise on orders: "noise" storms one instance, "probe" is the
// other instance's event whose wait is measured. Both drop events for a
// finished instance, which costs the engine one status read and runs no
// workflow, so what is measured is the bridge's scheduling, not the
// engine's replays.
const holRoutes = `
  - name: storm-noise
    topics: [storm.events]
    match: event.type == "noise"
    raise: {instanceId: '"order-" + event.data.orderId', eventName: noise}
    onFinished: drop
  - name: storm-probe
    topics: [storm.events]
    match: event.type == "probe"
    raise: {instanceId: '"order-" + event.data.orderId', eventName: probe}
    onFinished: drop
`

// handledLog records when each route's events were handled (dropped for a
// finished instance, or parked).
type handledLog struct {
	bridge.NopMetrics
	mu      sync.Mutex
	dropped map[string]int
	parked  map[string]int
	// noiseAtProbe is how many storm events were handled when the probe was.
	noiseAtProbe int
	probeAt      time.Time
}

func (h *handledLog) DroppedFinished(route string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropped[route]++
	if route == "storm-probe" && h.probeAt.IsZero() {
		h.probeAt = time.Now()
		h.noiseAtProbe = h.dropped["storm-noise"]
	}
}

func (h *handledLog) Parked(route string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.parked[route]++
}

func (h *handledLog) snapshot() (probeAt time.Time, noiseAtProbe, noise, parked int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.probeAt, h.noiseAtProbe, h.dropped["storm-noise"], h.parked["storm-noise"]
}

// TestOneInstanceDoesNotHoldUpOthers: events of one workflow instance are
// handled one at a time and in order, but a busy instance's backlog (2,000
// events for it at once) or a parked one's (70 early raises for an instance
// that does not exist, each waiting out its park window) must not use up
// the topic's in-flight budget: another instance's event, published after
// them, is handled long before the backlog is. The latencies are printed;
// what is asserted is the order (the probe is handled before half the
// storm) and a sanity bound far below the 5-minute park window.
func TestOneInstanceDoesNotHoldUpOthers(t *testing.T) {
	for _, newKit := range brokerKits(t) {
		kit := newKit(t)
		t.Run(kit.name, func(t *testing.T) { oneInstanceDoesNotHoldUpOthers(t, kit) })
	}
}

func oneInstanceDoesNotHoldUpOthers(t *testing.T, kit brokerKit) {
	cfg, err := config.Parse("hol.yaml", append(order.BridgeYAML(), holRoutes...))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	kit.configure(cfg)
	cfg.Engine.Embedded.DBPath = t.TempDir() + "/workflows.db"
	cfg.Broker.Concurrency = 16 // the default: NATS keeps 64 unacked
	rec := &handledLog{dropped: map[string]int{}, parked: map[string]int{}}
	s := startStack(t, kit, cfg, stackOptions{participants: true, metrics: rec})

	// Two finished sagas: the storm's target and the probe's.
	for _, id := range []string{"hol-busy", "hol-other"} {
		publishOrder(t, s, "evt-"+id, simulated.Order{OrderID: id, Amount: 1, Quantity: 1, SKU: "sku-1"})
	}
	testkit.WaitUntil(t, 60*time.Second, "both sagas to finish", func() bool {
		o := s.watcher.Outcomes()
		return len(o["order-hol-busy"]) == 1 && len(o["order-hol-other"]) == 1
	})

	event := func(id, typ, orderID string) *message.Message {
		body, err := json.Marshal(map[string]any{"specversion": "1.0", "id": id, "source": "hol", "type": typ,
			"datacontenttype": "application/json", "data": map[string]any{"orderId": orderID}})
		if err != nil {
			t.Fatal(err)
		}
		m := message.NewMessage(id, body)
		m.Metadata.Set("partition_key", orderID)
		return m
	}
	probe := func(t *testing.T, name string) (time.Time, time.Time) {
		t.Helper()
		sent := time.Now()
		if err := s.client.Publisher().Publish("storm.events", event("probe-"+name, "probe", "hol-other")); err != nil {
			t.Fatal(err)
		}
		var at time.Time
		testkit.WaitUntil(t, 120*time.Second, "the other instance's event", func() bool {
			at, _, _, _ = rec.snapshot()
			return !at.IsZero()
		})
		return sent, at
	}

	t.Run("storm", func(t *testing.T) {
		const storm = 2000
		msgs := make([]*message.Message, storm)
		for i := range msgs {
			msgs[i] = event(fmt.Sprintf("noise-%d", i), "noise", "hol-busy")
		}
		began := time.Now()
		if err := s.client.Publisher().Publish("storm.events", msgs...); err != nil {
			t.Fatal(err)
		}
		published := time.Now()
		_, _, atSend, _ := rec.snapshot()
		sent, at := probe(t, "storm")
		_, before, _, _ := rec.snapshot()
		testkit.WaitUntil(t, 300*time.Second, "the storm to be handled", func() bool {
			_, _, n, _ := rec.snapshot()
			return n == storm
		})
		t.Logf("%s: storm of %d published in %s (%d handled meanwhile); the other instance's event, published then, waited %s, while %d more of the storm were handled; the storm took %s",
			kit.name, storm, published.Sub(began).Round(time.Millisecond), atSend, at.Sub(sent).Round(time.Millisecond),
			before-atSend, time.Since(began).Round(time.Millisecond))
		if left := storm - atSend; before-atSend > left/2 {
			t.Errorf("the other instance's event waited for %d of the %d events of the busy instance still queued", before-atSend, left)
		}
	})

	rec.mu.Lock()
	rec.probeAt = time.Time{}
	rec.mu.Unlock()
	t.Run("parked", func(t *testing.T) {
		const early = 70
		msgs := make([]*message.Message, early)
		for i := range msgs {
			msgs[i] = event(fmt.Sprintf("early-%d", i), "noise", "hol-not-yet")
		}
		if err := s.client.Publisher().Publish("storm.events", msgs...); err != nil {
			t.Fatal(err)
		}
		testkit.WaitUntil(t, 30*time.Second, "the early raises to park", func() bool {
			_, _, _, p := rec.snapshot()
			return p > 0
		})
		sent, at := probe(t, "parked")
		t.Logf("%s: %d early raises parked (park window %s); the other instance's event waited %s",
			kit.name, early, cfg.Routes[len(cfg.Routes)-2].ParkWindow, at.Sub(sent).Round(time.Millisecond))
		if w := at.Sub(sent); w > 60*time.Second {
			t.Errorf("the other instance's event waited %s behind a parked instance", w)
		}
	})
}
