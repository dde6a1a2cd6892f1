package bridge

import (
	"context"
	"errors"
)

// ErrNotMeasured means the broker in use cannot answer a state question.
var ErrNotMeasured = errors.New("not measured on this broker")

// brokerState is a broker that can tell how much waits on it.
type brokerState interface {
	// DLQDepth is how many messages the dead-letter topic holds now (on
	// Kafka: how many it holds that `dlq purge` or `dlq replay` did not
	// acknowledge, counted at most once a minute: it reads the topic).
	DLQDepth(ctx context.Context, topic string) (int64, error)
	// ConsumerLag is, per topic, how many messages the worker's consumer
	// group has not acknowledged yet: on NATS the consumer's pending plus
	// ack-pending messages, on Kafka the records after the group's
	// committed offsets. A topic not subscribed yet is left out.
	ConsumerLag(ctx context.Context, topics []string) (map[string]int64, error)
}

// DLQDepth is how many messages the dead-letter topic holds now.
func (b *Bridge) DLQDepth(ctx context.Context) (int64, error) {
	st, ok := b.broker.(brokerState)
	if !ok {
		return 0, ErrNotMeasured
	}
	return st.DLQDepth(ctx, b.cfg.DLQ.Topic)
}

// ConsumerLag is, per routed topic, how many messages the worker's
// consumer group has not acknowledged yet: not delivered, or delivered and
// still in flight, parked or held behind their instance. It is what KEDA's
// scalers read as lag (deploy/autoscaling).
func (b *Bridge) ConsumerLag(ctx context.Context) (map[string]int64, error) {
	st, ok := b.broker.(brokerState)
	if !ok {
		return nil, ErrNotMeasured
	}
	return st.ConsumerLag(ctx, b.router.Topics())
}
