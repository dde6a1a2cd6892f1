package brokers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/dlqstore"
	"github.com/sagabridge/sagabridge/bridge/migrate"
	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/kafka"
)

// kafkaBroker is a Kafka publisher and subscriber, and a reader of its own
// for the state questions, opened on first use.
type kafkaBroker struct {
	*kafka.PubSub
	cfg config.Broker
	wm  watermill.LoggerAdapter

	mu      sync.Mutex
	r       *kafka.Reader
	store   *dlqstore.KafkaStore
	depth   int64
	depthAt time.Time
}

// Close closes the publisher, the subscriber and the state reader.
func (b *kafkaBroker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	errs := []error{b.PubSub.Close()}
	if b.r != nil {
		b.r.Close()
	}
	if b.store != nil {
		errs = append(errs, b.store.Close())
	}
	b.r, b.store = nil, nil
	return errors.Join(errs...)
}

// Healthy is nil while a broker answers.
func (b *kafkaBroker) Healthy(ctx context.Context) error { return b.Ping(ctx) }

// Follow applies every record published on topics from now until ctx
// ends, with a throwaway group (every replica needs every record).
func (b *kafkaBroker) Follow(ctx context.Context, topics []string, apply func(payload []byte)) error {
	sc := kafkaSubscriberConfig(b.cfg)
	sc.ConsumerGroup, sc.GroupPerTopic, sc.StartOffset = "", false, kafka.StartLatest
	sub, err := kafka.NewSubscriber(sc, b.wm)
	if err != nil {
		return err
	}
	// Closing the subscriber ends the channels; then the readers finish.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() { _ = sub.Close() }()
	for _, topic := range topics {
		ch, err := sub.Subscribe(ctx, topic)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", topic, err)
		}
		wg.Add(1)
		go func(ch <-chan *message.Message) {
			defer wg.Done()
			for m := range ch {
				apply(m.Payload)
				m.Ack()
			}
		}(ch)
	}
	<-ctx.Done()
	return nil
}

// reader opens the state reader on first use.
func (b *kafkaBroker) reader() error {
	if b.r != nil {
		return nil
	}
	r, err := kafka.NewReader(KafkaConnection(b.cfg.Kafka))
	if err != nil {
		return err
	}
	b.r = r
	return nil
}

// DLQDepth is how many messages the dead-letter topic holds that `dlq
// purge` or `dlq replay` did not acknowledge, counted at most once a
// minute: it reads the topic.
func (b *kafkaBroker) DLQDepth(ctx context.Context, topic string) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.store == nil {
		st, err := dlqstore.OpenKafka(KafkaConnection(b.cfg.Kafka), topic)
		if err != nil {
			return 0, err
		}
		b.store = st
	}
	if time.Since(b.depthAt) < time.Minute {
		return b.depth, nil
	}
	n, err := b.store.Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("dlq depth: %w", err)
	}
	b.depth, b.depthAt = int64(n), time.Now()
	return b.depth, nil
}

// ConsumerLag is, per topic, the records after the worker group's
// committed offsets.
func (b *kafkaBroker) ConsumerLag(ctx context.Context, routed []string) (map[string]int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.reader(); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var errs []error
	for _, t := range routed {
		// The worker's groups are one per topic (kafkaSubscriberConfig).
		n, err := b.r.GroupLag(ctx, b.cfg.ConsumerGroup+"."+t, t)
		if err != nil {
			errs = append(errs, fmt.Errorf("consumer lag of %s: %w", t, err))
			continue
		}
		out[t] = n
	}
	return out, errors.Join(errs...)
}

// OpenDeadLetters is the dead-letter topic on a client of its own, closed
// by the returned func.
func (b *kafkaBroker) OpenDeadLetters(topic string) (bridge.DeadLetterStore, func() error, error) {
	st, err := dlqstore.OpenKafka(KafkaConnection(b.cfg.Kafka), topic)
	if err != nil {
		return nil, nil, err
	}
	return st, st.Close, nil
}

// ReadOutcomes reads the outcomes on topic since a time.
func (b *kafkaBroker) ReadOutcomes(ctx context.Context, topic string, since time.Time) ([]topics.Outcome, error) {
	r, err := kafka.NewReader(KafkaConnection(b.cfg.Kafka))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return migrate.ReadKafkaOutcomes(ctx, r, topic, since)
}
