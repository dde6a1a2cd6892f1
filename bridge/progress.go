package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/sagas/progress"
	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/kafka"
)

// progressSink is what the bridge feeds with the progress and outcome
// events it sees (the running sagas behind the oldest-running gauge).
type progressSink interface {
	Apply(ev topics.CloudEvent) (progress.Progress, error)
}

// feedProgress keeps the sink current until ctx ends. Every replica needs
// every event, so it never joins the worker's consumer group: on NATS it
// listens to the subjects with a core subscription (JetStream delivers a
// published message to those too; nothing is stored for it), on Kafka it
// reads with a throwaway group from the latest offset. Progress is
// advisory: what is missed while disconnected is not replayed, and the
// next event of the instance (or its outcome) corrects the sink.
func (b *Bridge) feedProgress(ctx context.Context, sink progressSink) error {
	subjects := b.sagaTopics
	apply := func(payload []byte) {
		var ev topics.CloudEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return
		}
		_, _ = sink.Apply(ev) // not every outcome-topic event is progress
	}
	if c, ok := b.broker.(interface{ Conn() *nats.Conn }); ok {
		var subs []*nats.Subscription
		defer func() {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
		}()
		for _, subj := range subjects {
			s, err := c.Conn().Subscribe(subj, func(m *nats.Msg) { apply(m.Data) })
			if err != nil {
				return fmt.Errorf("progress: subscribe %s: %w", subj, err)
			}
			subs = append(subs, s)
		}
		<-ctx.Done()
		return nil
	}
	if b.cfg.Broker.Kind != "kafka" {
		return errors.New("progress: the broker offers no subscription outside the consumer group")
	}
	sc := kafkaSubscriberConfig(b.cfg.Broker)
	sc.ConsumerGroup, sc.GroupPerTopic, sc.StartOffset = "", false, kafka.StartLatest
	sub, err := kafka.NewSubscriber(sc, newWMLogger(b.log.Named("progress")))
	if err != nil {
		return fmt.Errorf("progress: %w", err)
	}
	// Closing the subscriber ends the channels; then the readers finish.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() { _ = sub.Close() }()
	for _, topic := range subjects {
		ch, err := sub.Subscribe(ctx, topic)
		if err != nil {
			return fmt.Errorf("progress: subscribe %s: %w", topic, err)
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

// runProgress feeds the sink beside the router; a failure costs only the
// oldest-running gauge, so it is logged, not fatal.
func (b *Bridge) runProgress(ctx context.Context, sink progressSink) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := b.feedProgress(ctx, sink); err != nil {
			b.log.Warn("progress events not followed; the oldest running saga gauge stays empty", zap.Error(err))
		}
	}()
	return func() { cancel(); <-done }
}
