package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/kafka"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// TestReplayKeepsWhatNoRouteHandles: `dlq replay` re-publishes a dead
// letter only if a route of the config would handle it now. One whose
// event matches no route any more (its route was removed) or whose topic
// no route consumes would be acked unmatched: it stays in the dead-letter
// topic, and the replay says why. --any-route replays it anyway.
func TestReplayKeepsWhatNoRouteHandles(t *testing.T) {
	t.Run("nats", func(t *testing.T) {
		srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
		ps, err := natsjs.New(natsjs.Config{URL: srv.ClientURL(), ConsumerGroup: "replay-test"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ps.Close() })
		replayKeepsWhatNoRouteHandles(t, map[string]any{"kind": "nats", "nats": map[string]any{"url": srv.ClientURL()}},
			ps.Publisher(), ps.EnsureStream)
	})
	t.Run("kafka", func(t *testing.T) {
		k, err := kafka.StartEmbedded()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(k.Close)
		ps := mustKafkaClient(t, k.Brokers(), "replay-test")
		// The client creates a topic by publishing to it, as a producer would.
		ensure := func(topic string) error {
			return ps.Publisher().Publish(topic, message.NewMessage("create-"+topic, []byte(`{}`)))
		}
		replayKeepsWhatNoRouteHandles(t, map[string]any{"kind": "kafka", "kafka": map[string]any{"brokers": k.Brokers(), "autoCreateTopics": true}},
			ps.Publisher(), ensure)
	})
}

func replayKeepsWhatNoRouteHandles(t *testing.T, broker map[string]any, pub message.Publisher, ensure func(topic string) error) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, broker, embeddedEngine(dir), "127.0.0.1:0")
	deadLetter := func(id, topic, typ, route string) {
		t.Helper()
		body, err := json.Marshal(map[string]any{"specversion": "1.0", "id": id, "source": "s", "type": typ, "data": map[string]any{"orderId": id}})
		if err != nil {
			t.Fatal(err)
		}
		if err := ensure(topic); err != nil {
			t.Fatal(err)
		}
		out, err := dlq.NewMessage(message.NewMessage(id, body), dlq.Failure{Kind: dlq.KindEngine, Reason: "engine refused", Route: route,
			OriginTopic: topic, EventID: id, EventType: typ, FailedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish(topics.DeadLetter, out); err != nil {
			t.Fatal(err)
		}
	}
	deadLetter("still-routed", order.OrdersPlaced, "order.placed", "order-placed")
	deadLetter("route-removed", order.OrdersPlaced, "order.legacy-placed", "legacy-order-placed")
	deadLetter("topic-unrouted", "legacy.orders", "order.placed", "legacy-orders")

	c := cli{t: t, cfg: cfgPath}
	var res struct {
		Replayed, Kept int
		KeptWhy        []string
	}
	if err := json.Unmarshal([]byte(c.must("dlq", "replay", "--no-progress", "-o", "json")), &res); err != nil {
		t.Fatal(err)
	}
	t.Logf("replay: %+v", res)
	if res.Replayed != 1 || res.Kept != 2 || len(res.KeptWhy) != 2 ||
		!strings.Contains(strings.Join(res.KeptWhy, "\n"), "matches no route of the config any more") ||
		!strings.Contains(strings.Join(res.KeptWhy, "\n"), "no route of the config consumes topic legacy.orders") {
		t.Fatalf("replay %+v: want the routed one replayed and the other two kept, saying why", res)
	}
	list := c.must("dlq", "list", "-o", "json")
	if !strings.Contains(list, "route-removed") || !strings.Contains(list, "topic-unrouted") || strings.Contains(list, "still-routed") {
		t.Errorf("after the replay the DLQ holds %s", list)
	}
	if err := json.Unmarshal([]byte(c.must("dlq", "replay", "--no-progress", "--any-route", "-o", "json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 2 || res.Kept != 0 {
		t.Errorf("replay --any-route: %+v, want both replayed", res)
	}
}
