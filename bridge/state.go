package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/dlqstore"
	"github.com/sagabridge/sagabridge/topics/kafka"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// ErrNotMeasured means the broker in use cannot answer a state question.
var ErrNotMeasured = errors.New("not measured on this broker")

// DLQDepth is how many messages the dead-letter topic holds now (on
// Kafka: how many it holds that `dlq purge` or `dlq replay` did not
// acknowledge, counted at most once a minute: it reads the topic).
func (b *Bridge) DLQDepth(ctx context.Context) (int64, error) {
	if b.cfg.Broker.Kind == "kafka" {
		return b.kafkaState.dlqDepth(ctx, b.cfg)
	}
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
// consumer group has not acknowledged yet: not delivered, or delivered and
// still in flight, parked or held behind their instance. It is what KEDA's
// scalers read as lag (deploy/autoscaling): on NATS the consumer's pending
// plus ack-pending messages, on Kafka the records after the group's
// committed offsets.
func (b *Bridge) ConsumerLag(ctx context.Context) (map[string]int64, error) {
	if b.cfg.Broker.Kind == "kafka" {
		return b.kafkaState.lag(ctx, b.cfg, b.router.Topics())
	}
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
		out[topic] = int64(info.NumPending) + int64(info.NumAckPending)
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

// kafkaState answers the state questions on Kafka with a reader of its
// own, opened on first use.
type kafkaState struct {
	mu      sync.Mutex
	r       *kafka.Reader
	store   *dlqstore.KafkaStore
	depth   int64
	depthAt time.Time
}

func (k *kafkaState) open(cfg *config.Config) error {
	if k.r != nil {
		return nil
	}
	r, err := kafka.NewReader(kafkaConnection(cfg.Broker.Kafka))
	if err != nil {
		return err
	}
	st, err := dlqstore.OpenKafka(kafkaConnection(cfg.Broker.Kafka), cfg.DLQ.Topic)
	if err != nil {
		r.Close()
		return err
	}
	k.r, k.store = r, st
	return nil
}

func (k *kafkaState) dlqDepth(ctx context.Context, cfg *config.Config) (int64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.open(cfg); err != nil {
		return 0, err
	}
	if time.Since(k.depthAt) < time.Minute {
		return k.depth, nil
	}
	n, err := k.store.Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("dlq depth: %w", err)
	}
	k.depth, k.depthAt = int64(n), time.Now()
	return k.depth, nil
}

func (k *kafkaState) lag(ctx context.Context, cfg *config.Config, topics []string) (map[string]int64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.open(cfg); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var errs []error
	for _, t := range topics {
		// The worker's groups are one per topic (kafkaSubscriberConfig).
		n, err := k.r.GroupLag(ctx, cfg.Broker.ConsumerGroup+"."+t, t)
		if err != nil {
			errs = append(errs, fmt.Errorf("consumer lag of %s: %w", t, err))
			continue
		}
		out[t] = n
	}
	return out, errors.Join(errs...)
}

func (k *kafkaState) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.r != nil {
		k.r.Close()
		_ = k.store.Close()
		k.r, k.store = nil, nil
	}
}
