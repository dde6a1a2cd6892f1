package brokers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/dlqstore"
	"github.com/sagabridge/sagabridge/bridge/migrate"
	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// natsBroker is a JetStream connection, and the nats-server it started
// for broker kind embedded.
type natsBroker struct {
	*natsjs.PubSub
	server *natsjs.Server
	url    string
	group  string
}

// Close closes the connection, then the embedded server.
func (b *natsBroker) Close() error {
	err := b.PubSub.Close()
	if b.server != nil {
		b.server.Shutdown()
	}
	return err
}

// URL is where clients reach the broker (the embedded server's address).
func (b *natsBroker) URL() string { return b.url }

// Healthy is nil while the connection is up.
func (b *natsBroker) Healthy(context.Context) error { return b.ConnectError() }

// Follow applies every message published on subjects until ctx ends,
// outside the consumer group: a core subscription (JetStream delivers a
// published message to those too; nothing is stored for it).
func (b *natsBroker) Follow(ctx context.Context, subjects []string, apply func(payload []byte)) error {
	var subs []*nats.Subscription
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	for _, subj := range subjects {
		s, err := b.Conn().Subscribe(subj, func(m *nats.Msg) { apply(m.Data) })
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
		subs = append(subs, s)
	}
	<-ctx.Done()
	return nil
}

// DLQDepth is how many messages the dead-letter topic holds now.
func (b *natsBroker) DLQDepth(ctx context.Context, topic string) (int64, error) {
	js, err := jetstream.New(b.Conn())
	if err != nil {
		return 0, err
	}
	st, err := js.Stream(ctx, natsjs.StreamName(topic))
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

// ConsumerLag is, per topic, the worker consumer's pending plus
// ack-pending messages.
func (b *natsBroker) ConsumerLag(ctx context.Context, routed []string) (map[string]int64, error) {
	js, err := jetstream.New(b.Conn())
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var errs []error
	for _, topic := range routed {
		c, err := js.Consumer(ctx, natsjs.StreamName(topic), natsjs.ConsumerName(b.group, topic))
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

// OpenDeadLetters is the dead-letter topic on this connection.
func (b *natsBroker) OpenDeadLetters(topic string) (bridge.DeadLetterStore, func() error, error) {
	st, err := dlqstore.Open(b.Conn(), topic)
	if err != nil {
		return nil, nil, err
	}
	return st, func() error { return nil }, nil
}

// ReadOutcomes reads the outcomes on topic since a time.
func (b *natsBroker) ReadOutcomes(ctx context.Context, topic string, since time.Time) ([]topics.Outcome, error) {
	js, err := jetstream.New(b.Conn())
	if err != nil {
		return nil, err
	}
	return migrate.ReadOutcomes(ctx, js, topic, since)
}
