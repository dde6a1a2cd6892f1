package order

import (
	"time"

	"github.com/sagabridge/sagabridge/compensations"
	"github.com/sagabridge/sagabridge/topics"
)

// Reply event names the OrderSaga's compensations wait for.
const (
	ReleaseInventoryReply = "release-inventory.reply"
	RefundPaymentReply    = "refund-payment.reply"
)

// undoBackoff spaces the attempts of a refused compensation: 1s, 2s, 4s, 8s.
func undoBackoff() compensations.Backoff {
	return compensations.Backoff{Initial: time.Second, Max: 30 * time.Second, Multiplier: 2}
}

// ReleaseInventory gives back the stock a reservation held.
func ReleaseInventory() compensations.Compensation {
	return compensations.Compensation{
		Name: "release-inventory",
		Command: topics.CommandSpec{
			Topic:      InventoryCommands,
			Type:       "inventory.release",
			ReplyEvent: ReleaseInventoryReply,
		},
		Timeout:     10 * time.Second,
		MaxAttempts: 5,
		Backoff:     undoBackoff(),
	}
}

// RefundPayment returns a charge.
func RefundPayment() compensations.Compensation {
	return compensations.Compensation{
		Name: "refund-payment",
		Command: topics.CommandSpec{
			Topic:      PaymentCommands,
			Type:       "payment.refund",
			ReplyEvent: RefundPaymentReply,
		},
		Timeout:     10 * time.Second,
		MaxAttempts: 5,
		Backoff:     undoBackoff(),
	}
}

// Compensations is the registry of the OrderSaga's compensations, the
// names order.yaml refers to.
func Compensations() *compensations.Registry {
	r, err := compensations.NewRegistry(ReleaseInventory(), RefundPayment())
	if err != nil {
		panic(err) // the definitions above are constants; a test covers them
	}
	return r
}
