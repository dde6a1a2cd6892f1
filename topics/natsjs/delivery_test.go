package natsjs_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// TestDeliveryContract: every message the subscriber hands out carries
// topics.Delivery: the Keyer's key and what it returned beside it (worked
// out once, handed back on the redelivery after a nack), the time
// JetStream stored the message, and JetStream's delivery count. A message
// that cannot be carried as stored says why, and is not keyed.
func TestDeliveryContract(t *testing.T) {
	srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	var mu sync.Mutex
	var keyed []string
	ps, err := natsjs.New(natsjs.Config{
		URL: srv.ClientURL(), ConsumerGroup: "delivery-test", Concurrency: 2,
		Retry: natsjs.ExponentialBackoff(5*time.Millisecond, 20*time.Millisecond),
		Key: func(topic string, m *message.Message) (string, any) {
			mu.Lock()
			defer mu.Unlock()
			keyed = append(keyed, m.UUID)
			return "instance-" + m.UUID, topic + "/" + string(m.Payload)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ps.Close() })
	before := time.Now().Add(-time.Second)
	if err := ps.Publisher().Publish("delivery.contract", message.NewMessage("m-1", []byte(`{"id":1}`))); err != nil {
		t.Fatal(err)
	}
	// Two values of one header: a Watermill message holds one.
	bad := nats.NewMsg("delivery.contract")
	bad.Header["X-Twice"] = []string{"a", "b"}
	bad.Data = []byte(`{"id":2}`)
	js, err := jetstream.New(ps.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := ps.Subscriber().Subscribe(ctx, "delivery.contract")
	if err != nil {
		t.Fatal(err)
	}
	for good, unreadable := 0, false; good < 2 || !unreadable; {
		var got *message.Message
		select {
		case got = <-ch:
		case <-ctx.Done():
			t.Fatalf("got %d deliveries of m-1 and the unreadable one: %v", good, unreadable)
		}
		d, ok := topics.DeliveryOf(got)
		if !ok {
			t.Fatalf("%s: no topics.Delivery in the message's context", got.UUID)
		}
		if d.StoredAt.Before(before) || d.StoredAt.After(time.Now()) {
			t.Fatalf("%s: stored at %s, not around the publish (%s)", got.UUID, d.StoredAt, before)
		}
		if string(got.Payload) == `{"id":2}` {
			if d.ReadError == "" || d.Key != "" || d.Keyed != nil || d.Count != 1 {
				t.Fatalf("unreadable message: %+v, want a read error, no key, count 1", d)
			}
			unreadable = true
			got.Ack()
			continue
		}
		good++
		if d.Count != good || d.Key != "instance-m-1" || d.Keyed != `delivery.contract/{"id":1}` || d.ReadError != "" {
			t.Fatalf("delivery %d of m-1: %+v, want count %d, key instance-m-1, keyed delivery.contract/{\"id\":1}", good, d, good)
		}
		if good == 1 {
			got.Nack()
		} else {
			got.Ack()
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keyed) != 1 {
		t.Fatalf("the Keyer ran for %v, want once for m-1", keyed)
	}
}
