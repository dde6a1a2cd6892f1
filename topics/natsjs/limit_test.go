package natsjs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// TestConcurrencyBoundsWorkInFlight: however much a producer publishes,
// the subscriber hands out at most Concurrency messages that are not yet
// settled, so a burst costs the worker Concurrency messages of memory and
// work (plus MaxAckPending on the wire), not the backlog.
func TestConcurrencyBoundsWorkInFlight(t *testing.T) {
	srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	const concurrency, backlog = 3, 200
	ps, err := natsjs.New(natsjs.Config{URL: srv.ClientURL(), ConsumerGroup: "limit-test", Concurrency: concurrency})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ps.Close() })
	for i := range backlog {
		msg := message.NewMessage(fmt.Sprintf("m-%d", i), []byte("{}"))
		msg.Metadata.Set("partition_key", fmt.Sprintf("key-%d", i)) // no ordering holds them back
		if err := ps.Publisher().Publish("limit.test", msg); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ch, err := ps.Subscriber().Subscribe(ctx, "limit.test")
	if err != nil {
		t.Fatal(err)
	}
	var held []*message.Message
	receive := func(wait time.Duration) *message.Message {
		select {
		case m := <-ch:
			return m
		case <-time.After(wait):
			return nil
		}
	}
	for len(held) < concurrency {
		m := receive(10 * time.Second)
		if m == nil {
			t.Fatalf("only %d messages handed out, want %d", len(held), concurrency)
		}
		held = append(held, m)
	}
	if m := receive(500 * time.Millisecond); m != nil {
		t.Fatalf("a message beyond the %d in flight was handed out: %s", concurrency, m.UUID)
	}
	held[0].Ack()
	if m := receive(10 * time.Second); m == nil {
		t.Fatal("settling one message did not free a place")
	} else {
		m.Ack()
	}
	for _, m := range held[1:] {
		m.Ack()
	}
}
