package bridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
)

// TestStateGauges: on a real NATS server, the dead-letter depth counts
// what the DLQ holds, the lag counts what the consumer group was not
// handed yet, and the oldest running saga is the one that waits.
func TestStateGauges(t *testing.T) {
	kit := natsKit(t)
	cfg := devConfig(t, kit, t.TempDir())
	// No participants: the saga waits at its first step.
	s := startStack(t, kit, cfg, stackOptions{})
	ctx := context.Background()
	if n, err := s.bridge.DLQDepth(ctx); err != nil || n != 0 {
		t.Fatalf("DLQ depth before any dead letter: %d %v", n, err)
	}
	for _, id := range []string{"bad-1", "bad-2"} {
		if err := s.client.Publisher().Publish("orders.placed", message.NewMessage(id, []byte(`{"specversion":`))); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitUntil(t, 30*time.Second, "two dead letters", func() bool {
		n, err := s.bridge.DLQDepth(ctx)
		return err == nil && n == 2
	})
	lag, err := s.bridge.ConsumerLag(ctx)
	if err != nil || len(lag) != 4 {
		t.Fatalf("lag %v %v: want the four routed topics", lag, err)
	}
	for topic, n := range lag {
		if n != 0 {
			t.Errorf("lag of %s: %d, the worker keeps up", topic, n)
		}
	}

	publishOrder(t, s, "evt-waits", simulated.Order{OrderID: "waits", Amount: 1, Quantity: 1, SKU: "sku-1"})
	testkit.WaitUntil(t, 30*time.Second, "the waiting saga to be known", func() bool { return s.bridge.OldestRunning()["OrderSaga"] > 0 })
	a := s.bridge.OldestRunning()["OrderSaga"]
	time.Sleep(1100 * time.Millisecond)
	if b := s.bridge.OldestRunning()["OrderSaga"]; b < a+time.Second {
		t.Errorf("oldest running saga %s, a second later %s: it should age", a, b)
	}
}
