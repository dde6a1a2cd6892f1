package order_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/sagas/order"
)

// TestCompensations checks the registry order.yaml resolves its
// compensation names in: both names, each valid, retried five times with
// a backoff from 1s.
func TestCompensations(t *testing.T) {
	r := order.Compensations()
	if got := strings.Join(r.Names(), ","); got != "refund-payment,release-inventory" {
		t.Fatalf("names %s", got)
	}
	for _, name := range r.Names() {
		c, _ := r.Get(name)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if c.Attempts() != 5 || c.Backoff.Delay(1) != time.Second {
			t.Errorf("%s %+v", name, c)
		}
	}
	if c, _ := r.Get("release-inventory"); c.Command.Topic != order.InventoryCommands || c.Command.ReplyEvent != order.ReleaseInventoryReply {
		t.Errorf("release-inventory %+v", c.Command)
	}
	if c, _ := r.Get("refund-payment"); c.Command.Topic != order.PaymentCommands || c.Command.ReplyEvent != order.RefundPaymentReply {
		t.Errorf("refund-payment %+v", c.Command)
	}
}
