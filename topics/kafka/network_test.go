package kafka_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/sagabridge/sagabridge/topics/kafka"
)

// TestNetworkOverridesAreUsed checks that caller-supplied kafka-go dial
// objects carry all traffic: the Transport for the publisher and admin
// calls, the Dialer for the subscriber's reader.
func TestNetworkOverridesAreUsed(t *testing.T) {
	brokers := startCluster(t)
	var transportDials, dialerDials atomic.Int64
	d := &net.Dialer{Timeout: 5 * time.Second}
	transport := &kafkago.Transport{
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			transportDials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
	}
	dialer := &kafkago.Dialer{
		Timeout: 5 * time.Second,
		DialFunc: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialerDials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
	}
	nw := kafka.Network{Dialer: dialer, Transport: transport}

	pub, err := kafka.NewPublisherWithNetwork(testPublisherConfig(brokers), nil, nw)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, err := kafka.NewSubscriberWithNetwork(fastSubscriberConfig(brokers, "net-group"), nil, nw)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	if err := pub.Publish("net", message.NewMessage("n1", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	ch, err := sub.Subscribe(context.Background(), "net")
	if err != nil {
		t.Fatal(err)
	}
	receiveN(t, ch, 1)
	if transportDials.Load() == 0 || dialerDials.Load() == 0 {
		t.Fatalf("transport dials %d, dialer dials %d: an override was bypassed",
			transportDials.Load(), dialerDials.Load())
	}
}
