package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/topics/kafka"
)

// Hooks for the admin server and the operations commands: what they need
// to know about a running bridge without reaching into its fields.

// Check is one readiness condition; Run returns nil when it holds.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// ReadyChecks are the conditions under which the worker does its job: the
// broker connection is up, the engine answers, and routes are loaded and
// consumed.
func (b *Bridge) ReadyChecks() []Check {
	return []Check{
		{Name: "broker", Run: b.checkBroker},
		{Name: "engine", Run: func(ctx context.Context) error {
			if b.engine == nil {
				return errors.New("engine not started")
			}
			return b.engine.Ping(ctx)
		}},
		// A topic stopped because its dead letters cannot be stored.
		{Name: "deadLetters", Run: func(context.Context) error {
			if b.handler == nil {
				return nil
			}
			return b.handler.stalls.err(time.Now())
		}},
		{Name: "routes", Run: func(context.Context) error {
			if b.router == nil || len(b.router.Topics()) == 0 {
				return errors.New("no routes loaded")
			}
			if !b.consuming.Load() {
				return errors.New("not consuming yet: subscribing to the routed topics")
			}
			return nil
		}},
	}
}

func (b *Bridge) checkBroker(ctx context.Context) error {
	switch br := b.broker.(type) {
	case nil:
		return errors.New("broker not connected")
	case interface{ ConnectError() error }:
		return br.ConnectError()
	case interface{ Conn() *nats.Conn }:
		if st := br.Conn().Status(); st != nats.CONNECTED {
			return fmt.Errorf("nats connection is %s", st)
		}
		return nil
	case interface{ Ping(context.Context) error }:
		return br.Ping(ctx)
	default:
		// A broker that cannot tell is taken to be up.
		return nil
	}
}

// BrokerURL is where clients reach the broker: the in-process server's
// address when the bridge runs an embedded one, else the configured URL
// ("" for a broker passed in Options that the config does not describe).
func (b *Bridge) BrokerURL() string {
	if b.natsServer != nil {
		return b.natsServer.ClientURL()
	}
	if b.ownsBroker && b.cfg.Broker.Kind == "nats" {
		return b.cfg.Broker.NATS.URL
	}
	return ""
}

// KafkaConnection is how tools reach a Kafka broker config's cluster
// (TLS, SASL; a password named by passwordEnv read from the environment).
func KafkaConnection(c config.Kafka) kafka.Connection { return kafkaConnection(c) }

// NATSOptions are the connection options (credentials, TLS, name) of a
// NATS broker config, for tools that connect on their own. Secrets are
// read from their files.
func NATSOptions(c config.NATS) ([]nats.Option, error) { return natsOptions(c) }
