package bridge_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/sagas/order"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
)

// heavyRoute reads a list against another in the event: cheap for the
// events it was written for, quadratic in a large one.
const heavyRoute = `
  - name: blocked-items
    topics: [orders.placed]
    match: event.type == "order.screened" && event.data.items.exists(x, x in event.data.blocked)
    terminate: {instanceId: '"order-" + event.data.orderId', reason: blocked item}
`

// TestExpensiveRouteIsDeadLettered: a route whose CEL would run for minutes
// on one large event (15,000 items against 15,000 blocked ones, 173 KB) is
// stopped by the evaluation cost limit: the event is dead-lettered with
// kind route-eval and a reason that says so, promptly, and the topic goes
// on with the next order.
func TestExpensiveRouteIsDeadLettered(t *testing.T) {
	for _, newKit := range brokerKits(t) {
		kit := newKit(t)
		t.Run(kit.name, func(t *testing.T) { expensiveRouteIsDeadLettered(t, kit) })
	}
}

func expensiveRouteIsDeadLettered(t *testing.T, kit brokerKit) {
	cfg, err := config.Parse("cel.yaml", append(order.BridgeYAML(), heavyRoute...))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	kit.configure(cfg)
	cfg.Engine.Embedded.DBPath = t.TempDir() + "/workflows.db"
	s := startStack(t, kit, cfg, stackOptions{participants: true})
	dead := subscribeDLQ(t, s, cfg.DLQ.Topic)

	items, blocked := make([]int, 15000), make([]int, 15000)
	for i := range items {
		items[i], blocked[i] = i, -i-1
	}
	body, err := json.Marshal(map[string]any{"specversion": "1.0", "id": "heavy-1", "source": "cel-test",
		"type": "order.screened", "data": map[string]any{"orderId": "heavy", "items": items, "blocked": blocked}})
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if err := s.client.Publisher().Publish(order.OrdersPlaced, message.NewMessage("heavy-1", body)); err != nil {
		t.Fatal(err)
	}
	o := simulated.Order{OrderID: "after-heavy", Amount: 1, Quantity: 1, SKU: "sku-1"}
	publishOrder(t, s, "evt-"+o.OrderID, o)

	e := nextDeadLetter(t, dead, 60*time.Second)
	t.Logf("%s: a %d-byte event dead-lettered after %s: %s: %s", kit.name, len(body), time.Since(sent).Round(time.Millisecond), e.Failure.Kind, e.Failure.Reason)
	if e.Failure.Kind != dlq.KindEval || e.Failure.Route != "blocked-items" || !strings.Contains(e.Failure.Reason, "cost") {
		t.Errorf("dead letter %s route %q: %q, want route-eval on blocked-items saying the cost limit", e.Failure.Kind, e.Failure.Route, e.Failure.Reason)
	}
	testkit.WaitUntil(t, 60*time.Second, "the order behind it", func() bool { return len(s.watcher.Outcomes()["order-"+o.OrderID]) == 1 })
}
