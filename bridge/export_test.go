package bridge

import (
	"time"

	"github.com/nats-io/nats.go"
)

// BrokerConnAddr is the address the bridge's NATS connection reached ("pipe"
// for an in-process connection; "" on another broker).
func BrokerConnAddr(b *Bridge) string {
	if c, ok := b.broker.(interface{ Conn() *nats.Conn }); ok {
		return c.Conn().ConnectedAddr()
	}
	return ""
}

// NewRepeatLimiter exposes the limiter of repeated connection errors.
func NewRepeatLimiter(every time.Duration, now func() time.Time) interface {
	Allow(kind string) (bool, int)
} {
	return limiterAdapter{newRepeatLimiter(every, now)}
}

type limiterAdapter struct{ l *repeatLimiter }

func (a limiterAdapter) Allow(kind string) (bool, int) { return a.l.allow(kind) }
