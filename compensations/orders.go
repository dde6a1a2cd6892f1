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
