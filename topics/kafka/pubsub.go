package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sagabridge/sagabridge/topics"
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

// MessageLimits is the publisher's (see Publisher.MessageLimits).
func (p *PubSub) MessageLimits() topics.MessageLimits { return p.pub.MessageLimits() }

// Ping reports whether a broker answers (see Publisher.Ping).
func (p *PubSub) Ping(ctx context.Context) error { return p.pub.Ping(ctx) }

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
// memory unless EmbeddedConfig.DataDir is set.
type Embedded struct {
	c *kfake.Cluster
}

// EmbeddedConfig places an embedded broker. The zero value is a free port
// and memory only.
type EmbeddedConfig struct {
	// Port is the loopback port to listen on; 0 picks a free one.
	Port int
	// DataDir, when set, keeps topics, records and committed offsets on
	// disk: a broker started again on the same directory (and port) is a
	// restart that lost nothing it had written.
	DataDir string
}

// StartEmbedded starts a one-broker cluster on a free loopback port.
func StartEmbedded() (*Embedded, error) { return StartEmbeddedWith(EmbeddedConfig{}) }

// StartEmbeddedWith starts a one-broker cluster as cfg says.
func StartEmbeddedWith(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("embedded kafka: port %d out of range", cfg.Port)
	}
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	if cfg.Port != 0 {
		opts = append(opts, kfake.Ports(cfg.Port))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	return &Embedded{c: c}, nil
}

// Brokers are the bootstrap addresses.
func (e *Embedded) Brokers() []string { return e.c.ListenAddrs() }

// Close stops the broker.
func (e *Embedded) Close() { e.c.Close() }
