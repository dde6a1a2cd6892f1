package natsjs_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/nats-io/nats.go"

	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// TestUniversalPubSub runs Watermill's conformance suite against the
// JetStream configuration the bridge uses, on a real nats-server.
func TestUniversalPubSub(t *testing.T) {
	srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)

	for _, c := range []struct {
		name        string
		concurrency int
		inProcess   bool
		features    tests.Features
	}{
		// The bridge's setting: many in flight, ordered only per key, and the
		// suite's messages carry no key.
		{"concurrent", 16, false, tests.Features{
			ConsumerGroups: true,
			Persistent:     true,
		}},
		// The same through the in-memory pipe of a client in the server's
		// process (broker kind embedded, dev, the benchmark).
		{"concurrent-in-process", 16, true, tests.Features{
			ConsumerGroups: true,
			Persistent:     true,
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			newPubSub := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
				var opts []nats.Option
				if c.inProcess {
					opts = append(opts, srv.InProcess())
				}
				ps, err := natsjs.New(natsjs.Config{
					URL:           srv.ClientURL(),
					Options:       opts,
					ConsumerGroup: group,
					Concurrency:   c.concurrency,
					AckWait:       5 * time.Second,
					Retry:         natsjs.ExponentialBackoff(10*time.Millisecond, 100*time.Millisecond),
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = ps.Close() })
				return ps.Publisher(), ps.Subscriber()
			}
			// Without a named group the bridge still uses one (its default):
			// every subscriber of a run shares it, so several subscribers on a
			// topic split its messages, as the bridge's replicas do. Each
			// suite test has a topic of its own.
			group := "conformance" + watermill.NewShortUUID()
			tests.TestPubSub(t, c.features,
				func(t *testing.T) (message.Publisher, message.Subscriber) { return newPubSub(t, group) },
				newPubSub,
			)
		})
	}
}

// TestUnreachableServerNamed: with nothing listening, errors say so ("connection
// refused" to the URL), not only that a request timed out.
func TestUnreachableServerNamed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + l.Addr().String()
	_ = l.Close()

	_, err = natsjs.New(natsjs.Config{URL: url, FailFast: true})
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), url) {
		t.Errorf("fail-fast connect: %v", err)
	}

	ps, err := natsjs.New(natsjs.Config{URL: url})
	if err != nil {
		t.Fatalf("retrying connect: %v", err)
	}
	defer ps.Close()
	err = ps.EnsureStream("orders.placed")
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), url) {
		t.Errorf("stream lookup while unreachable: %v", err)
	}
	if err := ps.ConnectError(); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("ConnectError: %v", err)
	}
}
