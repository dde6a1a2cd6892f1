package kafka

import (
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
)

// PubSub is a connected publisher and subscriber pair, the shape the bridge
// takes its broker in.
type PubSub struct {
	pub *Publisher
	sub *Subscriber
}

// NewPubSub builds both sides; a failure closes what was built.
func NewPubSub(pc PublisherConfig, sc SubscriberConfig, logger watermill.LoggerAdapter) (*PubSub, error) {
	pub, err := NewPublisher(pc, logger)
	if err != nil {
		return nil, err
	}
	sub, err := NewSubscriber(sc, logger)
	if err != nil {
		return nil, errors.Join(err, pub.Close())
	}
	return &PubSub{pub: pub, sub: sub}, nil
}

// Publisher returns the publisher.
func (p *PubSub) Publisher() message.Publisher { return p.pub }

// Subscriber returns the subscriber.
func (p *PubSub) Subscriber() message.Subscriber { return p.sub }

// Close closes the subscriber (committing what was acked), then the publisher.
func (p *PubSub) Close() error { return errors.Join(p.sub.Close(), p.pub.Close()) }

// NewGroupClient connects a client of its own consumer group (a group per
// topic), creating missing topics, with short fetch and group timings: the
// simulated services, outcome watchers and drivers of `dev`, tests and the
// benchmark, which should notice new messages and rebalances quickly.
func NewGroupClient(brokers []string, group string) (*PubSub, error) {
	conn := Connection{Brokers: brokers, ClientID: group}
	auto := TopicCreation{AutoCreateTopics: true}
	return NewPubSub(PublisherConfig{Connection: conn, TopicCreation: auto},
		SubscriberConfig{
			Connection: conn, TopicCreation: auto, ConsumerGroup: group, GroupPerTopic: true,
			MaxWait: 100 * time.Millisecond, NackResendSleep: 10 * time.Millisecond,
			HeartbeatInterval: 200 * time.Millisecond, JoinGroupBackoff: 200 * time.Millisecond,
		}, nil)
}

// Embedded is an in-process Kafka-protocol broker (franz-go's kfake) for
// `sagabridge dev` and tests: no JVM, nothing to install. It keeps data in
// memory only.
type Embedded struct {
	c *kfake.Cluster
}

// StartEmbedded starts a one-broker cluster on a free loopback port.
func StartEmbedded() (*Embedded, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	return &Embedded{c: c}, nil
}

// Brokers are the bootstrap addresses.
func (e *Embedded) Brokers() []string { return e.c.ListenAddrs() }

// Close stops the broker.
func (e *Embedded) Close() { e.c.Close() }
