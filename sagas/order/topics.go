package order

// The OrderSaga's topics: where orders are placed and where its
// participants take commands and reply. The worker config (bridge.yaml)
// routes them; these are what `sagabridge dev` and the examples use.
const (
	OrdersPlaced = "orders.placed"

	InventoryCommands = "inventory.commands"
	InventoryReplies  = "inventory.replies"
	PaymentCommands   = "payment.commands"
	PaymentReplies    = "payment.replies"
	ShippingCommands  = "shipping.commands"
	ShippingReplies   = "shipping.replies"
)
