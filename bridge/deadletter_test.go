package bridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/sagas/order"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	kafkago "github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// Dead-letter headers, spelt out so the test reads them on any version.
const (
	metaTruncated = "Sagabridge-Dlq-Truncated"
	metaOriginal  = "Sagabridge-Dlq-Original"
)

// dlqKit is a broker kit that can also do what a Watermill client cannot:
// publish a header twice (NATS), and limit the size of the messages the
// dead-letter topic stores, then lift the limit.
type dlqKit struct {
	brokerKit
	// publishRaw publishes with exactly these headers and no Watermill
	// message id, as a producer that is not Watermill does.
	publishRaw func(t *testing.T, topic string, hdr nats.Header, body []byte)
	// repeatsHeaders: a header given twice reaches the bridge twice (NATS);
	// on Kafka the record's last value wins and there is nothing to refuse.
	repeatsHeaders bool
	// limitTopic creates topic storing messages of at most n bytes; n < 0
	// lifts the limit.
	limitTopic func(t *testing.T, topic string, n int)
}

// natsDLQKit runs nats-server with max_payload set, as production servers
// have it (1 MiB is nats-server's default).
func natsDLQKit(t *testing.T, maxPayload int32) dlqKit {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(),
		MaxPayload: maxPayload, NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	url := ns.ClientURL()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	return dlqKit{
		brokerKit: brokerKit{
			name: fmt.Sprintf("nats(max_payload=%d)", maxPayload),
			configure: func(cfg *config.Config) {
				cfg.Broker.Kind = "nats"
				cfg.Broker.NATS.URL = url
			},
			pubsub: natsClients(url),
		},
		publishRaw: func(t *testing.T, topic string, hdr nats.Header, body []byte) {
			t.Helper()
			if _, err := js.PublishMsg(&nats.Msg{Subject: topic, Header: hdr, Data: body}); err != nil {
				t.Fatalf("publish raw: %v", err)
			}
		},
		repeatsHeaders: true,
		limitTopic: func(t *testing.T, topic string, n int) {
			t.Helper()
			sc := &nats.StreamConfig{Name: natsjs.StreamName(topic), Subjects: []string{topic},
				Storage: nats.FileStorage, Duplicates: 2 * time.Minute, MaxMsgSize: -1}
			if n >= 0 {
				sc.MaxMsgSize = int32(n)
			}
			if _, err := js.StreamInfo(sc.Name); err == nil {
				_, err = js.UpdateStream(sc)
				if err != nil {
					t.Fatalf("update stream: %v", err)
				}
				return
			}
			if _, err := js.AddStream(sc); err != nil {
				t.Fatalf("add stream: %v", err)
			}
		},
	}
}

func kafkaDLQKit(t *testing.T) dlqKit {
	t.Helper()
	k := kafkaKit(t)
	var brokers []string
	probe := config.Config{}
	k.configure(&probe)
	brokers = probe.Broker.Kafka.Brokers
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second}
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), BatchTimeout: time.Millisecond, AllowAutoTopicCreation: true}
	t.Cleanup(func() { _ = w.Close() })
	return dlqKit{
		brokerKit: k,
		publishRaw: func(t *testing.T, topic string, hdr nats.Header, body []byte) {
			t.Helper()
			rec := kafkago.Message{Topic: topic, Value: body}
			for k, vs := range hdr {
				for _, v := range vs {
					rec.Headers = append(rec.Headers, kafkago.Header{Key: k, Value: []byte(v)})
				}
			}
			// The bridge's subscription creates the topic; it may not be
			// there yet.
			deadline := time.Now().Add(20 * time.Second)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := w.WriteMessages(ctx, rec)
				cancel()
				if err == nil {
					return
				}
				if !errors.Is(err, kafkago.UnknownTopicOrPartition) || time.Now().After(deadline) {
					t.Fatalf("publish raw: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		},
		limitTopic: func(t *testing.T, topic string, n int) {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			size := "1048588" // kfake's default
			if n >= 0 {
				size = fmt.Sprint(n)
			}
			res, err := client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{
				Topic: topic, NumPartitions: 1, ReplicationFactor: 1,
				ConfigEntries: []kafkago.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: size}},
			}}})
			if err == nil && res.Errors[topic] == nil {
				return
			}
			alt, err := client.AlterConfigs(ctx, &kafkago.AlterConfigsRequest{Resources: []kafkago.AlterConfigRequestResource{{
				ResourceType: kafkago.ResourceTypeTopic, ResourceName: topic,
				Configs: []kafkago.AlterConfigRequestConfig{{Name: "max.message.bytes", Value: size}},
			}}})
			if err != nil {
				t.Fatalf("alter topic %s: %v", topic, err)
			}
			for _, e := range alt.Errors {
				if e != nil {
					t.Fatalf("alter topic %s: %v", topic, e)
				}
			}
		},
	}
}

// deadLetterRoutes add a route whose event type may be of any length.
const deadLetterRoutes = `
  - name: any-type
    topics: [catalogue.events]
    match: event.type.startsWith("big.")
    start: {workflow: OrderSaga, instanceId: 'event.data.id'}
`

// payloadMarker is in every bad payload (and header value); no log line at
// info or above may show it.
const payloadMarker = "PAYLOAD-TEXT-7f3a"

// TestDeadLetterAlwaysStored: a message whose full dead letter the broker
// cannot store (a header repeated, a reason, id or type over JetStream's
// 64 KiB of headers, a payload within a kilobyte of max_payload) is still
// dead-lettered: in full when it fits, else as a truncated copy with the
// reason and a pointer to the original. Five of each, on a bridge that
// handles one message at a time (NATS lets it hold four unacked), then a
// good order: it completes, so none of them holds up the topic, and
// /readyz stays ready.
func TestDeadLetterAlwaysStored(t *testing.T) {
	for _, newKit := range []func(*testing.T) dlqKit{
		func(t *testing.T) dlqKit { return natsDLQKit(t, 1<<20) },
		kafkaDLQKit,
	} {
		kit := newKit(t)
		t.Run(kit.name, func(t *testing.T) { deadLetterAlwaysStored(t, kit) })
	}
}

func deadLetterConfig(t *testing.T, kit dlqKit) *config.Config {
	t.Helper()
	cfg, err := config.Parse("dlq.yaml", append(order.BridgeYAML(), deadLetterRoutes...))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	kit.configure(cfg)
	cfg.Engine.Embedded.DBPath = t.TempDir() + "/workflows.db"
	cfg.Broker.Concurrency = 1
	return cfg
}

func deadLetterAlwaysStored(t *testing.T, kit dlqKit) {
	cfg := deadLetterConfig(t, kit)
	core, logs := observer.New(zapcore.DebugLevel)
	s := startStack(t, kit.brokerKit, cfg, stackOptions{participants: true, logger: zap.New(core)})
	dead := subscribeDLQ(t, s, cfg.DLQ.Topic)

	good := 0
	goodOrder := func(t *testing.T) {
		t.Helper()
		good++
		o := simulated.Order{OrderID: fmt.Sprintf("dl-good-%d", good), Amount: 1, Quantity: 1, SKU: "sku-1"}
		publishOrder(t, s, "evt-"+o.OrderID, o)
		testkit.WaitUntil(t, 60*time.Second, "the next good order's outcome", func() bool {
			return len(s.watcher.Outcomes()["order-"+o.OrderID]) == 1
		})
	}
	goodOrder(t)

	event := func(attrs map[string]any) []byte {
		t.Helper()
		ev := map[string]any{"specversion": "1.0", "source": "dl-test", "type": "order.placed"}
		for k, v := range attrs {
			ev[k] = v
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	big := strings.Repeat("x", 66<<10)
	// A CloudEvent of exactly n bytes whose data lacks orderId.
	sized := func(id string, n int) []byte {
		b := event(map[string]any{"id": id, "data": map[string]any{"note": payloadMarker, "pad": ""}})
		b = event(map[string]any{"id": id, "data": map[string]any{"note": payloadMarker, "pad": strings.Repeat("p", n-len(b))}})
		if len(b) != n {
			t.Fatalf("sized event is %d bytes, want %d", len(b), n)
		}
		return b
	}

	type row struct {
		name  string
		topic string
		body  func(i int) []byte
		hdr   func(i int) nats.Header // raw NATS publish with these headers
		kind  string
		words []string
		// truncated: the copy must be truncated (else it must be whole).
		truncated bool
	}
	rows := []row{
		{name: "a header twice", topic: order.OrdersPlaced,
			body: func(int) []byte { return []byte(`{"orderId":"` + payloadMarker + `"}`) },
			hdr: func(i int) nats.Header {
				return nats.Header{"ce-specversion": {"1.0"}, "ce-id": {fmt.Sprintf("dup-hdr-%d", i)}, "ce-source": {"s"},
					"ce-type": {"order.placed", "order.cancelled"}, "Content-Type": {"application/json"},
					"X-Customer": {payloadMarker, payloadMarker + "-2"}}
			},
			kind: dlq.KindDecode, words: []string{`header "X-Customer" (2 values), "ce-type" (2 values) repeated`}},
		{name: "specversion of 66 KB", topic: order.OrdersPlaced,
			body: func(i int) []byte {
				return event(map[string]any{"id": fmt.Sprintf("sv-%d", i), "specversion": big, "data": map[string]any{"orderId": payloadMarker}})
			},
			kind: dlq.KindDecode, words: []string{"specversion"}},
		{name: "id of 66 KB", topic: order.OrdersPlaced,
			body: func(i int) []byte {
				return event(map[string]any{"id": fmt.Sprint(i) + big, "data": map[string]any{"note": payloadMarker}})
			},
			kind: dlq.KindEval, words: []string{"no such key: orderId"}},
		{name: "type of 66 KB", topic: "catalogue.events",
			body: func(i int) []byte {
				return event(map[string]any{"id": fmt.Sprintf("ty-%d", i), "type": "big." + big, "data": map[string]any{"note": payloadMarker}})
			},
			kind: dlq.KindEval, words: []string{"no such key: id"}},
		{name: "a number of a million digits echoed into the reason", topic: order.OrdersPlaced,
			body: func(i int) []byte {
				return []byte(`{"specversion":"1.0","id":"num-` + fmt.Sprint(i) + `","source":"s","type":"order.placed","data":{"note":"` +
					payloadMarker + `","orderId":` + strings.Repeat("9", 1_000_000) + `}}`)
			},
			kind: dlq.KindDecode, words: []string{"cannot unmarshal number"}},
		{name: "payload of 1,048,401 bytes", topic: order.OrdersPlaced,
			body: func(i int) []byte { return sized(fmt.Sprintf("near-limit-%d", i), 1_048_401) },
			kind: dlq.KindEval, words: []string{"no such key: orderId"}, truncated: true},
	}
	const copies = 5
	for ri, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			if r.hdr != nil && !kit.repeatsHeaders {
				t.Skip("a Kafka record's repeated header reaches the bridge once (the last wins): nothing to dead-letter")
			}
			for i := range copies {
				if r.hdr != nil {
					kit.publishRaw(t, r.topic, r.hdr(i), r.body(i))
					continue
				}
				msg := message.NewMessage(fmt.Sprintf("dl-%d-%d", ri, i), r.body(i))
				if err := s.client.Publisher().Publish(r.topic, msg); err != nil {
					t.Fatalf("publish: %v", err)
				}
			}
			for i := range copies {
				e := nextDeadLetter(t, dead, 30*time.Second)
				f := e.Failure
				t.Logf("%d: %s, reason %.120q…, truncated %q, original %q", i, f.Kind, f.Reason, e.Header[metaTruncated], e.Header[metaOriginal])
				if f.Kind != r.kind || f.OriginTopic != r.topic {
					t.Errorf("kind %q origin %q, want %q %q", f.Kind, f.OriginTopic, r.kind, r.topic)
				}
				for _, w := range r.words {
					if !strings.Contains(f.Reason, w) {
						t.Errorf("reason %.200q does not say %q", f.Reason, w)
					}
				}
				if len(f.Reason) > 4<<10 || len(f.EventID) > 1<<10 || len(f.EventType) > 1<<10 {
					t.Errorf("reason, id or type not cut: %d, %d, %d bytes", len(f.Reason), len(f.EventID), len(f.EventType))
				}
				truncated := e.Header[metaTruncated] != ""
				if truncated != r.truncated {
					t.Errorf("truncated copy: %v, want %v (%s)", truncated, r.truncated, e.Header[metaTruncated])
				}
				if truncated {
					if !strings.Contains(e.Header[metaTruncated], "not stored") || e.Header[metaOriginal] == "" {
						t.Errorf("the truncated copy does not say what it leaves out and where the original is: %q, %q",
							e.Header[metaTruncated], e.Header[metaOriginal])
					}
				} else if !strings.Contains(string(e.Payload), payloadMarker) {
					t.Errorf("the full copy lost the payload")
				}
			}
			goodOrder(t)
			assertReady(t, s.bridge)
		})
	}
	assertNoPayloadInLogs(t, logs)
}

// TestDeadLetterIdentity: dead letters and the per-message counters are
// keyed by the broker's identity of the message (JetStream stream
// sequence, Kafka partition and offset), not by its payload or a producer
// message id that a producer other than Watermill never sets. Two events
// with the same body (binary CloudEvents, ids in headers) and no message
// id both reach the dead-letter topic; an event first delivered while
// other events of its topic are being retried says it was tried once.
func TestDeadLetterIdentity(t *testing.T) {
	for _, newKit := range []func(*testing.T) dlqKit{
		func(t *testing.T) dlqKit { return natsDLQKit(t, 1<<20) },
		kafkaDLQKit,
	} {
		kit := newKit(t)
		t.Run(kit.name, func(t *testing.T) { deadLetterIdentity(t, kit) })
	}
}

func deadLetterIdentity(t *testing.T, kit dlqKit) {
	cfg := deadLetterConfig(t, kit)
	cfg.Broker.Concurrency = 4
	s := startStack(t, kit.brokerKit, cfg, stackOptions{})
	dead := subscribeDLQ(t, s, cfg.DLQ.Topic)
	binary := func(id, typ string) nats.Header {
		return nats.Header{"ce-specversion": {"1.0"}, "ce-id": {id}, "ce-source": {"id-test"}, "ce-type": {typ},
			"Content-Type": {"application/json"}}
	}
	// Early raises for instances that do not exist: parked, retried
	// until their window ends (5 minutes, longer than the test). Fewer
	// than the topic's concurrency: on Kafka each parked one holds a slot.
	for i := range 2 {
		kit.publishRaw(t, order.PaymentReplies, binary(fmt.Sprintf("early-%d", i), "payment.charged"),
			[]byte(fmt.Sprintf(`{"orderId":"missing-%d"}`, i)))
	}
	time.Sleep(3 * time.Second) // a few retries each
	body := []byte(`{"no":"orderId"}`)
	kit.publishRaw(t, order.PaymentReplies, binary("same-body-1", "payment.charged"), body)
	kit.publishRaw(t, order.PaymentReplies, binary("same-body-2", "payment.charged"), body)
	got := map[string]deadLetter{}
	for len(got) < 2 {
		e := nextDeadLetter(t, dead, 30*time.Second)
		t.Logf("dead letter %s: event %s, attempts %d, original %q", e.ID, e.Failure.EventID, e.Failure.Attempts, e.Header[metaOriginal])
		got[e.Failure.EventID] = e
	}
	a, b := got["same-body-1"], got["same-body-2"]
	if a.ID == "" || b.ID == "" || a.ID == b.ID {
		t.Errorf("dead-letter ids %q and %q: want two, distinct", a.ID, b.ID)
	}
	for _, e := range []deadLetter{a, b} {
		if e.Failure.Attempts != 1 {
			t.Errorf("%s: attempts %d on its first delivery (counted with other messages?)", e.Failure.EventID, e.Failure.Attempts)
		}
		if e.Failure.Kind != dlq.KindEval {
			t.Errorf("%s: kind %q", e.Failure.EventID, e.Failure.Kind)
		}
	}
}

// TestDeadLetterUnstorableStopsTopic: when not even a truncated copy can be
// stored (the dead-letter topic takes only tiny messages), the message is
// not acked, its topic stops, /readyz is not ready and an error is logged
// (once, not the payload); when the topic takes the dead letter again, the
// message is stored and the topic goes on.
func TestDeadLetterUnstorableStopsTopic(t *testing.T) {
	for _, newKit := range []func(*testing.T) dlqKit{
		func(t *testing.T) dlqKit { return natsDLQKit(t, 1<<20) },
		kafkaDLQKit,
	} {
		kit := newKit(t)
		t.Run(kit.name, func(t *testing.T) { deadLetterUnstorable(t, kit) })
	}
}

func deadLetterUnstorable(t *testing.T, kit dlqKit) {
	cfg := deadLetterConfig(t, kit)
	kit.limitTopic(t, cfg.DLQ.Topic, 64)
	core, logs := observer.New(zapcore.DebugLevel)
	s := startStack(t, kit.brokerKit, cfg, stackOptions{participants: true, logger: zap.New(core)})
	dead := subscribeDLQ(t, s, cfg.DLQ.Topic)

	bad := message.NewMessage("unstorable-1", []byte(`{"specversion":"1.0","id":"unstorable-1","source":"s","type":"order.placed","data":{"note":"`+payloadMarker+`"}}`))
	if err := s.client.Publisher().Publish(order.OrdersPlaced, bad); err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 30*time.Second, "/readyz to say the topic stopped", func() bool { return readyErr(s.bridge) != nil })
	t.Logf("not ready: %v", readyErr(s.bridge))
	if !strings.Contains(readyErr(s.bridge).Error(), order.OrdersPlaced) {
		t.Errorf("/readyz does not name the topic: %v", readyErr(s.bridge))
	}
	stuck := simulated.Order{OrderID: "dl-after-stall", Amount: 1, Quantity: 1, SKU: "sku-1"}
	publishOrder(t, s, "evt-"+stuck.OrderID, stuck)
	time.Sleep(3 * time.Second)
	if n := len(s.watcher.Outcomes()["order-"+stuck.OrderID]); n != 0 {
		t.Errorf("an order behind an undead-letterable message ran while the topic was stopped")
	}
	errorsLogged := logs.FilterLevelExact(zapcore.ErrorLevel).FilterMessageSnippet("dead letter cannot be stored").Len()
	if errorsLogged == 0 {
		t.Errorf("nothing logged at error level")
	}

	kit.limitTopic(t, cfg.DLQ.Topic, -1)
	e := nextDeadLetter(t, dead, 60*time.Second)
	if e.Failure.EventID != "unstorable-1" || e.Failure.Kind != dlq.KindEval {
		t.Errorf("dead letter %q kind %q, want unstorable-1 route-eval", e.Failure.EventID, e.Failure.Kind)
	}
	testkit.WaitUntil(t, 60*time.Second, "the order behind it", func() bool { return len(s.watcher.Outcomes()["order-"+stuck.OrderID]) == 1 })
	assertReady(t, s.bridge)
	if n := logs.FilterLevelExact(zapcore.ErrorLevel).FilterMessageSnippet("dead letter cannot be stored").Len(); n > 3 {
		t.Errorf("%d error lines for one stuck message: not rate-limited", n)
	}
	assertNoPayloadInLogs(t, logs)
}

// deadLetter is a dead letter as read back, with all its headers.
type deadLetter struct {
	dlq.Entry
	Header message.Metadata
}

// subscribeDLQ reads the dead-letter topic into a channel.
func subscribeDLQ(t *testing.T, s *stack, topic string) <-chan deadLetter {
	t.Helper()
	msgs, err := s.client.Subscriber().Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan deadLetter, 64)
	go func() {
		for m := range msgs {
			m.Ack()
			e, err := dlq.Parse(m)
			if err != nil {
				t.Errorf("parse dead letter: %v", err)
			}
			out <- deadLetter{Entry: e, Header: m.Metadata}
		}
	}()
	return out
}

func nextDeadLetter(t *testing.T, dead <-chan deadLetter, wait time.Duration) deadLetter {
	t.Helper()
	select {
	case e := <-dead:
		return e
	case <-time.After(wait):
		t.Fatalf("no dead letter within %s", wait)
		return deadLetter{}
	}
}

// readyErr runs the bridge's readiness checks as /readyz does.
func readyErr(b *bridge.Bridge) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range b.ReadyChecks() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func assertReady(t *testing.T, b *bridge.Bridge) {
	t.Helper()
	if err := readyErr(b); err != nil {
		t.Errorf("/readyz not ready: %v", err)
	}
}

func assertNoPayloadInLogs(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	for _, e := range logs.FilterLevelExact(zapcore.InfoLevel).All() {
		checkEntry(t, e)
	}
	for _, lvl := range []zapcore.Level{zapcore.WarnLevel, zapcore.ErrorLevel} {
		for _, e := range logs.FilterLevelExact(lvl).All() {
			checkEntry(t, e)
		}
	}
}

func checkEntry(t *testing.T, e observer.LoggedEntry) {
	t.Helper()
	text := e.Message
	for k, v := range e.ContextMap() {
		text += fmt.Sprintf(" %s=%v", k, v)
	}
	if strings.Contains(text, payloadMarker) {
		t.Errorf("payload text logged at %s: %.300s", e.Level, text)
	}
	if len(text) > 8<<10 {
		t.Errorf("a %d-byte log line at %s: %.200s…", len(text), e.Level, text)
	}
}
