package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	kafkago "github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/cmd/sagabridge/brokers"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// TestConsumerLagIsWhatKEDAReads: with events waiting and events handed
// out but not acknowledged, the worker's consumer lag per routed topic is
// the figure KEDA's scaler computes for the same consumer (the
// ScaledObjects in deploy/autoscaling): on NATS from the server's /jsz
// monitoring endpoint, queried and summed as KEDA's nats-jetstream scaler
// does; on Kafka from the group's committed offsets and the partitions'
// offsets, as KEDA's kafka scaler does with offsetResetPolicy earliest.
func TestConsumerLagIsWhatKEDAReads(t *testing.T) {
	t.Run("nats", kedaLagNATS)
	t.Run("kafka", kedaLagKafka)
}

// quiescentBridge runs a bridge on cfg until it has subscribed (creating
// its consumers) and stops it, then opens one that does not consume, to
// read the lag of a backlog the test controls.
func quiescentBridge(t *testing.T, kit brokerKit, cfg *config.Config, warmUp func(s *stack)) *bridge.Bridge {
	t.Helper()
	s := startStack(t, kit, cfg, stackOptions{})
	if warmUp != nil {
		warmUp(s)
	}
	s.stop(t)
	b, err := bridge.New(context.Background(), cfg, bridge.Options{Connect: brokers.Connect, Logger: zaptest.NewLogger(t).Named("reader"), Sagas: orderSagas(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

func kedaLagNATS(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, HTTPHost: "127.0.0.1", HTTPPort: -1,
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	natsURL := ns.ClientURL()
	kit := brokerKit{
		name:      "nats",
		configure: func(cfg *config.Config) { cfg.Broker.Kind = "nats"; cfg.Broker.NATS.URL = natsURL },
		pubsub:    natsClients(natsURL),
	}
	cfg := devConfig(t, kit, t.TempDir())
	b := quiescentBridge(t, kit, cfg, nil)

	// 10 orders wait; 3 of them are handed out and not acknowledged, as
	// the events a replica holds in flight. 2 replies wait.
	client := kit.pubsub(t, "test-client")
	for i := 1; i <= 10; i++ {
		o := simulated.Order{OrderID: fmt.Sprintf("lag-%d", i), Amount: 1}
		if err := simulated.PublishOrder(client.Publisher(), "orders.placed", "evt-"+o.OrderID, o); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 2; i++ {
		reply := simulated.ReplyData{OrderID: fmt.Sprintf("lag-%d", i)}
		msg, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": fmt.Sprintf("r-%d", i), "source": "t", "type": "inventory.reserved", "data": reply})
		if err := client.Publisher().Publish("inventory.replies", message.NewMessage(fmt.Sprintf("r-%d", i), msg)); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cons, err := js.Consumer(ctx, natsjs.StreamName("orders.placed"), natsjs.ConsumerName(cfg.Broker.ConsumerGroup, "orders.placed"))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(3)
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for range batch.Messages() {
		held++
	}
	if held != 3 {
		t.Fatalf("held %d messages, want 3", held)
	}

	lag, err := b.ConsumerLag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keda := kedaNATSLag(t, ns.MonitorAddr().String(), cfg)
	t.Logf("worker's lag %v; KEDA reads %v", lag, keda)
	for _, want := range []struct {
		topic string
		n     int64
	}{{"orders.placed", 10}, {"inventory.replies", 2}, {"payment.replies", 0}, {"shipping.replies", 0}} {
		if lag[want.topic] != want.n || keda[want.topic] != want.n {
			t.Errorf("%s: worker's lag %d, KEDA's %d, want %d (waiting plus handed out unacknowledged)", want.topic, lag[want.topic], keda[want.topic], want.n)
		}
	}
}

// kedaNATSLag queries the monitoring endpoint as KEDA v2.21.1's
// nats-jetstream scaler does (/jsz?acc=$G&consumers=true&config=true) and
// takes, for each routed topic's stream and consumer, num_pending +
// num_ack_pending (its getMaxMsgLag).
func kedaNATSLag(t *testing.T, monitor string, cfg *config.Config) map[string]int64 {
	t.Helper()
	q := url.Values{"acc": {"$G"}, "consumers": {"true"}, "config": {"true"}}
	resp, err := http.Get("http://" + monitor + "/jsz?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jsz struct {
		Accounts []struct {
			Name    string `json:"name"`
			Streams []struct {
				Name      string `json:"name"`
				Consumers []struct {
					Name          string `json:"name"`
					NumAckPending int    `json:"num_ack_pending"`
					NumPending    int    `json:"num_pending"`
				} `json:"consumer_detail"`
			} `json:"stream_detail"`
		} `json:"account_details"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jsz); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, rt := range cfg.Routes {
		for _, topic := range rt.Topics {
			for _, a := range jsz.Accounts {
				for _, s := range a.Streams {
					for _, c := range s.Consumers {
						if a.Name == "$G" && s.Name == natsjs.StreamName(topic) && c.Name == natsjs.ConsumerName(cfg.Broker.ConsumerGroup, topic) {
							out[topic] = int64(c.NumPending + c.NumAckPending)
						}
					}
				}
			}
		}
	}
	return out
}

func kedaLagKafka(t *testing.T) {
	kit := kafkaKit(t)
	cfg := devConfig(t, kit, t.TempDir())
	brokers := cfg.Broker.Kafka.Brokers
	// 4 orders consumed and committed while the bridge runs.
	b := quiescentBridge(t, kit, cfg, func(s *stack) {
		for i := 1; i <= 4; i++ {
			publishOrder(t, s, fmt.Sprintf("evt-pre-%d", i), simulated.Order{OrderID: fmt.Sprintf("pre-%d", i), Amount: 1})
		}
		testkit.WaitUntil(t, 30*time.Second, "the 4 orders to be committed", func() bool {
			return kedaKafkaLag(t, brokers, cfg.Broker.ConsumerGroup+".orders.placed", "orders.placed") == 0 &&
				s.bridge.Stats().Snapshot().Started == 4
		})
	})
	// Then 6 orders and 3 replies wait; nothing was ever committed on the
	// replies' topic.
	client := kit.pubsub(t, "test-client")
	for i := 1; i <= 6; i++ {
		o := simulated.Order{OrderID: fmt.Sprintf("lag-%d", i), Amount: 1}
		if err := simulated.PublishOrder(client.Publisher(), "orders.placed", "evt-"+o.OrderID, o); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ {
		msg, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": fmt.Sprintf("r-%d", i), "source": "t", "type": "inventory.reserved",
			"data": simulated.ReplyData{OrderID: fmt.Sprintf("lag-%d", i)}})
		if err := client.Publisher().Publish("inventory.replies", message.NewMessage(fmt.Sprintf("r-%d", i), msg)); err != nil {
			t.Fatal(err)
		}
	}
	lag, err := b.ConsumerLag(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	keda := map[string]int64{}
	for topic := range lag {
		keda[topic] = kedaKafkaLag(t, brokers, cfg.Broker.ConsumerGroup+"."+topic, topic)
	}
	t.Logf("worker's lag %v; KEDA reads %v", lag, keda)
	for _, want := range []struct {
		topic string
		n     int64
	}{{"orders.placed", 6}, {"inventory.replies", 3}} {
		if lag[want.topic] != want.n || keda[want.topic] != want.n {
			t.Errorf("%s: worker's lag %d, KEDA's %d, want %d", want.topic, lag[want.topic], keda[want.topic], want.n)
		}
	}
	for topic, n := range lag {
		if keda[topic] != n {
			t.Errorf("%s: worker's lag %d, KEDA's %d", topic, n, keda[topic])
		}
	}
}

// kedaKafkaLag is KEDA v2.21.1's kafka scaler's lag for group on topic
// (getLagForPartition, summed): per partition the latest offset minus the
// committed one, or, with no committed offset and offsetResetPolicy
// earliest, the latest minus the earliest. A topic that does not exist yet
// has none.
func kedaKafkaLag(t *testing.T, brokers []string, group, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...)}
	md, err := c.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	var parts []int
	for _, tp := range md.Topics {
		if tp.Error != nil {
			return 0
		}
		for _, p := range tp.Partitions {
			parts = append(parts, p.ID)
		}
	}
	var first, last []kafkago.OffsetRequest
	for _, p := range parts {
		first = append(first, kafkago.FirstOffsetOf(p))
		last = append(last, kafkago.LastOffsetOf(p))
	}
	offs, err := c.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: first}})
	if err != nil {
		t.Fatal(err)
	}
	ends, err := c.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: last}})
	if err != nil {
		t.Fatal(err)
	}
	committed, err := c.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		t.Fatal(err)
	}
	earliest, latest := map[int]int64{}, map[int]int64{}
	for _, p := range offs.Topics[topic] {
		earliest[p.Partition] = p.FirstOffset
	}
	for _, p := range ends.Topics[topic] {
		latest[p.Partition] = p.LastOffset
	}
	var lag int64
	for _, p := range committed.Topics[topic] {
		if p.CommittedOffset < 0 {
			lag += max(0, latest[p.Partition]-earliest[p.Partition])
			continue
		}
		lag += latest[p.Partition] - p.CommittedOffset
	}
	return lag
}
