package simulated

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/topics"
)

// OrderPlaced is the CloudEvent type of a new order.
const OrderPlaced = "order.placed"

// OrderMessage builds an order.placed CloudEvent message whose Watermill
// UUID is the event id.
func OrderMessage(eventID string, o Order) (*message.Message, error) {
	ev, err := topics.NewCloudEvent(eventID, "shop", OrderPlaced, o.OrderID, time.Now(), o)
	if err != nil {
		return nil, err
	}
	body, err := ev.Marshal()
	if err != nil {
		return nil, err
	}
	msg := message.NewMessage(eventID, body)
	msg.Metadata.Set("partition_key", o.OrderID)
	return msg, nil
}

// PublishOrder publishes an order.placed CloudEvent.
func PublishOrder(pub message.Publisher, topic, eventID string, o Order) error {
	msg, err := OrderMessage(eventID, o)
	if err != nil {
		return err
	}
	if err := pub.Publish(topic, msg); err != nil {
		return fmt.Errorf("publish order %s: %w", o.OrderID, err)
	}
	return nil
}

// Received is an outcome as a watcher saw it.
type Received struct {
	EventID string
	Outcome topics.Outcome
	At      time.Time
}

// Watcher collects outcome events. It dedupes on the CloudEvent id, as the
// outcome contract tells consumers to, and counts what it had to drop.
type Watcher struct {
	mu         sync.Mutex
	byInstance map[string][]Received
	seen       map[string]bool
	duplicates int
	notify     chan Received
}

// NewWatcher builds a watcher; notify may be nil.
func NewWatcher(notify chan Received) *Watcher {
	return &Watcher{byInstance: map[string][]Received{}, seen: map[string]bool{}, notify: notify}
}

// Run consumes topic from sub (which must use its own consumer group)
// until ctx ends.
func (w *Watcher) Run(ctx context.Context, sub message.Subscriber, topic string) error {
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		return fmt.Errorf("watch %s: %w", topic, err)
	}
	for msg := range ch {
		var ev topics.CloudEvent
		var out topics.Outcome
		if err := json.Unmarshal(msg.Payload, &ev); err == nil {
			_ = json.Unmarshal(ev.Data, &out)
		}
		r := Received{EventID: ev.ID, Outcome: out, At: time.Now()}
		w.mu.Lock()
		if w.seen[ev.ID] {
			w.duplicates++
			w.mu.Unlock()
			msg.Ack()
			continue
		}
		w.seen[ev.ID] = true
		w.byInstance[out.InstanceID] = append(w.byInstance[out.InstanceID], r)
		w.mu.Unlock()
		msg.Ack()
		if w.notify != nil {
			select {
			case w.notify <- r:
			case <-ctx.Done():
			}
		}
	}
	return ctx.Err()
}

// Outcomes returns every distinct outcome per instance.
func (w *Watcher) Outcomes() map[string][]Received {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string][]Received, len(w.byInstance))
	for k, v := range w.byInstance {
		out[k] = append([]Received(nil), v...)
	}
	return out
}

// Count is the number of instances with at least one outcome.
func (w *Watcher) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.byInstance)
}

// Duplicates is how many outcome deliveries repeated an id already seen.
func (w *Watcher) Duplicates() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.duplicates
}
