package topics

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Delivery is what a subscriber tells its handler about one delivery of a
// message, the same on every broker: the handler reads this, never a
// broker's own metadata keys. It travels in the message's context.
type Delivery struct {
	// Count is how many times the message has been delivered, this
	// delivery included; 0 when the broker does not say.
	Count int
	// StoredAt is when the broker stored the message; zero when it does
	// not say.
	StoredAt time.Time
	// Key is the ordering key the subscriber dispatched the message by:
	// messages with the same key are handled one at a time, in order. ""
	// means unordered.
	Key string
	// Keyed is what the subscriber's Keyer returned beside the key, handed
	// back with every delivery of the message so that the handler need not
	// work it out again; nil without a Keyer.
	Keyed any
	// ReadError says the subscriber could not carry the message as it was
	// stored (a header with several values, say): the handler dead-letters
	// it instead of acting on what is left. The Keyer is not asked then.
	ReadError string
}

// Keyer works out a message's ordering key before the subscriber
// dispatches it (topic is where the message was read). Whatever else it
// learned on the way comes back as Delivery.Keyed.
type Keyer func(topic string, msg *message.Message) (key string, keyed any)

type deliveryKey struct{}

// WithDelivery is ctx carrying d; subscribers set it as the context of the
// message they hand out.
func WithDelivery(ctx context.Context, d Delivery) context.Context {
	return context.WithValue(ctx, deliveryKey{}, d)
}

// DeliveryOf is what the subscriber said about msg's delivery; false when
// it said nothing (a subscriber that does not know the contract).
func DeliveryOf(msg *message.Message) (Delivery, bool) {
	d, ok := msg.Context().Value(deliveryKey{}).(Delivery)
	return d, ok
}
