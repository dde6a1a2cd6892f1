package bridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// ErrNotMeasured means the broker in use cannot answer a state question.
var ErrNotMeasured = errors.New("not measured on this broker")

// DLQDepth is how many messages the dead-letter topic holds now.
func (b *Bridge) DLQDepth(ctx context.Context) (int64, error) {
	js, err := b.jetStream()
	if err != nil {
		return 0, err
	}
	st, err := js.Stream(ctx, natsjs.StreamName(b.cfg.DLQ.Topic))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("dlq depth: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("dlq depth: %w", err)
	}
	return int64(info.State.Msgs), nil
}

// ConsumerLag is, per routed topic, how many messages the worker's
// consumer group has not been handed yet: what KEDA's NATS JetStream and
// Kafka scalers read as lag.
func (b *Bridge) ConsumerLag(ctx context.Context) (map[string]int64, error) {
	js, err := b.jetStream()
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var errs []error
	for _, topic := range b.router.Topics() {
		c, err := js.Consumer(ctx, natsjs.StreamName(topic), natsjs.ConsumerName(b.cfg.Broker.ConsumerGroup, topic))
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			continue // not subscribed yet
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("consumer lag of %s: %w", topic, err))
			continue
		}
		info, err := c.Info(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("consumer lag of %s: %w", topic, err))
			continue
		}
		out[topic] = int64(info.NumPending)
	}
	return out, errors.Join(errs...)
}

func (b *Bridge) jetStream() (jetstream.JetStream, error) {
	c, ok := b.broker.(interface{ Conn() *nats.Conn })
	if !ok {
		return nil, ErrNotMeasured
	}
	return jetstream.New(c.Conn())
}
