package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/segmentio/kafka-go"

	"github.com/sagabridge/sagabridge/topics"
)

// ErrPublisherClosed is returned by Publish after Close.
var ErrPublisherClosed = errors.New("kafka publisher is closed")

// Publisher is a Watermill message.Publisher on a kafka-go Writer. Publish
// is synchronous: it returns once every message was acknowledged by all
// in-sync replicas (acks=all), so a nil error means the messages are durable.
type Publisher struct {
	cfg    PublisherConfig
	logger watermill.LoggerAdapter
	net    network
	admin  *topicAdmin
	writer *kafka.Writer

	// mu is held shared by Publish and exclusively by Close, so Close waits
	// for publishes under way instead of cutting them off.
	mu     sync.RWMutex
	closed bool
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher builds a Publisher from cfg, refusing an invalid config with
// every problem listed. A nil logger logs nothing.
func NewPublisher(cfg PublisherConfig, logger watermill.LoggerAdapter) (*Publisher, error) {
	return NewPublisherWithNetwork(cfg, logger, Network{})
}

// NewPublisherWithNetwork is NewPublisher with caller-supplied kafka-go
// dial objects (see Network). The publisher only uses the Transport.
func NewPublisherWithNetwork(cfg PublisherConfig, logger watermill.LoggerAdapter, n Network) (*Publisher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka publisher config: %w", err)
	}
	if n.Dialer == nil {
		// The publisher never dials with a Dialer; don't build one.
		n.Dialer = &kafka.Dialer{}
	}
	nw, err := buildNetwork(cfg.Connection, n)
	if err != nil {
		return nil, fmt.Errorf("kafka publisher: %w", err)
	}
	logger = orNop(logger)
	info, errs := kafkaGoLoggers(logger)
	w := &kafka.Writer{
		Addr:      kafka.TCP(cfg.Brokers...),
		Transport: nw.transport,
		// murmur2 like the Java client's default partitioner, so a keyed
		// event lands where a Java producer would put the same key.
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		// kafka-go's default, spelt out: MessageLimits reports it.
		BatchBytes:   1 << 20,
		BatchTimeout: cfg.BatchTimeout,
		WriteTimeout: cfg.WriteTimeout,
		Logger:       info,
		ErrorLogger:  errs,
	}
	return &Publisher{
		cfg:    cfg,
		logger: logger,
		net:    nw,
		admin:  newTopicAdmin(cfg.Connection, cfg.TopicCreation, nw.transport, cfg.WriteTimeout),
		writer: w,
	}, nil
}

// Ping asks a broker for its API versions: nil when one answers. The
// worker's /readyz uses it; the writer alone would only notice a dead broker
// at the next publish.
func (p *Publisher) Ping(ctx context.Context) error {
	err := p.ping(ctx)
	if staleConn(err) {
		// A pooled connection to a broker that restarted fails once with
		// EOF or a reset; that says nothing about the broker now, and the
		// retry dials afresh.
		err = p.ping(ctx)
	}
	if err != nil {
		return fmt.Errorf("kafka: ping %v: %w", p.cfg.Brokers, err)
	}
	return nil
}

func (p *Publisher) ping(ctx context.Context) error {
	resp, err := p.admin.client.ApiVersions(ctx, &kafka.ApiVersionsRequest{})
	if err == nil && resp.Error != nil {
		err = resp.Error
	}
	return err
}

// staleConn reports errors of a connection the other end closed.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Publish writes msgs to topic in one batch, in order. With AutoCreateTopics
// a missing topic is created first.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if topic == "" {
		return errors.New("kafka publish: empty topic")
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrPublisherClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	// Watermill's Publish has no context; the writer's own WriteTimeout
	// and retry limits bound the call.
	ctx := context.Background()
	if p.cfg.AutoCreateTopics {
		cctx, cancel := context.WithTimeout(ctx, p.cfg.WriteTimeout)
		err := p.admin.ensure(cctx, topic)
		cancel()
		if err != nil {
			return fmt.Errorf("kafka publish: %w", err)
		}
	}
	recs := make([]kafka.Message, 0, len(msgs))
	for _, m := range msgs {
		if m == nil {
			return errors.New("kafka publish: nil message")
		}
		recs = append(recs, toRecord(topic, m, p.cfg.KeyMetadataField))
	}
	if err := p.writer.WriteMessages(ctx, recs...); err != nil {
		if tooLarge(err) {
			return fmt.Errorf("kafka publish %d message(s) to %q: %w: %w", len(recs), topic, topics.ErrTooLarge, err)
		}
		return fmt.Errorf("kafka publish %d message(s) to %q: %w", len(recs), topic, err)
	}
	p.logger.Trace("Published", watermill.LogFields{"topic": topic, "count": len(recs)})
	return nil
}

// MessageLimits is the largest record the writer sends (kafka-go's batch
// size; a broker's message.max.bytes is usually a few bytes more).
func (p *Publisher) MessageLimits() topics.MessageLimits {
	return topics.MessageLimits{MaxBytes: int(p.writer.BatchBytes)}
}

// tooLarge reports a write refused for a record's size, by the client or
// by the broker (MESSAGE_TOO_LARGE), also inside kafka-go's per-message
// WriteErrors.
func tooLarge(err error) bool {
	if errors.Is(err, kafka.MessageSizeTooLarge) {
		return true
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil && errors.Is(e, kafka.MessageSizeTooLarge) {
				return true
			}
		}
	}
	return false
}

// Close flushes and closes the writer after publishes under way finish.
// Calling it again is a no-op.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	err := p.writer.Close()
	p.net.close()
	if err != nil {
		return fmt.Errorf("kafka publisher close: %w", err)
	}
	return nil
}
