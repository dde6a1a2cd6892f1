package natsjs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/sagabridge/sagabridge/topics"
)

// Metadata keys the subscriber adds to every message it delivers. They
// describe this delivery, not the event, so the bridge strips them before
// it re-publishes a message (to the dead-letter topic, for instance).
const (
	// MetaDeliveries is how many times JetStream has delivered the message,
	// this delivery included.
	MetaDeliveries = "Sagabridge-Deliveries"
	// MetaStoredAt is when JetStream stored the message (RFC 3339, nanos).
	MetaStoredAt = "Sagabridge-Stored-At"
	// MetaStream and MetaStreamSeq say where JetStream stores the message:
	// the broker's own identity of it, the same on every redelivery.
	MetaStream    = "Sagabridge-Stream"
	MetaStreamSeq = "Sagabridge-Stream-Seq"
	// MetaReadError is set when the message could not be carried as it
	// is (a header with several values: Watermill metadata holds one);
	// the message then holds each header's first value.
	MetaReadError = "Sagabridge-Read-Error"
)

// deliveryKeys are the metadata keys above: they describe a delivery and
// are never published.
var deliveryKeys = []string{MetaDeliveries, MetaStoredAt, MetaStream, MetaStreamSeq, MetaReadError}

// IsDeliveryKey reports whether a metadata key is one the subscriber adds
// about a delivery, which a copy of the message must not carry.
func IsDeliveryKey(k string) bool { return slices.Contains(deliveryKeys, k) }

// JetStream's limit on a message's header block, whatever max_payload is
// (nats-server's JSStreamHeaderExceedsMaximumErr).
const maxHeaderBytes = 64<<10 - 1

// JetStream API error codes of a message refused for its size.
const (
	errCodeMessageTooLarge = 10054
	errCodeHeaderTooLarge  = 10097
)

// Config configures the JetStream publisher and subscriber. Zero (or
// negative) numbers take the defaults. New checks only what a caller can
// get wrong in code; the worker's file is checked where it is read
// (bridge/config), with the line of each problem.
type Config struct {
	// URL of the NATS server(s), comma separated.
	URL string
	// ConsumerGroup names the durable consumer shared by replicas: every
	// message on a topic is handled by one member of the group.
	ConsumerGroup string
	// Concurrency is how many messages of one topic are handled at once
	// (default 16).
	Concurrency int
	// AckWait is how long JetStream waits for an ack before redelivering
	// (default 30s).
	AckWait time.Duration
	// MaxAckPending bounds the messages the broker hands out unacked.
	// Default 4 × Concurrency + MaxBacklog.
	MaxAckPending int
	// MaxBacklog bounds the messages held waiting behind a key that is
	// busy (its message in flight or waiting to be retried): they wait
	// without taking one of the Concurrency slots or the window of
	// messages whose key is free, so one busy key does not hold up the
	// others until this many (or 64 MiB of payloads) wait. Default 4096.
	MaxBacklog int
	// Key orders messages: the same key is handled one at a time, in order.
	// What it returns beside the key comes back in each delivery's
	// topics.Delivery. Default PartitionKey.
	Key topics.Keyer
	// Retry decides how long a nacked message waits before redelivery.
	Retry Backoff
	// ConfirmAcks waits for the server to confirm each ack (DoubleAck).
	ConfirmAcks bool
	// Options are extra connection options (credentials, TLS, name).
	Options []nats.Option
	// FailFast makes New fail when the first connection attempt fails
	// (command-line tools); otherwise the connection keeps retrying in the
	// background, as a worker that starts before its broker needs.
	FailFast bool
	// Logger receives Watermill's adapter logs; nil discards them.
	Logger watermill.LoggerAdapter
}

// Backoff maps a delivery count (1 for the first delivery) to the delay
// before the next one.
type Backoff func(deliveries uint64) time.Duration

// ExponentialBackoff doubles from min up to max.
func ExponentialBackoff(minDelay, maxDelay time.Duration) Backoff {
	return func(n uint64) time.Duration {
		d := minDelay
		for i := uint64(1); i < n && d < maxDelay; i++ {
			d *= 2
		}
		return min(d, maxDelay)
	}
}

func (c *Config) setDefaults() {
	if c.ConsumerGroup == "" {
		c.ConsumerGroup = "sagabridge"
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxBacklog <= 0 {
		c.MaxBacklog = 4096
	}
	if c.MaxAckPending == 0 {
		// A small window of messages whose key is free (what one replica
		// holds unacked, another cannot take), plus the backlog of busy
		// keys, which wait here for their key's turn.
		c.MaxAckPending = c.Concurrency*4 + c.MaxBacklog
	}
	if c.Key == nil {
		c.Key = PartitionKey
	}
	if c.Retry == nil {
		c.Retry = ExponentialBackoff(100*time.Millisecond, 10*time.Second)
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("nats: url is required"))
	}
	if c.MaxAckPending < c.Concurrency {
		errs = append(errs, fmt.Errorf("nats: maxAckPending %d is below concurrency %d", c.MaxAckPending, c.Concurrency))
	}
	return errors.Join(errs...)
}

// StreamName is the JetStream stream that stores a topic.
func StreamName(topic string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '/', '\\':
			return '_'
		}
		return r
	}, topic)
}

// PubSub is a connected JetStream publisher and subscriber pair.
type PubSub struct {
	conn   *nats.Conn
	dialer *recordingDialer
	url    string
	js     nats.JetStreamContext
	pub    *wmnats.Publisher
	sub    *orderedSubscriber

	mu      sync.Mutex
	streams map[string]bool
}

// New connects to NATS and builds the publisher and subscriber.
func New(cfg Config) (*PubSub, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dialer := &recordingDialer{d: net.Dialer{Timeout: nats.DefaultTimeout}}
	opts := append([]nats.Option{
		nats.RetryOnFailedConnect(!cfg.FailFast),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.SetCustomDialer(dialer),
	}, cfg.Options...)
	conn, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		if derr := dialer.lastError(); derr != nil && errors.Is(err, nats.ErrNoServers) {
			// nats.go reports a refused connection as "no servers
			// available"; say what happened.
			err = derr
		}
		return nil, fmt.Errorf("nats: connect to %s: %w", redact(cfg.URL), err)
	}
	js, err := conn.JetStream()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("nats: jetstream context: %w", err)
	}
	ps := &PubSub{conn: conn, dialer: dialer, url: redact(cfg.URL), js: js, streams: map[string]bool{}}

	jsCfg := wmnats.JetStreamConfig{
		// Streams are created by EnsureStream (valid names for dotted topics).
		AutoProvision: false,
		// Nats-Msg-Id = the Watermill UUID: the stream drops a re-publish of
		// the same id inside its duplicate window.
		TrackMsgId: true,
	}
	marshaler := &deliveryMarshaler{}
	pub, err := wmnats.NewPublisherWithNatsConn(conn, wmnats.PublisherConfig{
		Marshaler:         marshaler,
		JetStream:         jsCfg,
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
	}.GetPublisherPublishConfig(), cfg.Logger)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("nats: publisher: %w", err)
	}
	sub, err := newOrderedSubscriber(ps, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	ps.pub, ps.sub = pub, sub
	return ps, nil
}

// why adds the reason the connection closed (an authorization violation,
// say: the client gives up on it) to an error that only says it is closed,
// and the reason it is not connected (a refused dial, say) to one that
// only says a request timed out.
func (p *PubSub) why(err error) error {
	if errors.Is(err, nats.ErrConnectionClosed) {
		if last := p.conn.LastError(); last != nil {
			return fmt.Errorf("%w (closed after: %w)", err, last)
		}
	}
	return p.notConnected(err)
}

// notConnected names the connection's trouble when it is not connected.
func (p *PubSub) notConnected(err error) error {
	if p.conn.IsConnected() {
		return err
	}
	reason := p.dialer.lastError()
	if reason == nil {
		reason = p.conn.LastError()
	}
	if reason == nil {
		return fmt.Errorf("not connected to %s (%s): %w", p.url, p.conn.Status(), err)
	}
	return fmt.Errorf("not connected to %s: %w (%w)", p.url, reason, err)
}

// ConnectError is why the connection to the server is down, nil while it
// is up.
func (p *PubSub) ConnectError() error {
	if p.conn.IsConnected() {
		return nil
	}
	return p.notConnected(errors.New(strings.ToLower(p.conn.Status().String())))
}

// EnsureStream creates the stream for a topic if it does not exist.
func (p *PubSub) EnsureStream(topic string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.streams[topic] {
		return nil
	}
	name := StreamName(topic)
	if _, err := p.js.StreamInfo(name); err != nil {
		if !errors.Is(err, nats.ErrStreamNotFound) {
			return fmt.Errorf("nats: stream %s: %w", name, p.why(err))
		}
		if _, err := p.js.AddStream(&nats.StreamConfig{
			Name:       name,
			Subjects:   []string{topic},
			Storage:    nats.FileStorage,
			Duplicates: 2 * time.Minute,
		}); err != nil && !errors.Is(err, nats.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("nats: create stream %s: %w", name, p.why(err))
		}
	}
	p.streams[topic] = true
	return nil
}

// Publisher returns the Watermill publisher; it creates missing streams.
func (p *PubSub) Publisher() message.Publisher { return publisher{p} }

// Subscriber returns the Watermill subscriber; it creates missing streams.
func (p *PubSub) Subscriber() message.Subscriber { return subscriber{p} }

// Conn exposes the connection for health checks.
func (p *PubSub) Conn() *nats.Conn { return p.conn }

// Close closes the subscriber (waiting for in-flight acks), the publisher
// and the connection.
func (p *PubSub) Close() error {
	err := errors.Join(p.sub.Close(), p.pub.Close())
	p.conn.Close()
	return err
}

type publisher struct{ p *PubSub }

func (w publisher) Publish(topic string, msgs ...*message.Message) error {
	if err := w.p.EnsureStream(topic); err != nil {
		return err
	}
	if err := w.p.pub.Publish(topic, msgs...); err != nil {
		if tooLarge(err) {
			return fmt.Errorf("nats: publish to %s: %w: %w", topic, topics.ErrTooLarge, err)
		}
		return err
	}
	return nil
}

// tooLarge reports a publish refused for its size: by the client
// (max_payload) or by the stream (its message or header limit).
func tooLarge(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	var api *nats.APIError
	return errors.As(err, &api) && (api.ErrorCode == errCodeMessageTooLarge || api.ErrorCode == errCodeHeaderTooLarge)
}

// MessageLimits is what the server stores: max_payload for headers and
// data together, and JetStream's 64 KiB for the headers.
func (p *PubSub) MessageLimits() topics.MessageLimits {
	return topics.MessageLimits{MaxBytes: int(p.conn.MaxPayload()), MaxHeaderBytes: maxHeaderBytes}
}

func (w publisher) Close() error { return nil }

type subscriber struct{ p *PubSub }

func (w subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := w.p.EnsureStream(topic); err != nil {
		return nil, err
	}
	return w.p.sub.Subscribe(ctx, topic)
}

func (w subscriber) SubscribeInitialize(topic string) error { return w.p.EnsureStream(topic) }

// Close ends every subscription (waiting for in-flight messages to settle)
// but keeps the connection: PubSub.Close closes that.
func (w subscriber) Close() error { return w.p.sub.Close() }

// deliveryMarshaler is Watermill's header marshaler minus the metadata the
// subscriber adds about a delivery, so re-publishing a consumed message does
// not carry them along.
type deliveryMarshaler struct{ wmnats.NATSMarshaler }

func (m *deliveryMarshaler) Marshal(topic string, msg *message.Message) (*nats.Msg, error) {
	out, err := m.NATSMarshaler.Marshal(topic, msg)
	if err != nil {
		return nil, err
	}
	for _, k := range deliveryKeys {
		out.Header.Del(k)
	}
	return out, nil
}

// recordingDialer dials TCP and remembers the last failure, which nats.go
// otherwise reduces to "no servers available" or a timeout.
type recordingDialer struct {
	d    net.Dialer
	mu   sync.Mutex
	last error
}

func (r *recordingDialer) Dial(network, address string) (net.Conn, error) {
	c, err := r.d.Dial(network, address)
	r.mu.Lock()
	r.last = err
	r.mu.Unlock()
	return c, err
}

func (r *recordingDialer) lastError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// redact drops user:password from each comma-separated URL.
func redact(raw string) string {
	parts := strings.Split(raw, ",")
	for i, s := range parts {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || u.User == nil {
			continue
		}
		u.User = nil
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
