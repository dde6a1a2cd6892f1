package bridge

import (
	"context"
	"errors"
	"time"
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

// healthReporter is a broker that can tell whether it is reachable.
type healthReporter interface {
	Healthy(ctx context.Context) error
}

func (b *Bridge) checkBroker(ctx context.Context) error {
	switch br := b.broker.(type) {
	case nil:
		return errors.New("broker not connected")
	case healthReporter:
		return br.Healthy(ctx)
	default:
		// A broker that cannot tell is taken to be up.
		return nil
	}
}

// BrokerURL is where clients reach the broker the bridge connected (the
// in-process server's address when it runs an embedded one); "" when the
// broker does not say or was passed in Options.
func (b *Bridge) BrokerURL() string {
	if u, ok := b.broker.(interface{ URL() string }); ok && b.ownsBroker {
		return u.URL()
	}
	return ""
}
