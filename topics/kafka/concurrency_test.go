package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/topics/kafka"
)

// TestConcurrencyKeepsEachKeyInOrderOnABroker publishes 20 keys × 10
// messages to a one-partition topic on kfake and consumes them with
// Concurrency 8 through slow handlers: messages of different keys overlap,
// each key arrives in publish order with never two of it at once, and a
// second subscriber of the group afterwards finds everything committed.
func TestConcurrencyKeepsEachKeyInOrderOnABroker(t *testing.T) {
	const keys, perKey, concurrency = 20, 10, 8
	brokers := startCluster(t)
	topic := "concurrency-" + watermill.NewShortUUID()
	pub := newPublisher(t, testPublisherConfig(brokers), nil)
	for i := range perKey {
		for k := range keys {
			m := message.NewMessage(fmt.Sprintf("k%02d-%02d", k, i), []byte(fmt.Sprint(i)))
			m.Metadata.Set(kafka.DefaultKeyMetadataField, fmt.Sprintf("k%02d", k))
			if err := pub.Publish(topic, m); err != nil {
				t.Fatal(err)
			}
		}
	}

	cfg := fastSubscriberConfig(brokers, "g-"+topic)
	cfg.Concurrency = concurrency
	sub := newSubscriber(t, cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		next     = map[string]int{} // key → the index it must deliver next
		inFlight = map[string]bool{}
		cur, top atomic.Int32
		wg       sync.WaitGroup
	)
	for range keys * perKey {
		var m *message.Message
		select {
		case m = <-msgs:
		case <-time.After(30 * time.Second):
			t.Fatalf("no message after 30s; %d in flight", cur.Load())
		}
		key := m.Metadata.Get(kafka.DefaultKeyMetadataField)
		mu.Lock()
		if inFlight[key] {
			t.Errorf("%s: two messages of the key in flight at once", m.UUID)
		}
		inFlight[key] = true
		var i int
		fmt.Sscan(string(m.Payload), &i)
		if i != next[key] {
			t.Errorf("%s: message %d of its key, want %d", key, i, next[key])
		}
		next[key] = i + 1
		mu.Unlock()
		n := cur.Add(1)
		for old := top.Load(); n > old && !top.CompareAndSwap(old, n); old = top.Load() {
		}
		wg.Add(1)
		go func() { // a handler that takes a while, as an engine call does
			defer wg.Done()
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
			inFlight[key] = false
			mu.Unlock()
			cur.Add(-1)
			m.Ack()
		}()
	}
	wg.Wait()
	if got := top.Load(); got < 2 || got > concurrency {
		t.Fatalf("at most %d messages were in flight at once, want 2..%d", got, concurrency)
	}
	t.Logf("up to %d messages in flight at once", top.Load())
	cancel()
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}

	// Everything was acked, so the group resumes after the last message:
	// the first it gets is one published now.
	sentinel := message.NewMessage("sentinel", []byte("last"))
	if err := pub.Publish(topic, sentinel); err != nil {
		t.Fatal(err)
	}
	again := newSubscriber(t, cfg, nil)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	rest, err := again.Subscribe(ctx2, topic)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-rest:
		if m.UUID != "sentinel" {
			t.Fatalf("%s redelivered after every message was acked", m.UUID)
		}
		m.Ack()
	case <-ctx2.Done():
		t.Fatal("the group did not resume within 30s")
	}
}
