// Package order is the example saga: an order reserves inventory, charges
// the payment and creates the shipment; when a step fails, the payment is
// refunded and the stock released, in that order.
package order

import (
	"time"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/topics"
)

// Reply event names the steps wait for; raise routes deliver them.
const (
	ReserveInventoryReply = "reserve-inventory.reply"
	ChargePaymentReply    = "charge-payment.reply"
	CreateShipmentReply   = "create-shipment.reply"
)

// Saga is the OrderSaga definition. stepTimeout bounds each wait for a
// participant's reply.
func Saga(stepTimeout time.Duration) sagas.Saga {
	release, refund := ReleaseInventory(), RefundPayment()
	return sagas.Saga{
		Name: "OrderSaga",
		Steps: []sagas.Step{
			{
				Name:         "reserve-inventory",
				Command:      topics.CommandSpec{Topic: InventoryCommands, Type: "inventory.reserve", ReplyEvent: ReserveInventoryReply},
				Timeout:      stepTimeout,
				MaxAttempts:  3,
				Compensation: &release,
			},
			{
				Name:         "charge-payment",
				Command:      topics.CommandSpec{Topic: PaymentCommands, Type: "payment.charge", ReplyEvent: ChargePaymentReply},
				Timeout:      stepTimeout,
				MaxAttempts:  3,
				Compensation: &refund,
			},
			{
				Name:        "create-shipment",
				Command:     topics.CommandSpec{Topic: ShippingCommands, Type: "shipping.create", ReplyEvent: CreateShipmentReply},
				Timeout:     stepTimeout,
				MaxAttempts: 3,
			},
		},
	}
}

// DefaultStepTimeout is how long a step waits for a reply before resending.
const DefaultStepTimeout = 30 * time.Second

// OrderSaga is the saga as a workflow function, for the tests that run it
// without a registry; Register registers the same saga as "OrderSaga".
func OrderSaga(ctx *workflow.WorkflowContext) (any, error) {
	return sagas.Run(ctx, Saga(DefaultStepTimeout))
}
