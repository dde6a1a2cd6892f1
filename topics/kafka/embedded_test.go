package kafka_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/topics/kafka"
)

// TestEmbeddedRestartKeepsRecordsAndPingFollows stops an embedded broker
// with a data directory and starts it again on the same port: the records
// written before are still there, and Ping tells a dead broker from a live
// one (the worker's /readyz relies on it).
func TestEmbeddedRestartKeepsRecordsAndPingFollows(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cfg := kafka.EmbeddedConfig{Port: port, DataDir: t.TempDir()}
	k, err := kafka.StartEmbeddedWith(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { k.Close() }()
	ps, err := kafka.NewGroupClient(k.Brokers(), "restart-test")
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ps.Ping(ctx); err != nil {
		t.Fatalf("ping a live broker: %v", err)
	}
	if err := ps.Publisher().Publish("restart.topic", message.NewMessage("m1", []byte("before"))); err != nil {
		t.Fatal(err)
	}

	k.Close()
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	err = ps.Ping(pctx)
	pcancel()
	if err == nil {
		t.Fatal("ping answered with the broker stopped")
	}
	if k, err = kafka.StartEmbeddedWith(cfg); err != nil {
		t.Fatalf("restart on port %d: %v", port, err)
	}
	if err := ps.Ping(ctx); err != nil {
		t.Fatalf("ping after the restart: %v", err)
	}
	msgs, err := ps.Subscriber().Subscribe(ctx, "restart.topic")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		if string(m.Payload) != "before" {
			t.Errorf("got %q, want the record written before the restart", m.Payload)
		}
		m.Ack()
	case <-ctx.Done():
		t.Fatal("the record written before the restart is gone")
	}
}
