package bridge_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/sagas/order"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sagabridge/sagabridge/bridge/admin"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
)

// catalogueRoutes are added to the dev routes for inputs the dev routes
// cannot produce: an instance ID taken verbatim from the payload and a
// raise that dead-letters (not drops) on a finished instance.
const catalogueRoutes = `
  - name: catalogue-start
    topics: [catalogue.events]
    match: event.type == "cat.start"
    start: {workflow: OrderSaga, instanceId: 'event.data.id'}
  - name: catalogue-late-reply
    topics: [catalogue.events]
    match: event.type == "cat.late"
    raise: {instanceId: '"order-" + event.data.orderId', eventName: late.reply}
`

// cloudEvent builds a structured CloudEvent body from attributes; data is
// marshalled as JSON.
func cloudEvent(t *testing.T, attrs map[string]any) []byte {
	t.Helper()
	ev := map[string]any{"specversion": "1.0", "source": "catalogue", "datacontenttype": "application/json"}
	for k, v := range attrs {
		if v == nil {
			delete(ev, k)
			continue
		}
		ev[k] = v
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// counter reads one series of a Prometheus counter from the registry.
func counter(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestBadInputCatalogue sends each kind of bad input to a real bridge (a
// NATS server, then kfake; embedded engine; Prometheus metrics) and checks, row by row: the
// dead letter read back from the DLQ topic has the precise kind, the
// reason names the problem, the counter of its kind went up by one, the
// worker still runs, and the good order published after it completes.
// docs/semantics.md "Bad input" lists the same rows.
func TestBadInputCatalogue(t *testing.T) {
	for _, newKit := range brokerKits(t) {
		kit := newKit(t)
		t.Run(kit.name, func(t *testing.T) { badInputCatalogue(t, kit) })
	}
}

func badInputCatalogue(t *testing.T, kit brokerKit) {
	cfg, err := config.Parse("catalogue.yaml", append(order.BridgeYAML(), catalogueRoutes...))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	kit.configure(cfg)
	cfg.Engine.Embedded.DBPath = t.TempDir() + "/workflows.db"
	cfg.Limits.MaxPayloadBytes = 16 << 10
	cfg.Limits.MaxInputBytes = 8 << 10
	metrics := admin.NewMetrics(admin.MetricsOptions{NoRuntime: true})
	reg := metrics.Registry()
	s := startStack(t, kit, cfg, stackOptions{participants: true, metrics: metrics})
	dead, err := s.client.Subscriber().Subscribe(t.Context(), cfg.DLQ.Topic)
	if err != nil {
		t.Fatal(err)
	}

	good := 0
	goodOrder := func(t *testing.T) {
		t.Helper()
		good++
		o := simulated.Order{OrderID: fmt.Sprintf("cat-good-%d", good), Amount: 1, Quantity: 1, SKU: "sku-1"}
		publishOrder(t, s, "evt-"+o.OrderID, o)
		testkit.WaitUntil(t, 30*time.Second, "the next good order's outcome", func() bool {
			return len(s.watcher.Outcomes()["order-"+o.OrderID]) == 1
		})
	}
	// A finished saga for the late raise, and an event id to repeat.
	goodOrder(t)
	finished := fmt.Sprintf("cat-good-%d", good)

	orderEvent := func(data any) []byte {
		return cloudEvent(t, map[string]any{"id": "evt-" + t.Name(), "type": "order.placed", "data": data})
	}
	catalogue := func(typ string, data any) []byte {
		return cloudEvent(t, map[string]any{"id": "evt-" + t.Name(), "type": typ, "data": data})
	}
	full := orderEvent(map[string]any{"orderId": "trunc-1", "amount": 1})
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)

	rows := []struct {
		name    string
		topic   string
		body    []byte
		headers map[string]string
		kind    string // "" for no dead letter
		route   string
		words   []string
	}{
		{name: "malformed JSON", topic: order.OrdersPlaced, body: []byte(`{"specversion": "1.0", id: 'x'}`),
			kind: dlq.KindDecode, words: []string{"malformed JSON", "invalid character"}},
		{name: "truncated CloudEvent", topic: order.OrdersPlaced, body: full[:len(full)/2],
			kind: dlq.KindDecode, words: []string{"malformed JSON", "unexpected end of JSON input"}},
		{name: "wrong specversion", topic: order.OrdersPlaced,
			body: cloudEvent(t, map[string]any{"specversion": "0.3", "id": "e", "type": "order.placed", "data": map[string]any{"orderId": "x"}}),
			kind: dlq.KindDecode, words: []string{`specversion "0.3" is not 1.0`}},
		{name: "no specversion on a CloudEvent topic", topic: order.OrdersPlaced,
			body: []byte(`{"id":"e","type":"order.placed","data":{"orderId":"x"}}`),
			kind: dlq.KindDecode, words: []string{"not a CloudEvent", "no route on topic orders.placed reads plain JSON"}},
		{name: "missing id", topic: order.OrdersPlaced,
			body: cloudEvent(t, map[string]any{"type": "order.placed", "data": map[string]any{"orderId": "x"}}),
			kind: dlq.KindDecode, words: []string{"cloudevent id is missing"}},
		{name: "missing type", topic: order.OrdersPlaced,
			body: cloudEvent(t, map[string]any{"id": "e", "data": map[string]any{"orderId": "x"}}),
			kind: dlq.KindDecode, words: []string{"cloudevent type is missing"}},
		{name: "wrong content type (structured)", topic: order.OrdersPlaced,
			body: cloudEvent(t, map[string]any{"id": "e", "type": "order.placed", "datacontenttype": "application/xml", "data": "<order/>"}),
			kind: dlq.KindDecode, words: []string{`datacontenttype "application/xml" is not JSON`}},
		{name: "wrong content type (binary)", topic: order.OrdersPlaced, body: []byte(`<order id="1"/>`),
			headers: map[string]string{"ce-specversion": "1.0", "ce-id": "e", "ce-source": "s", "ce-type": "order.placed", "Content-Type": "application/xml"},
			kind:    dlq.KindDecode, words: []string{`datacontenttype "application/xml" is not JSON`}},
		{name: "one attribute in two headers", topic: order.OrdersPlaced, body: []byte(`{"orderId":"two-types"}`),
			headers: map[string]string{"ce-specversion": "1.0", "ce-id": "e", "ce-source": "s", "ce-type": "order.placed", "Ce-Type": "order.cancelled"},
			kind:    dlq.KindDecode, words: []string{`headers "Ce-Type" and "ce-type" both carry the cloudevent attribute type`}},
		{name: "invalid UTF-8", topic: order.OrdersPlaced, body: append(orderEvent(map[string]any{"orderId": "u"})[:20:20], 0xff, 0xfe, '"', '}'),
			kind: dlq.KindDecode, words: []string{"not valid UTF-8"}},
		{name: "payload over the size limit", topic: order.OrdersPlaced, body: orderEvent(map[string]any{"orderId": "big", "pad": strings.Repeat("x", 20<<10)}),
			kind: dlq.KindTooLarge, words: []string{"exceeds the 16384 byte limit"}},
		{name: "workflow input over limits.maxInputBytes", topic: order.OrdersPlaced,
			body: orderEvent(map[string]any{"orderId": "big-input", "amount": 1, "pad": strings.Repeat("x", 10<<10)}),
			kind: dlq.KindTooLarge, route: "order-placed", words: []string{"workflow input of 102", "exceeds limits.maxInputBytes 8192"}},
		{name: "raise payload over limits.maxInputBytes", topic: "catalogue.events",
			body: catalogue("cat.late", map[string]any{"orderId": finished, "pad": strings.Repeat("x", 10<<10)}),
			kind: dlq.KindTooLarge, route: "catalogue-late-reply", words: []string{"event payload for late.reply of 102", "exceeds limits.maxInputBytes 8192"}},
		{name: "deeply nested JSON", topic: order.OrdersPlaced, body: orderEvent(json.RawMessage(deep)),
			kind: dlq.KindDecode, words: []string{"JSON nested 101 deep, limit 64"}},
		{name: "CEL error: missing field", topic: order.OrdersPlaced, body: orderEvent(map[string]any{"amount": 3}),
			kind: dlq.KindEval, route: "order-placed", words: []string{"route order-placed", "instanceId", "no such key: orderId"}},
		{name: "CEL error: wrong type", topic: order.OrdersPlaced, body: orderEvent(map[string]any{"orderId": 7}),
			kind: dlq.KindEval, route: "order-placed", words: []string{"route order-placed", `instanceId "order-" + event.data.orderId`, "no such overload", "an operand has a type"}},
		{name: "instance ID empty", topic: "catalogue.events", body: catalogue("cat.start", map[string]any{"id": ""}),
			kind: dlq.KindEval, route: "catalogue-start", words: []string{"route catalogue-start", "instanceId evaluated to an empty string"}},
		{name: "instance ID too long", topic: "catalogue.events", body: catalogue("cat.start", map[string]any{"id": strings.Repeat("a", 300)}),
			kind: dlq.KindEval, route: "catalogue-start", words: []string{"instanceId is 300 bytes, limit 256"}},
		{name: "instance ID with illegal characters", topic: "catalogue.events", body: catalogue("cat.start", map[string]any{"id": "order 1/../x"}),
			kind: dlq.KindEval, route: "catalogue-start", words: []string{`instanceId "order 1/../x" has characters outside [A-Za-z0-9_.:@-]`}},
		{name: "instance ID with the engine's separator", topic: "catalogue.events", body: catalogue("cat.start", map[string]any{"id": "order-1::0"}),
			kind: dlq.KindEval, route: "catalogue-start", words: []string{`instanceId "order-1::0" contains "::"`}},
		{name: "instance ID ending in ':'", topic: "catalogue.events", body: catalogue("cat.start", map[string]any{"id": "order-1:"}),
			kind: dlq.KindEval, route: "catalogue-start", words: []string{`instanceId "order-1:" ends in ':'`}},
		{name: "raise on a finished instance", topic: "catalogue.events", body: catalogue("cat.late", map[string]any{"orderId": finished}),
			kind: dlq.KindFinished, route: "catalogue-late-reply",
			words: []string{"raise late.reply on order-" + finished, "COMPLETED", "has finished"}},
		{name: "duplicate event id", topic: order.OrdersPlaced},
	}
	for i, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			msg := message.NewMessage(fmt.Sprintf("cat-bad-%d", i), row.body)
			for k, v := range row.headers {
				msg.Metadata.Set(k, v)
			}
			duplicate := row.body == nil
			var finishedBefore engine.Status
			if duplicate {
				// The first order's event again, under a new message id so the
				// broker cannot drop it: a start of a finished instance, acked,
				// no dead letter, and the saga is not run again.
				var err error
				if finishedBefore, err = s.bridge.Engine().Get(t.Context(), "order-"+finished); err != nil {
					t.Fatal(err)
				}
				msg, err = simulated.OrderMessage("evt-"+finished, simulated.Order{OrderID: finished, Amount: 1, Quantity: 1, SKU: "sku-1"})
				if err != nil {
					t.Fatal(err)
				}
				msg.UUID = "cat-dup-" + msg.UUID
			}
			kindLabel := map[string]string{"kind": row.kind}
			deadBefore := counter(t, reg, "sagabridge_events_dead_lettered_total", kindLabel)
			allDeadBefore := s.bridge.Stats().DeadLettered.Load()
			consumedBefore := s.bridge.Stats().Consumed.Load()
			if err := s.client.Publisher().Publish(row.topic, msg); err != nil {
				t.Fatal(err)
			}

			if duplicate {
				testkit.WaitUntil(t, 30*time.Second, "the duplicate handled", func() bool {
					return s.bridge.Stats().Consumed.Load() > consumedBefore
				})
			} else {
				select {
				case got := <-dead:
					got.Ack()
					e, err := dlq.Parse(got)
					if err != nil {
						t.Fatalf("parse dead letter: %v", err)
					}
					f := e.Failure
					t.Logf("%s → %s: %s", row.name, f.Kind, f.Reason)
					if f.Kind != row.kind || f.OriginTopic != row.topic || f.Route != row.route {
						t.Errorf("kind %q route %q origin %q, want %q %q %q", f.Kind, f.Route, f.OriginTopic, row.kind, row.route, row.topic)
					}
					for _, w := range row.words {
						if !strings.Contains(f.Reason, w) {
							t.Errorf("reason %q does not say %q", f.Reason, w)
						}
					}
					if string(e.Payload) != string(row.body) {
						t.Errorf("the dead letter changed the payload")
					}
				case <-time.After(30 * time.Second):
					t.Fatal("no dead letter")
				}
				testkit.WaitUntil(t, 10*time.Second, "the dead-letter counter", func() bool {
					return counter(t, reg, "sagabridge_events_dead_lettered_total", kindLabel) == deadBefore+1
				})
			}

			goodOrder(t) // the worker goes on
			select {
			case err := <-s.errs:
				t.Fatalf("the worker stopped: %v", err)
			default:
			}
			if duplicate {
				if n := s.bridge.Stats().DeadLettered.Load(); n != allDeadBefore {
					t.Errorf("the duplicate was dead-lettered (%d → %d)", allDeadBefore, n)
				}
				after, err := s.bridge.Engine().Get(t.Context(), "order-"+finished)
				if err != nil || after.RuntimeStatus != "COMPLETED" || !after.CreatedAt.Equal(finishedBefore.CreatedAt) {
					t.Errorf("the finished saga after a duplicate start: %+v, %v (before: created %s)", after, err, finishedBefore.CreatedAt)
				}
				select {
				case got := <-dead:
					t.Errorf("unexpected dead letter: %s", got.Metadata.Get(dlq.MetaReason))
				default:
				}
			}
		})
	}
	if t.Failed() {
		return
	}
	// Every good order ran exactly once; the bad ones started nothing. The
	// repeated start of a finished saga counts as a start: the engine
	// ignores it without saying so (its state was checked above).
	if st := s.bridge.Stats().Snapshot(); st.Started != int64(good)+1 {
		t.Errorf("started %d sagas, want %d (the good orders and the ignored repeat)", st.Started, good+1)
	}
}
