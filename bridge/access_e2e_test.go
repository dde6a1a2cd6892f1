package bridge_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/bridge/admin"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/devenv"
	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
)

// accessRoutes add two terminate routes to the dev routes and an access
// block: only order-cancelled may terminate an OrderSaga; ticket-closed
// may terminate declarative sagas, nothing else.
const accessRoutes = `
  - name: order-cancelled
    topics: [orders.cancelled]
    terminate: {instanceId: '"order-" + event.data.orderId', reason: cancelled by the customer}
  - name: ticket-closed
    topics: [tickets.closed]
    terminate: {instanceId: '"order-" + event.data.orderId', reason: ticket closed}
access:
  workflows:
    OrderSaga:
      start: {routes: [order-placed]}
      raise: {topics: [inventory.replies, payment.replies, shipping.replies]}
      terminate: {routes: [order-cancelled]}
    DeclarativeSaga-fm:
      terminate: {routes: [ticket-closed]}
`

// TestAccessPolicyDeniesTerminate: a route the access block does not let
// terminate an OrderSaga has its event dead-lettered (kind denied, with the
// rule in the reason, counted), and the saga keeps running; the route that
// is allowed terminates it.
func TestAccessPolicyDeniesTerminate(t *testing.T) {
	kit := natsKit(t)
	cfg, err := config.Parse("access.yaml", append(devenv.ConfigYAML(), accessRoutes...))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	kit.configure(cfg)
	cfg.Engine.Embedded.DBPath = t.TempDir() + "/workflows.db"
	metrics := admin.NewMetrics(admin.MetricsOptions{NoRuntime: true})
	s := startStack(t, kit, cfg, stackOptions{metrics: metrics}) // no services: the saga waits
	dead, err := s.client.Subscriber().Subscribe(t.Context(), cfg.DLQ.Topic)
	if err != nil {
		t.Fatal(err)
	}
	const id = "order-acc-1"
	publishOrder(t, s, "evt-acc-1", simulated.Order{OrderID: "acc-1", Amount: 1})
	status := func() string {
		st, err := s.bridge.Engine().Get(t.Context(), id)
		if err != nil {
			return err.Error()
		}
		return st.RuntimeStatus
	}
	waitFor(t, 30*time.Second, "the saga running", func() bool { return status() == "RUNNING" })

	cancel := func(topic, eventID string) {
		t.Helper()
		body := cloudEvent(t, map[string]any{"id": eventID, "type": "cancel", "data": map[string]any{"orderId": "acc-1"}})
		if err := s.client.Publisher().Publish(topic, message.NewMessage(eventID, body)); err != nil {
			t.Fatal(err)
		}
	}
	cancel("tickets.closed", "evt-rogue-1")
	select {
	case msg := <-dead:
		msg.Ack()
		e, err := dlq.Parse(msg)
		if err != nil {
			t.Fatal(err)
		}
		f := e.Failure
		t.Logf("%s: %s", f.Kind, f.Reason)
		want := `route "ticket-closed" on topic "tickets.closed" may not terminate workflow OrderSaga: access.workflows.OrderSaga.terminate does not grant it`
		if f.Kind != dlq.KindDenied || f.Route != "ticket-closed" || !strings.Contains(f.Reason, want) || !strings.Contains(f.Reason, id) {
			t.Fatalf("dead letter %+v", f)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no dead letter for the denied terminate")
	}
	waitFor(t, 10*time.Second, "the denied counter", func() bool {
		return counter(t, metrics.Registry(), "sagabridge_events_dead_lettered_total", map[string]string{"kind": dlq.KindDenied}) == 1
	})
	if st := status(); st != "RUNNING" {
		t.Fatalf("after a denied terminate the saga is %s, want RUNNING", st)
	}

	cancel("orders.cancelled", "evt-cancel-1")
	waitFor(t, 30*time.Second, "the allowed terminate", func() bool { return status() == "TERMINATED" })
	if n := s.bridge.Stats().DeadLettered.Load(); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
}
