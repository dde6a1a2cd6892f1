package kafka_test

import (
	"context"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/sagabridge/sagabridge/topics/kafka"
)

// readRaw reads n records of one partition with a plain kafka-go reader, to
// see exactly what the publisher wrote.
func readRaw(t *testing.T, brokers []string, topic string, partition, n int) []kafkago.Message {
	t.Helper()
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: brokers, Topic: topic, Partition: partition, MaxWait: 100 * time.Millisecond,
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []kafkago.Message
	for len(out) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("raw read: %v", err)
		}
		out = append(out, m)
	}
	return out
}

func receiveN(t *testing.T, ch <-chan *message.Message, n int) []*message.Message {
	t.Helper()
	var out []*message.Message
	timeout := time.After(15 * time.Second)
	for len(out) < n {
		select {
		case m := <-ch:
			m.Ack()
			out = append(out, m)
		case <-timeout:
			t.Fatalf("received %d of %d messages", len(out), n)
		}
	}
	return out
}

func headerMap(hs []kafkago.Header) map[string]string {
	m := map[string]string{}
	for _, h := range hs {
		m[h.Key] = string(h.Value)
	}
	return m
}

func TestMetadataHeadersRoundTripIncludingCloudEvents(t *testing.T) {
	brokers := startCluster(t)
	pub := newPublisher(t, testPublisherConfig(brokers), nil)
	const topic = "headers"

	sent := message.NewMessage("4f1c7a0e-0000-4000-8000-000000000001", []byte(`{"order":42}`))
	sent.Metadata = message.Metadata{
		"ce_specversion":     "1.0",
		"ce_id":              "evt-1",
		"ce_type":            "com.example.order.placed",
		"ce_source":          "/orders",
		"ce_subject":         "order-42",
		"ce_time":            "2026-01-02T03:04:05Z",
		"ce_traceparent":     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"content-type":       "application/json",
		"partition_key":      "order-42",
		"binary\x00key":      "\x00\xff raw bytes",
		"empty":              "",
		kafka.MetadataOffset: "999", // from an earlier consume: must not be echoed
		kafka.MetadataTopic:  "elsewhere",
	}
	keyless := message.NewMessage("4f1c7a0e-0000-4000-8000-000000000002", []byte("no key"))
	keyless.Metadata.Set("ce_id", "evt-2")
	if err := pub.Publish(topic, sent, keyless); err != nil {
		t.Fatal(err)
	}

	raw := readRaw(t, brokers, topic, 0, 2)
	if string(raw[0].Key) != "order-42" {
		t.Errorf("record key = %q, want the partition_key metadata", raw[0].Key)
	}
	if raw[1].Key != nil {
		t.Errorf("record key = %q, want nil without partition_key", raw[1].Key)
	}
	h := headerMap(raw[0].Headers)
	if h[kafka.HeaderUUID] != sent.UUID {
		t.Errorf("uuid header = %q", h[kafka.HeaderUUID])
	}
	for k, v := range sent.Metadata {
		stripped := k == kafka.MetadataOffset || k == kafka.MetadataTopic
		got, ok := h[k]
		switch {
		case stripped && ok:
			t.Errorf("consumer-side key %q was echoed as a header", k)
		case !stripped && (!ok || got != v):
			t.Errorf("header %q = %q (present %t), want %q", k, got, ok, v)
		}
	}
	if len(raw[0].Headers) != len(sent.Metadata)-2+1 {
		t.Errorf("got %d headers, want metadata minus 2 stripped plus the uuid: %v", len(raw[0].Headers), h)
	}

	sub := newSubscriber(t, fastSubscriberConfig(brokers, "headers-group"), nil)
	ch, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	got := receiveN(t, ch, 2)
	if got[0].UUID != sent.UUID || string(got[0].Payload) != string(sent.Payload) {
		t.Fatalf("got %s %q", got[0].UUID, got[0].Payload)
	}
	want := message.Metadata{}
	for k, v := range sent.Metadata {
		want[k] = v
	}
	want[kafka.MetadataTopic] = topic
	want[kafka.MetadataPartition] = "0"
	want[kafka.MetadataOffset] = "0"
	want[kafka.MetadataTimestamp] = got[0].Metadata.Get(kafka.MetadataTimestamp)
	if _, err := time.Parse(time.RFC3339Nano, want[kafka.MetadataTimestamp]); err != nil {
		t.Errorf("timestamp metadata: %v", err)
	}
	if !reflect.DeepEqual(map[string]string(got[0].Metadata), map[string]string(want)) {
		t.Errorf("metadata after the round trip:\n got %v\nwant %v", got[0].Metadata, want)
	}
	if _, ok := got[0].Metadata[kafka.HeaderUUID]; ok {
		t.Error("uuid header leaked into metadata")
	}
	if got[1].Metadata.Get(kafka.MetadataOffset) != "1" || got[1].Metadata.Get("partition_key") != "" {
		t.Errorf("second message metadata %v", got[1].Metadata)
	}
}

func TestForeignRecordsGetStableUUIDAndKeyMetadata(t *testing.T) {
	brokers := startCluster(t)
	const topic = "foreign"
	// A legacy producer: plain kafka-go writer, no Watermill UUID header.
	w := &kafkago.Writer{
		Addr: kafkago.TCP(brokers...), Topic: topic, AllowAutoTopicCreation: true,
		BatchTimeout: time.Millisecond, RequiredAcks: kafkago.RequireAll,
	}
	defer w.Close()
	sub := newSubscriber(t, fastSubscriberConfig(brokers, "foreign-group"), nil)
	if err := sub.SubscribeInitialize(topic); err != nil {
		t.Fatal(err)
	}
	err := w.WriteMessages(context.Background(),
		kafkago.Message{Key: []byte("cust-7"), Value: []byte("a"), Headers: []kafkago.Header{{Key: "ce_id", Value: []byte("x1")}}},
		kafkago.Message{Key: []byte("cust-8"), Value: []byte("b"), Headers: []kafkago.Header{{Key: "partition_key", Value: []byte("from-header")}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	got := receiveN(t, ch, 2)
	for i, m := range got {
		if want := topic + "-0-" + strconv.Itoa(i); m.UUID != want {
			t.Errorf("uuid = %q, want %q", m.UUID, want)
		}
	}
	if got[0].Metadata.Get("partition_key") != "cust-7" || got[0].Metadata.Get("ce_id") != "x1" {
		t.Errorf("metadata %v: want the record key copied into partition_key", got[0].Metadata)
	}
	if got[1].Metadata.Get("partition_key") != "from-header" {
		t.Errorf("metadata %v: a header must win over the record key", got[1].Metadata)
	}
}

func TestSameKeySamePartition(t *testing.T) {
	brokers := startCluster(t)
	cfg := testPublisherConfig(brokers)
	cfg.TopicPartitions = 8
	cfg.KeyMetadataField = "ce_subject"
	pub := newPublisher(t, cfg, nil)
	const topic = "keyed"
	for i := 0; i < 20; i++ {
		m := message.NewMessage(strconv.Itoa(i), []byte("x"))
		m.Metadata.Set("ce_subject", "order-42")
		if err := pub.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
	sub := newSubscriber(t, fastSubscriberConfig(brokers, "keyed-group"), nil)
	ch, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]int{}
	for i, m := range receiveN(t, ch, 20) {
		parts[m.Metadata.Get(kafka.MetadataPartition)]++
		if m.UUID != strconv.Itoa(i) {
			t.Errorf("message %d is %s: one key, one partition, so order must hold", i, m.UUID)
		}
	}
	if len(parts) != 1 {
		t.Fatalf("one key spread over partitions %v", parts)
	}
}
