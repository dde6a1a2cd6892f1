package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/segmentio/kafka-go"
)

// ErrSubscriberClosed is returned by Subscribe after Close.
var ErrSubscriberClosed = errors.New("kafka subscriber is closed")

// Subscriber is a Watermill message.Subscriber (and, for topic creation,
// message.SubscribeInitializer) on kafka-go consumer-group readers. Each
// Subscribe call runs its own reader; see the package doc for the delivery
// and commit rules.
type Subscriber struct {
	cfg    SubscriberConfig
	logger watermill.LoggerAdapter
	net    network
	admin  *topicAdmin

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	subs    sync.WaitGroup
}

var (
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
)

// NewSubscriber builds a Subscriber from cfg, refusing an invalid config
// with every problem listed. A nil logger logs nothing. No connection is
// made until Subscribe or SubscribeInitialize.
func NewSubscriber(cfg SubscriberConfig, logger watermill.LoggerAdapter) (*Subscriber, error) {
	return NewSubscriberWithNetwork(cfg, logger, Network{})
}

// NewSubscriberWithNetwork is NewSubscriber with caller-supplied kafka-go
// dial objects (see Network); TLS and SASL settings are then only used for
// the nil fields.
func NewSubscriberWithNetwork(cfg SubscriberConfig, logger watermill.LoggerAdapter, n Network) (*Subscriber, error) {
	cfg.setDefaults()
	cfg.StartOffset = strings.ToLower(cfg.StartOffset)
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka subscriber config: %w", err)
	}
	nw, err := buildNetwork(cfg.Connection, n)
	if err != nil {
		return nil, fmt.Errorf("kafka subscriber: %w", err)
	}
	return &Subscriber{
		cfg:     cfg,
		logger:  orNop(logger),
		net:     nw,
		admin:   newTopicAdmin(cfg.Connection, cfg.TopicCreation, nw.transport, cfg.DialTimeout),
		closing: make(chan struct{}),
	}, nil
}

// Subscribe starts consuming topic in the configured consumer group (or a
// unique one when ConsumerGroup is empty). The channel is closed when ctx
// ends or the Subscriber is closed, after the shutdown described in the
// package doc.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if topic == "" {
		return nil, errors.New("kafka subscribe: empty topic")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrSubscriberClosed
	}
	s.subs.Add(1)
	s.mu.Unlock()

	out, err := s.subscribe(ctx, topic)
	if err != nil {
		s.subs.Done()
		return nil, err
	}
	return out, nil
}

func (s *Subscriber) subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if s.cfg.AutoCreateTopics {
		ictx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
		err := s.admin.ensure(ictx, topic)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("kafka subscribe: %w", err)
		}
	}
	group, ephemeral := s.cfg.ConsumerGroup, s.cfg.ConsumerGroup == ""
	if !ephemeral && s.cfg.GroupPerTopic {
		group += "." + topic
	}
	if ephemeral {
		group = s.cfg.ClientID + "-ephemeral-" + watermill.NewUUID()
	}
	rc := s.readerConfig(topic, group)
	// kafka.NewReader panics on an invalid config; validate first.
	if err := rc.Validate(); err != nil {
		return nil, fmt.Errorf("kafka subscribe %q: %w", topic, err)
	}
	sub := newSubscription(subscriptionConfig{
		topic:           topic,
		group:           group,
		keyField:        s.cfg.KeyMetadataField,
		nackResendSleep: s.cfg.NackResendSleep,
		nackResendMax:   s.cfg.NackResendMax,
		maxBacklog:      s.cfg.MaxBacklog,
		closeTimeout:    s.cfg.CloseTimeout,
		concurrency:     s.cfg.Concurrency,
		key:             s.cfg.Key,
		noCommit:        ephemeral,
	}, kafka.NewReader(rc), s.logger)
	s.logger.Debug("Subscribed", watermill.LogFields{"topic": topic, "consumer_group": group})
	go func() {
		defer s.subs.Done()
		sub.run(ctx, s.closing)
	}()
	return sub.out, nil
}

func (s *Subscriber) readerConfig(topic, group string) kafka.ReaderConfig {
	start := kafka.FirstOffset
	if s.cfg.StartOffset == StartLatest {
		start = kafka.LastOffset
	}
	info, errs := kafkaGoLoggers(s.logger)
	return kafka.ReaderConfig{
		Brokers:               s.cfg.Brokers,
		GroupID:               group,
		Topic:                 topic,
		Dialer:                s.net.dialer,
		QueueCapacity:         s.cfg.QueueCapacity,
		MinBytes:              1,
		MaxBytes:              10e6,
		MaxWait:               s.cfg.MaxWait,
		HeartbeatInterval:     s.cfg.HeartbeatInterval,
		SessionTimeout:        s.cfg.SessionTimeout,
		RebalanceTimeout:      s.cfg.RebalanceTimeout,
		JoinGroupBackoff:      s.cfg.JoinGroupBackoff,
		CommitInterval:        0, // explicit, synchronous commits only
		WatchPartitionChanges: true,
		StartOffset:           start,
		IsolationLevel:        kafka.ReadCommitted,
		Logger:                info,
		ErrorLogger:           errs,
	}
}

// SubscribeInitialize creates topic when AutoCreateTopics is on; otherwise
// it checks that the topic exists, so a misspelt name fails here rather than
// as a subscription that never receives anything.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	if topic == "" {
		return errors.New("kafka subscribe initialize: empty topic")
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DialTimeout)
	defer cancel()
	var err error
	if s.cfg.AutoCreateTopics {
		err = s.admin.ensure(ctx, topic)
	} else {
		err = s.admin.check(ctx, topic)
	}
	if err != nil {
		return fmt.Errorf("kafka subscribe initialize: %w", err)
	}
	return nil
}

// Close stops every subscription (each waits up to CloseTimeout for its
// in-flight message and commits what was acked), closes their channels and
// returns when all are done. Calling it again is a no-op.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()

	s.subs.Wait()
	s.net.close()
	return nil
}
