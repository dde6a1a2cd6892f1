// Package simulated plays the legacy services of the order example on the
// broker: inventory, payment and shipping answer the OrderSaga's commands
// with reply events, as services that only speak pub/sub would. `sagabridge
// dev` and the end-to-end tests run them; they keep ledgers so a test can
// check that nothing stays reserved or charged for a compensated order.
package simulated

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/topics"
)

// Order is the data of an order.placed event.
type Order struct {
	OrderID  string  `json:"orderId"`
	Customer string  `json:"customer,omitempty"`
	SKU      string  `json:"sku,omitempty"`
	Quantity int     `json:"quantity,omitempty"`
	Amount   float64 `json:"amount"`
	// FailPayment makes the payment service decline this order.
	FailPayment bool `json:"failPayment,omitempty"`
	// FailShipping makes the shipping service refuse this order.
	FailShipping bool `json:"failShipping,omitempty"`
}

// ReplyData is what the simulated services publish: the generic reply plus
// the business key the raise routes correlate on.
type ReplyData struct {
	topics.Reply
	OrderID string `json:"orderId"`
}

// Config tunes the services.
type Config struct {
	// PaymentFailShare is the share of orders (0..1) whose payment is
	// declined, chosen by a hash of the order ID so runs are repeatable.
	PaymentFailShare float64
	// ReplyDelay is how long a service works before it replies, so tests
	// can catch sagas between steps.
	ReplyDelay time.Duration
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	if c.PaymentFailShare < 0 || c.PaymentFailShare > 1 {
		return fmt.Errorf("simulated: paymentFailShare %v is not within 0..1", c.PaymentFailShare)
	}
	return nil
}

// Ledger is the state of the simulated services.
type Ledger struct {
	mu       sync.Mutex
	reserved map[string]bool // order ID → stock held
	charged  map[string]bool // order ID → money held
	shipped  map[string]bool
	commands map[string]int // command id → times seen
	refunds  int
	releases int
}

func newLedger() *Ledger {
	return &Ledger{reserved: map[string]bool{}, charged: map[string]bool{}, shipped: map[string]bool{}, commands: map[string]int{}}
}

// Snapshot is a copy of the ledger.
type Snapshot struct {
	Reserved, Charged, Shipped map[string]bool
	Refunds, Releases          int
	// DuplicateCommands counts command ids seen more than once (answered
	// again, acted on once).
	DuplicateCommands int
}

// Snapshot copies the ledger.
func (l *Ledger) Snapshot() Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	cp := func(m map[string]bool) map[string]bool {
		out := make(map[string]bool, len(m))
		for k, v := range m {
			if v {
				out[k] = v
			}
		}
		return out
	}
	s := Snapshot{Reserved: cp(l.reserved), Charged: cp(l.charged), Shipped: cp(l.shipped), Refunds: l.refunds, Releases: l.releases}
	for _, n := range l.commands {
		if n > 1 {
			s.DuplicateCommands++
		}
	}
	return s
}

// Participants are the three services.
type Participants struct {
	cfg    Config
	pub    message.Publisher
	sub    message.Subscriber
	ledger *Ledger
	log    *zap.Logger
}

// New builds the services. sub must use its own consumer group.
func New(cfg Config, pub message.Publisher, sub message.Subscriber, log *zap.Logger) (*Participants, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pub == nil || sub == nil {
		return nil, errors.New("simulated: publisher and subscriber are required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Participants{cfg: cfg, pub: pub, sub: sub, ledger: newLedger(), log: log}, nil
}

// Ledger returns the services' state.
func (p *Participants) Ledger() *Ledger { return p.ledger }

// Run answers commands until ctx ends. Each message is answered in its own
// goroutine: the subscriber bounds how many are in flight and never hands
// out two of the same order at once, so the services keep per-order order
// and scale like a real service would. Answered one at a time, a burst of
// new orders would queue a saga's compensation behind every other order's
// commands, for longer than the compensation waits on a loaded machine.
func (p *Participants) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, t := range []string{order.InventoryCommands, order.PaymentCommands, order.ShippingCommands} {
		ch, err := p.sub.Subscribe(ctx, t)
		if err != nil {
			return fmt.Errorf("simulated: subscribe %s: %w", t, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msg := range ch {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p.answer(msg)
				}()
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// answer handles one command and settles it with the broker.
func (p *Participants) answer(msg *message.Message) {
	if err := p.handle(msg); err != nil {
		p.log.Warn("simulated service failed; will retry", zap.Error(err))
		msg.Nack()
		return
	}
	msg.Ack()
}

func (p *Participants) handle(msg *message.Message) error {
	var ev topics.CloudEvent
	if err := json.Unmarshal(msg.Payload, &ev); err != nil {
		p.log.Error("simulated: undecodable command dropped", zap.Error(err))
		return nil
	}
	var cmd topics.Command
	if err := json.Unmarshal(ev.Data, &cmd); err != nil {
		p.log.Error("simulated: undecodable command data dropped", zap.Error(err))
		return nil
	}
	var order Order
	if err := json.Unmarshal(cmd.Payload, &order); err != nil {
		p.log.Error("simulated: undecodable order dropped", zap.Error(err))
		return nil
	}
	if p.cfg.ReplyDelay > 0 {
		time.Sleep(p.cfg.ReplyDelay)
	}
	replyTopic, replyType, status, reason := p.apply(ev, order)
	data := ReplyData{
		Reply:   topics.Reply{InstanceID: cmd.InstanceID, Step: cmd.Step, CommandID: ev.ID, Status: status, Reason: reason},
		OrderID: order.OrderID,
	}
	reply, err := topics.NewCloudEvent("reply-"+ev.ID, "simulated-"+replyTopic, replyType, cmd.InstanceID, ev.Time, data)
	if err != nil {
		return err
	}
	body, err := reply.Marshal()
	if err != nil {
		return err
	}
	out := message.NewMessage(reply.ID, body)
	out.Metadata.Set("partition_key", cmd.InstanceID)
	return p.pub.Publish(replyTopic, out)
}

// apply performs the command once per command id and returns the reply.
func (p *Participants) apply(ev topics.CloudEvent, o Order) (topic, typ, status, reason string) {
	l := p.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	l.commands[ev.ID]++
	first := l.commands[ev.ID] == 1
	ok := topics.ReplyOK
	switch ev.Type {
	case "inventory.reserve":
		l.reserved[o.OrderID] = true
		return order.InventoryReplies, "inventory.reserved", ok, ""
	case "inventory.release":
		if first && l.reserved[o.OrderID] {
			l.releases++
		}
		l.reserved[o.OrderID] = false
		return order.InventoryReplies, "inventory.released", ok, ""
	case "payment.charge":
		if o.FailPayment || p.declines(o.OrderID) {
			return order.PaymentReplies, "payment.declined", topics.ReplyFailed, "card declined"
		}
		l.charged[o.OrderID] = true
		return order.PaymentReplies, "payment.charged", ok, ""
	case "payment.refund":
		if first && l.charged[o.OrderID] {
			l.refunds++
		}
		l.charged[o.OrderID] = false
		return order.PaymentReplies, "payment.refunded", ok, ""
	case "shipping.create":
		if o.FailShipping {
			return order.ShippingReplies, "shipping.refused", topics.ReplyFailed, "address not deliverable"
		}
		l.shipped[o.OrderID] = true
		return order.ShippingReplies, "shipping.created", ok, ""
	}
	return order.InventoryReplies, "unknown.command", topics.ReplyFailed, "unknown command " + ev.Type
}

// declines picks the configured share of orders by a hash of the ID.
func (p *Participants) declines(orderID string) bool {
	if p.cfg.PaymentFailShare <= 0 {
		return false
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(orderID))
	return float64(h.Sum32()%10000) < p.cfg.PaymentFailShare*10000
}
