// Package legacy plays the order flow as a choreography, the way it ran
// before any saga: inventory, payment and shipping react to each other's
// domain events, and undo their work when a later service reports a
// failure. The migration tests and `sagabridge dev --legacy` run it beside
// a saga in shadow or canary mode.
//
//	order.placed ─▶ inventory.reserved ─▶ payment.charged ─▶ shipping.created
//	                                     payment.declined ─▶ inventory.released
//	                                     shipping.refused ─▶ payment.refunded ─▶ inventory.released
package legacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics"
)

// Topics the services publish their domain events on.
const (
	InventoryEvents = "inventory.events"
	PaymentEvents   = "payment.events"
	ShippingEvents  = "shipping.events"
)

// Event types of the legacy flow.
const (
	InventoryReserved = "inventory.reserved"
	InventoryReleased = "inventory.released"
	PaymentCharged    = "payment.charged"
	PaymentDeclined   = "payment.declined"
	PaymentRefunded   = "payment.refunded"
	ShippingCreated   = "shipping.created"
	ShippingRefused   = "shipping.refused"
)

// Event is the data of every legacy event.
type Event struct {
	OrderID string `json:"orderId"`
}

// Config tunes the choreography.
type Config struct {
	// OrdersTopic is where the inventory service takes new orders from:
	// the orders topic itself, or the bridge's hand-off topic once a saga
	// drives a share of the orders.
	OrdersTopic string
	// SkipRelease makes the inventory service forget to release stock when
	// an order fails: the fault a shadow saga must notice.
	SkipRelease bool
	// Delay is how long each service works before it publishes.
	Delay time.Duration
}

// Choreography is the three legacy services.
type Choreography struct {
	cfg    Config
	pub    message.Publisher
	sub    message.Subscriber
	log    *zap.Logger
	mu     sync.Mutex
	seen   map[string]bool // event ids handled, per service
	ledger Ledger
}

// Ledger is what the services hold per order.
type Ledger struct {
	Reserved, Charged, Shipped map[string]bool
	// Orders counts the orders the inventory service took.
	Orders int
}

// New builds the services; sub must use its own consumer group.
func New(cfg Config, pub message.Publisher, sub message.Subscriber, log *zap.Logger) (*Choreography, error) {
	if cfg.OrdersTopic == "" {
		return nil, errors.New("legacy: OrdersTopic is required")
	}
	if pub == nil || sub == nil {
		return nil, errors.New("legacy: publisher and subscriber are required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Choreography{cfg: cfg, pub: pub, sub: sub, log: log, seen: map[string]bool{},
		ledger: Ledger{Reserved: map[string]bool{}, Charged: map[string]bool{}, Shipped: map[string]bool{}}}, nil
}

// Snapshot copies the ledger, keeping only what is held.
func (c *Choreography) Snapshot() Ledger {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := func(m map[string]bool) map[string]bool {
		out := map[string]bool{}
		for k, v := range m {
			if v {
				out[k] = true
			}
		}
		return out
	}
	return Ledger{Reserved: cp(c.ledger.Reserved), Charged: cp(c.ledger.Charged), Shipped: cp(c.ledger.Shipped), Orders: c.ledger.Orders}
}

// Run reacts to events until ctx ends.
func (c *Choreography) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, t := range []string{c.cfg.OrdersTopic, InventoryEvents, PaymentEvents, ShippingEvents} {
		ch, err := c.sub.Subscribe(ctx, t)
		if err != nil {
			return fmt.Errorf("legacy: subscribe %s: %w", t, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msg := range ch {
				if err := c.handle(msg); err != nil {
					c.log.Warn("legacy service failed; will retry", zap.Error(err))
					msg.Nack()
					continue
				}
				msg.Ack()
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// emit is one event a service publishes in reaction.
type emit struct{ topic, typ string }

func (c *Choreography) handle(msg *message.Message) error {
	var ev topics.CloudEvent
	if err := json.Unmarshal(msg.Payload, &ev); err != nil {
		c.log.Error("legacy: undecodable event dropped", zap.Error(err))
		return nil
	}
	var o simulated.Order
	if err := json.Unmarshal(ev.Data, &o); err != nil || o.OrderID == "" {
		c.log.Error("legacy: event without an order id dropped", zap.String("type", ev.Type))
		return nil
	}
	if c.cfg.Delay > 0 {
		time.Sleep(c.cfg.Delay)
	}
	for _, e := range c.react(ev, o) {
		out, err := topics.NewCloudEvent(e.typ+"/"+o.OrderID, "legacy", e.typ, o.OrderID, time.Now(), o)
		if err != nil {
			return err
		}
		body, err := out.Marshal()
		if err != nil {
			return err
		}
		m := message.NewMessage(out.ID, body)
		m.Metadata.Set("partition_key", o.OrderID)
		if err := c.pub.Publish(e.topic, m); err != nil {
			return fmt.Errorf("legacy: publish %s: %w", out.ID, err)
		}
	}
	return nil
}

// react applies an event to the services' state once per event id and says
// what they publish. A redelivered event publishes again (same ids, so the
// broker or the next service drops the copy) without acting twice.
func (c *Choreography) react(ev topics.CloudEvent, o simulated.Order) []emit {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := !c.seen[ev.ID]
	c.seen[ev.ID] = true
	l := &c.ledger
	switch ev.Type {
	case simulated.OrderPlaced:
		if first {
			l.Orders++
			l.Reserved[o.OrderID] = true
		}
		return []emit{{InventoryEvents, InventoryReserved}}
	case InventoryReserved:
		if o.FailPayment {
			return []emit{{PaymentEvents, PaymentDeclined}}
		}
		l.Charged[o.OrderID] = true
		return []emit{{PaymentEvents, PaymentCharged}}
	case PaymentCharged:
		if o.FailShipping {
			return []emit{{ShippingEvents, ShippingRefused}}
		}
		l.Shipped[o.OrderID] = true
		return []emit{{ShippingEvents, ShippingCreated}}
	case ShippingRefused:
		l.Charged[o.OrderID] = false
		return []emit{{PaymentEvents, PaymentRefunded}}
	case PaymentDeclined, PaymentRefunded:
		if c.cfg.SkipRelease {
			return nil
		}
		l.Reserved[o.OrderID] = false
		return []emit{{InventoryEvents, InventoryReleased}}
	}
	return nil
}
