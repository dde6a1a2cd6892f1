package bridge_test

import (
	"github.com/sagabridge/sagabridge/sagas/order"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/bridge/admin"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
)

// accessRoutes add two terminate routes and the start of a declarative
// saga (TicketFlow) to the dev routes, and an access block: only
// order-cancelled may terminate an OrderSaga; ticket-closed may terminate
// TicketFlows, nothing else. A declarative saga is checked under its own
// name like any workflow.
const accessRoutes = `
  - name: ticket-opened
    topics: [tickets.opened]
    start: {workflow: TicketFlow, instanceId: '"order-" + event.data.orderId'}
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
    TicketFlow:
      start: {routes: [ticket-opened]}
      terminate: {routes: [ticket-closed]}
sagas: [ticket.yaml]
`

const ticketFlow = `name: TicketFlow
version: 1
steps:
  - name: wait-for-close
    wait: {event: closed}
    timeout: 1h
`

// TestAccessPolicyDeniesTerminate: a route the access block does not let
// terminate an OrderSaga has its event dead-lettered (kind denied, with the
// rule in the reason, counted), and the saga keeps running; the route that
// is allowed terminates it.
func TestAccessPolicyDeniesTerminate(t *testing.T) {
	kit := natsKit(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ticket.yaml"), []byte(ticketFlow), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(filepath.Join(dir, "access.yaml"), append(order.BridgeYAML(), accessRoutes...))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	kit.configure(cfg)
	cfg.Engine.Embedded.DBPath = filepath.Join(dir, "workflows.db")
	metrics := admin.NewMetrics(admin.MetricsOptions{NoRuntime: true})
	s := startStack(t, kit, cfg, stackOptions{metrics: metrics}) // no services: the saga waits
	dead, err := s.client.Subscriber().Subscribe(t.Context(), cfg.DLQ.Topic)
	if err != nil {
		t.Fatal(err)
	}
	const id = "order-acc-1"
	publishOrder(t, s, "evt-acc-1", simulated.Order{OrderID: "acc-1", Amount: 1})
	status := func(id string) string {
		st, err := s.bridge.Engine().Get(t.Context(), id)
		if err != nil {
			return err.Error()
		}
		return st.RuntimeStatus
	}
	testkit.WaitUntil(t, 30*time.Second, "the saga running", func() bool { return status(id) == "RUNNING" })

	send := func(topic, eventID, orderID string) {
		t.Helper()
		body := cloudEvent(t, map[string]any{"id": eventID, "type": "cancel", "data": map[string]any{"orderId": orderID}})
		if err := s.client.Publisher().Publish(topic, message.NewMessage(eventID, body)); err != nil {
			t.Fatal(err)
		}
	}
	cancel := func(topic, eventID string) {
		t.Helper()
		send(topic, eventID, "acc-1")
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
	testkit.WaitUntil(t, 10*time.Second, "the denied counter", func() bool {
		return counter(t, metrics.Registry(), "sagabridge_events_dead_lettered_total", map[string]string{"kind": dlq.KindDenied}) == 1
	})
	if st := status(id); st != "RUNNING" {
		t.Fatalf("after a denied terminate the saga is %s, want RUNNING", st)
	}

	cancel("orders.cancelled", "evt-cancel-1")
	testkit.WaitUntil(t, 30*time.Second, "the allowed terminate", func() bool { return status(id) == "TERMINATED" })

	// ticket-closed may terminate a TicketFlow.
	send("tickets.opened", "evt-ticket-1", "tkt-1")
	testkit.WaitUntil(t, 30*time.Second, "the ticket flow running", func() bool { return status("order-tkt-1") == "RUNNING" })
	send("tickets.closed", "evt-ticket-closed-1", "tkt-1")
	testkit.WaitUntil(t, 30*time.Second, "the ticket flow terminated", func() bool { return status("order-tkt-1") == "TERMINATED" })
	if n := s.bridge.Stats().DeadLettered.Load(); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
}
