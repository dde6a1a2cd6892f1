package compensations

import (
	"time"

	"github.com/sagabridge/sagabridge/topics"
)

// Reply event names the OrderSaga's compensations wait for.
const (
	ReleaseInventoryReply = "release-inventory.reply"
	RefundPaymentReply    = "refund-payment.reply"
)

// undoBackoff spaces the attempts of a refused compensation: 1s, 2s, 4s, 8s.
func undoBackoff() Backoff {
	return Backoff{Initial: time.Second, Max: 30 * time.Second, Multiplier: 2}
}

// ReleaseInventory gives back the stock a reservation held.
func ReleaseInventory() Compensation {
	return Compensation{
		Name: "release-inventory",
		Command: topics.CommandSpec{
			Topic:      topics.InventoryCommands,
			Type:       "inventory.release",
			ReplyEvent: ReleaseInventoryReply,
		},
		Timeout:     10 * time.Second,
		MaxAttempts: 5,
		Backoff:     undoBackoff(),
	}
}

// RefundPayment returns a charge.
func RefundPayment() Compensation {
	return Compensation{
		Name: "refund-payment",
		Command: topics.CommandSpec{
			Topic:      topics.PaymentCommands,
			Type:       "payment.refund",
			ReplyEvent: RefundPaymentReply,
		},
		Timeout:     10 * time.Second,
		MaxAttempts: 5,
		Backoff:     undoBackoff(),
	}
}

// Orders is the registry of the OrderSaga's compensations.
func Orders() *Registry {
	r, err := NewRegistry(ReleaseInventory(), RefundPayment())
	if err != nil {
		panic(err) // the definitions above are constants; a test covers them
	}
	return r
}
