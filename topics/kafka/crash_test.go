package kafka_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/sagabridge/sagabridge/topics/kafka"
)

// TestStopConsumerMidBatch stops a consumer (Close, or cancelling the
// Subscribe context) while it has acked some messages, nacked others and
// holds one unacked in flight. Then it checks, against the broker, that the
// group's committed offsets are exactly the acked prefix of every partition,
// and that a new subscriber in the same group receives every message that
// was not acked-and-committed, the in-flight one included, and none that
// was: nothing lost, nothing committed before it was acked, nothing
// committed redelivered.
func TestStopConsumerMidBatch(t *testing.T) {
	for _, how := range []string{"close", "cancel"} {
		t.Run(how, func(t *testing.T) { testStopMidBatch(t, how) })
	}
}

type pos struct {
	partition int
	offset    int64
}

func msgPos(t *testing.T, m *message.Message) pos {
	t.Helper()
	p, err1 := strconv.Atoi(m.Metadata.Get(kafka.MetadataPartition))
	o, err2 := strconv.ParseInt(m.Metadata.Get(kafka.MetadataOffset), 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("bad position metadata %v", m.Metadata)
	}
	return pos{p, o}
}

func testStopMidBatch(t *testing.T, how string) {
	const (
		total      = 300
		partitions = 3
		ackBefore  = 120
		group      = "crash-group"
		topic      = "crash"
	)
	brokers := startCluster(t)
	pcfg := testPublisherConfig(brokers)
	pcfg.TopicPartitions = partitions
	pub := newPublisher(t, pcfg, nil)
	batch := make([]*message.Message, 0, total)
	for i := 0; i < total; i++ {
		m := message.NewMessage(fmt.Sprintf("m%03d", i), []byte("x"))
		m.Metadata.Set(kafka.DefaultKeyMetadataField, "k"+strconv.Itoa(i%17))
		batch = append(batch, m)
	}
	if err := pub.Publish(topic, batch...); err != nil {
		t.Fatal(err)
	}

	// Consumer A: ack, nack every fifth delivery, stop with one in flight.
	cfgA := fastSubscriberConfig(brokers, group)
	cfgA.TopicPartitions = partitions
	cfgA.CloseTimeout = 300 * time.Millisecond
	subA, err := kafka.NewSubscriber(cfgA, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	chA, err := subA.Subscribe(ctxA, topic)
	if err != nil {
		t.Fatal(err)
	}
	acked := map[string]pos{}
	var inFlight *message.Message
	for deliveries := 0; inFlight == nil; deliveries++ {
		var m *message.Message
		select {
		case m = <-chA:
		case <-time.After(15 * time.Second):
			t.Fatalf("consumer A starved after %d acks", len(acked))
		}
		switch {
		case len(acked) == ackBefore:
			inFlight = m
		case deliveries%5 == 2:
			m.Nack()
		default:
			if _, dup := acked[m.UUID]; dup {
				t.Fatalf("%s redelivered after its ack within one subscription", m.UUID)
			}
			acked[m.UUID] = msgPos(t, m)
			m.Ack()
		}
	}
	inFlightPos := msgPos(t, inFlight)

	switch how {
	case "close":
		if err := subA.Close(); err != nil {
			t.Fatal(err)
		}
	case "cancel":
		cancelA()
	}
	for m := range chA { // must close; nothing more may be delivered unasked
		t.Fatalf("delivered %s after shutdown began", m.UUID)
	}
	select {
	case <-inFlight.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight message context not cancelled")
	}
	_ = subA.Close()

	// The broker holds exactly the acked prefix of each partition.
	wantCommitted := map[int]int64{}
	for _, p := range acked {
		if p.offset+1 > wantCommitted[p.partition] {
			wantCommitted[p.partition] = p.offset + 1
		}
	}
	if wantCommitted[inFlightPos.partition] != inFlightPos.offset {
		t.Fatalf("acked offsets of partition %d end at %d, but the unacked in-flight message is at %d",
			inFlightPos.partition, wantCommitted[inFlightPos.partition], inFlightPos.offset)
	}
	gotCommitted := committedOffsets(t, brokers, group, topic, partitions)
	for p := 0; p < partitions; p++ {
		want, ok := wantCommitted[p]
		if !ok {
			want = -1
		}
		if gotCommitted[p] != want {
			t.Errorf("partition %d: committed %d, want %d (end of the acked prefix)", p, gotCommitted[p], want)
		}
	}

	// Consumer B in the same group picks up the rest.
	subB := newSubscriber(t, cfgA, nil)
	chB, err := subB.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	seenB := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for len(seenB)+len(acked) < total {
		select {
		case m := <-chB:
			if _, ok := acked[m.UUID]; ok {
				t.Fatalf("%s was acked and committed by A but redelivered to B", m.UUID)
			}
			seenB[m.UUID] = true
			m.Ack()
		case <-deadline:
			t.Fatalf("lost messages: A acked %d, B got %d, of %d", len(acked), len(seenB), total)
		}
	}
	if !seenB[inFlight.UUID] {
		t.Fatalf("the unacked in-flight message %s was not redelivered", inFlight.UUID)
	}
	for i := 0; i < total; i++ {
		id := fmt.Sprintf("m%03d", i)
		if _, ok := acked[id]; !ok && !seenB[id] {
			t.Fatalf("message %s never received", id)
		}
	}
}

// committedOffsets asks the broker for the group's committed offsets (-1 =
// none).
func committedOffsets(t *testing.T, brokers []string, group, topic string, partitions int) map[int]int64 {
	t.Helper()
	ids := make([]int, partitions)
	for i := range ids {
		ids[i] = i
	}
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second}
	resp, err := c.OffsetFetch(context.Background(), &kafkago.OffsetFetchRequest{
		GroupID: group, Topics: map[string][]int{topic: ids},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("offset fetch partition %d: %v", p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out
}
