package bridge

import "github.com/nats-io/nats.go"

// BrokerConnAddr is the address the bridge's NATS connection reached ("pipe"
// for an in-process connection; "" on another broker).
func BrokerConnAddr(b *Bridge) string {
	if c, ok := b.broker.(interface{ Conn() *nats.Conn }); ok {
		return c.Conn().ConnectedAddr()
	}
	return ""
}
