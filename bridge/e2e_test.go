package bridge_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics"
)

// brokerKits lists the brokers every end-to-end test body runs on.
func brokerKits(t *testing.T) []func(*testing.T) brokerKit {
	return []func(*testing.T) brokerKit{natsKit, kafkaKit}
}

func TestOrderSagaEndToEnd(t *testing.T) {
	for _, newKit := range withEngines(t, brokerKits(t)) {
		kit := newKit(t)
		t.Run(kit.name, func(t *testing.T) { orderSagaEndToEnd(t, kit) })
	}
}

// TestEmbeddedBrokerEndToEnd runs the order saga on broker kind embedded:
// the bridge starts nats-server itself and connects to it in-process, while
// the services and the watcher connect over TCP as other processes do.
func TestEmbeddedBrokerEndToEnd(t *testing.T) {
	kit := embeddedKit(t)
	cfg := devConfig(t, kit, t.TempDir())
	s := startStack(t, kit, cfg, stackOptions{participants: true})
	if got := bridge.BrokerConnAddr(s.bridge); got != "pipe" {
		t.Errorf("bridge connected to its embedded server at %q, want the in-process pipe", got)
	}
	orderSagaEndToEndOn(t, s, cfg.Engine.Kind)
}

// orderSagaEndToEnd publishes 200 orders, some declined by payment, some
// refused by shipping, and some published twice, and checks that each order
// ends in exactly one outcome with the compensations in reverse order.
func orderSagaEndToEnd(t *testing.T, kit brokerKit) {
	cfg := devConfig(t, kit, t.TempDir())
	orderSagaEndToEndOn(t, startStack(t, kit, cfg, stackOptions{participants: true}), cfg.Engine.Kind)
}

func orderSagaEndToEndOn(t *testing.T, s *stack, engineKind string) {
	const n = 200
	want := map[string]simulated.Order{}
	dups := 0
	for i := 1; i <= n; i++ {
		o := simulated.Order{OrderID: orderID("e2e", i), Amount: float64(i), Quantity: 1, SKU: "sku-1"}
		switch {
		case i%5 == 0:
			o.FailPayment = true
		case i%7 == 0:
			o.FailShipping = true
		}
		want["order-"+o.OrderID] = o
		publishOrder(t, s, "evt-"+o.OrderID, o)
		if i%10 == 3 {
			// The producer sends the same event again under a new message id,
			// so the broker cannot dedupe it: the bridge must.
			msg, err := simulated.OrderMessage("evt-"+o.OrderID, o)
			if err != nil {
				t.Fatal(err)
			}
			msg.UUID = "retry-" + msg.UUID
			if err := s.client.Publisher().Publish("orders.placed", msg); err != nil {
				t.Fatal(err)
			}
			dups++
		}
	}
	testkit.WaitUntil(t, 2*time.Minute, "200 outcomes", func() bool { return s.watcher.Count() >= n })
	time.Sleep(500 * time.Millisecond) // let any duplicate outcome arrive

	outcomes := s.watcher.Outcomes()
	if len(outcomes) != n {
		t.Fatalf("outcomes for %d instances, want %d", len(outcomes), n)
	}
	if d := s.watcher.Duplicates(); d != 0 {
		t.Errorf("%d duplicate outcome deliveries", d)
	}
	for id, o := range want {
		got := outcomes[id]
		if len(got) != 1 {
			t.Errorf("%s: %d outcomes, want 1", id, len(got))
			continue
		}
		out := got[0].Outcome
		if got[0].EventID != topics.OutcomeID(id, out.Status) {
			t.Errorf("%s: outcome id %q is not stable", id, got[0].EventID)
		}
		switch {
		case o.FailPayment:
			checkOutcome(t, out, topics.StatusCompensated, []string{"reserve-inventory"})
		case o.FailShipping:
			checkOutcome(t, out, topics.StatusCompensated, []string{"charge-payment", "reserve-inventory"})
		default:
			checkOutcome(t, out, topics.StatusCompleted, nil)
		}
	}

	// On daprd the split between the two counters moves: a start the
	// engine took but answered too late for the client comes again and is
	// counted as a duplicate, and a re-sent start that finds its instance
	// finished is ignored by the reuse policy without a word, so it counts
	// as a start. Every delivery is counted as one or the other; that no
	// order ran twice is what the outcomes and the participants' books show.
	st := s.bridge.Stats().Snapshot()
	if engineKind != "dapr" && st.Started != int64(n) {
		t.Errorf("started %d workflows, want %d", st.Started, n)
	}
	if st.Started+st.DuplicateStarts < int64(n+dups) {
		t.Errorf("started %d + duplicate starts %d, want at least %d orders + %d re-sent", st.Started, st.DuplicateStarts, n, dups)
	}
	if st.DeadLettered != 0 {
		t.Errorf("%d events dead-lettered", st.DeadLettered)
	}
	// The participants' books balance: nothing held for a compensated order.
	led := s.parts.Ledger().Snapshot()
	for id, o := range want {
		oid := o.OrderID
		compensated := o.FailPayment || o.FailShipping
		if compensated && (led.Reserved[oid] || led.Charged[oid]) {
			t.Errorf("%s compensated but reserved=%v charged=%v", id, led.Reserved[oid], led.Charged[oid])
		}
		if !compensated && !(led.Reserved[oid] && led.Charged[oid] && led.Shipped[oid]) {
			t.Errorf("%s completed but ledger incomplete", id)
		}
	}
}

func checkOutcome(t *testing.T, out topics.Outcome, status string, compensated []string) {
	t.Helper()
	if out.Status != status {
		t.Errorf("%s: status %s, want %s (error %q; steps %+v)", out.InstanceID, out.Status, status, out.Error, out.Steps)
	}
	if !slices.Equal(out.Compensated, compensated) {
		t.Errorf("%s: compensated %v, want %v (reverse order of the steps)", out.InstanceID, out.Compensated, compensated)
	}
	if out.Saga != "OrderSaga" || out.FinishedAt.Before(out.StartedAt) {
		t.Errorf("%s: outcome header %+v", out.InstanceID, out)
	}
}

// TestEarlyReplyIsParked sends every reply of a saga before the order that
// starts it: the bridge parks the replies until the instance exists.
func TestEarlyReplyIsParked(t *testing.T) {
	for _, newKit := range withEngines(t, brokerKits(t)) {
		kit := newKit(t)
		t.Run(kit.name, func(t *testing.T) {
			cfg := devConfig(t, kit, t.TempDir())
			s := startStack(t, kit, cfg, stackOptions{}) // no services: the test answers
			o := simulated.Order{OrderID: "early-1", Amount: 5}
			id := "order-" + o.OrderID
			for _, r := range []struct{ topic, typ, step string }{
				{order.InventoryReplies, "inventory.reserved", "reserve-inventory"},
				{order.PaymentReplies, "payment.charged", "charge-payment"},
				{order.ShippingReplies, "shipping.created", "create-shipment"},
			} {
				publishReply(t, s, r.topic, r.typ, simulated.ReplyData{
					Reply:   topics.Reply{InstanceID: id, Step: r.step, Status: topics.ReplyOK},
					OrderID: o.OrderID,
				})
			}
			testkit.WaitUntil(t, 30*time.Second, "replies parked", func() bool { return s.bridge.Stats().Parked.Load() >= 3 })
			publishOrder(t, s, "evt-early-1", o)
			testkit.WaitUntil(t, 60*time.Second, "outcome", func() bool { return s.watcher.Count() == 1 })
			out := s.watcher.Outcomes()[id]
			if len(out) != 1 || out[0].Outcome.Status != topics.StatusCompleted {
				t.Fatalf("outcome %+v", out)
			}
			if st := s.bridge.Stats().Snapshot(); st.DeadLettered != 0 || st.Raised != 3 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func publishReply(t *testing.T, s *stack, topic, typ string, data simulated.ReplyData) {
	t.Helper()
	ev, err := topics.NewCloudEvent(fmt.Sprintf("reply-%s-%s", data.InstanceID, typ), "test", typ, data.InstanceID, time.Now(), data)
	if err != nil {
		t.Fatal(err)
	}
	body, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.client.Publisher().Publish(topic, message.NewMessage(ev.ID, body)); err != nil {
		t.Fatal(err)
	}
}

// TestBadEventIsDeadLettered: an undecodable event goes to the dead-letter
// topic with its reason and original payload, and the next good event flows.
func TestBadEventIsDeadLettered(t *testing.T) {
	for _, newKit := range withEngines(t, brokerKits(t)) {
		kit := newKit(t)
		t.Run(kit.name, func(t *testing.T) {
			cfg := devConfig(t, kit, t.TempDir())
			s := startStack(t, kit, cfg, stackOptions{participants: true})
			dead, err := s.client.Subscriber().Subscribe(t.Context(), cfg.DLQ.Topic)
			if err != nil {
				t.Fatal(err)
			}
			bad := message.NewMessage("bad-1", []byte(`{"specversion":"1.0","id":"x","type":`))
			bad.Metadata.Set("X-Origin", "legacy-shop")
			if err := s.client.Publisher().Publish("orders.placed", bad); err != nil {
				t.Fatal(err)
			}
			publishOrder(t, s, "evt-after-bad", simulated.Order{OrderID: "after-bad", Amount: 1})

			select {
			case msg := <-dead:
				msg.Ack()
				e, err := dlq.Parse(msg)
				if err != nil {
					t.Fatalf("parse dead letter: %v", err)
				}
				if e.Failure.Kind != dlq.KindDecode || e.Failure.OriginTopic != "orders.placed" ||
					string(e.Payload) != string(bad.Payload) || e.Metadata["X-Origin"] != "legacy-shop" {
					t.Fatalf("dead letter %+v", e)
				}
				if e.Failure.Reason == "" {
					t.Fatal("no reason")
				}
				t.Logf("reason: %s", e.Failure.Reason)
			case <-time.After(30 * time.Second):
				t.Fatal("no dead letter")
			}
			testkit.WaitUntil(t, 30*time.Second, "the next good order's outcome", func() bool { return s.watcher.Count() == 1 })
		})
	}
}
