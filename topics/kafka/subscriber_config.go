package kafka

import (
	"fmt"
	"strings"
	"time"

	"github.com/sagabridge/sagabridge/topics"
)

// Offsets a group without a committed offset starts from.
const (
	StartEarliest = "earliest"
	StartLatest   = "latest"
)

const (
	defaultNackResendSleep   = 100 * time.Millisecond
	defaultMaxBacklog        = 4096
	defaultCloseTimeout      = 10 * time.Second
	defaultMaxWait           = 500 * time.Millisecond
	defaultQueueCapacity     = 100
	defaultHeartbeatInterval = 3 * time.Second
	defaultSessionTimeout    = 30 * time.Second
	defaultRebalanceTimeout  = 30 * time.Second
	defaultJoinGroupBackoff  = 2 * time.Second
)

// SubscriberConfig configures a Subscriber. Zero values take the defaults
// documented on each field.
type SubscriberConfig struct {
	Connection    `json:",inline"`
	TopicCreation `json:",inline"`

	// ConsumerGroup is the Kafka group every Subscribe call joins. Empty
	// means a unique throwaway group per Subscribe call (every subscription
	// sees every message; nothing is shared between replicas).
	ConsumerGroup string `json:"consumer_group"`
	// GroupPerTopic joins "<ConsumerGroup>.<topic>" instead of one group for
	// every topic. kafka-go rebalances a whole group whenever one of its
	// readers joins or leaves, redelivering what the others had prefetched;
	// a group per topic keeps one topic's subscription from disturbing the
	// others'.
	GroupPerTopic bool `json:"group_per_topic"`
	// StartOffset is where a group with no committed offset starts:
	// "earliest" (default: nothing published before the group existed is
	// missed) or "latest".
	StartOffset string `json:"start_offset"`
	// KeyMetadataField names the metadata field a record key is copied into
	// when no header already set it. Default "partition_key".
	KeyMetadataField string `json:"key_metadata_field"`
	// NackResendSleep is the pause before a nacked message is delivered
	// again. Default 100ms.
	NackResendSleep time.Duration `json:"nack_resend_sleep"`
	// NackResendMax, when above NackResendSleep, makes the pause double
	// after each further nack of the same message up to this. Default: no
	// growth.
	NackResendMax time.Duration `json:"nack_resend_max"`
	// MaxBacklog bounds the messages held waiting behind a busy key (one
	// in flight or waiting to be resent). They wait without taking one of
	// the Concurrency places, so one busy key does not hold up the others
	// until this many wait. Default 4096.
	MaxBacklog int `json:"max_backlog"`
	// Concurrency is how many messages one Subscribe call hands out before
	// any is acked. Default 1: one at a time, the whole partition in order.
	// Above 1, messages with the same record key are still handed out one
	// at a time in partition order; messages with different keys (or no
	// key) overlap. Offsets are committed only up to the first unacked
	// message of each partition whatever the setting.
	Concurrency int `json:"concurrency"`
	// Key, when set, replaces the record key as the ordering key above:
	// messages with the same non-empty key are handed out one at a time,
	// an empty key runs beside anything. It sees the message the handler
	// will get on the first delivery (a redelivery after a nack is a copy);
	// what it returns beside the key comes back in every delivery's
	// topics.Delivery.
	Key topics.Keyer `json:"-"`
	// CloseTimeout bounds shutdown of one subscription: waiting for the
	// in-flight messages' acks plus the final commit. Default 10s.
	CloseTimeout time.Duration `json:"close_timeout"`
	// MaxWait is how long one fetch waits on the broker for new records.
	// Short values make shutdown and rebalances prompt. Default 500ms.
	MaxWait time.Duration `json:"max_wait"`
	// QueueCapacity is kafka-go's prefetch queue size. Default 100.
	QueueCapacity int `json:"queue_capacity"`
	// HeartbeatInterval, SessionTimeout, RebalanceTimeout and
	// JoinGroupBackoff tune group membership (defaults 3s, 30s, 30s, 2s). A
	// member notices a rebalance at its next heartbeat.
	HeartbeatInterval time.Duration `json:"heartbeat_interval"`
	SessionTimeout    time.Duration `json:"session_timeout"`
	RebalanceTimeout  time.Duration `json:"rebalance_timeout"`
	JoinGroupBackoff  time.Duration `json:"join_group_backoff"`
}

func (c *SubscriberConfig) setDefaults() {
	c.Connection.setDefaults()
	c.TopicCreation.setDefaults()
	if c.StartOffset == "" {
		c.StartOffset = StartEarliest
	}
	if c.KeyMetadataField == "" {
		c.KeyMetadataField = DefaultKeyMetadataField
	}
	if c.NackResendSleep == 0 {
		c.NackResendSleep = defaultNackResendSleep
	}
	if c.Concurrency == 0 {
		c.Concurrency = 1
	}
	if c.MaxBacklog == 0 {
		c.MaxBacklog = defaultMaxBacklog
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = defaultCloseTimeout
	}
	if c.MaxWait == 0 {
		c.MaxWait = defaultMaxWait
	}
	if c.QueueCapacity == 0 {
		c.QueueCapacity = defaultQueueCapacity
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = defaultHeartbeatInterval
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = defaultSessionTimeout
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = defaultRebalanceTimeout
	}
	if c.JoinGroupBackoff == 0 {
		c.JoinGroupBackoff = defaultJoinGroupBackoff
	}
}

// Validate reports every problem of the config (after defaults), joined
// with errors.Join; nil when the config is usable. It checks that named
// files exist but does not connect to anything.
func (c SubscriberConfig) Validate() error {
	c.setDefaults()
	var p problems
	c.Connection.validate(&p)
	c.TopicCreation.validate(&p)
	switch strings.ToLower(c.StartOffset) {
	case StartEarliest, StartLatest:
	default:
		p.add("start_offset: %q is not %q or %q", c.StartOffset, StartEarliest, StartLatest)
	}
	for _, d := range []struct {
		name string
		val  time.Duration
	}{
		{"nack_resend_sleep", c.NackResendSleep},
		{"nack_resend_max", c.NackResendMax},
		{"close_timeout", c.CloseTimeout},
		{"max_wait", c.MaxWait},
		{"heartbeat_interval", c.HeartbeatInterval},
		{"session_timeout", c.SessionTimeout},
		{"rebalance_timeout", c.RebalanceTimeout},
		{"join_group_backoff", c.JoinGroupBackoff},
	} {
		if d.val < 0 {
			p.add("%s: must not be negative, got %s", d.name, d.val)
		}
	}
	if c.Concurrency < 0 {
		p.add("concurrency: must not be negative, got %d", c.Concurrency)
	}
	if c.MaxBacklog < 0 {
		p.add("max_backlog: must not be negative, got %d", c.MaxBacklog)
	}
	if c.QueueCapacity < 0 {
		p.add("queue_capacity: must not be negative, got %d", c.QueueCapacity)
	}
	if c.HeartbeatInterval > 0 && c.SessionTimeout > 0 && c.HeartbeatInterval >= c.SessionTimeout {
		p.add("heartbeat_interval: %s must be shorter than session_timeout %s", c.HeartbeatInterval, c.SessionTimeout)
	}
	return p.join()
}

// String describes the config with the password redacted; safe to log.
func (c SubscriberConfig) String() string {
	return fmt.Sprintf("SubscriberConfig{%s %s consumer_group=%q start_offset=%q key_metadata_field=%q "+
		"nack_resend_sleep=%s close_timeout=%s max_wait=%s queue_capacity=%d heartbeat_interval=%s "+
		"session_timeout=%s rebalance_timeout=%s join_group_backoff=%s}",
		c.Connection, c.TopicCreation, c.ConsumerGroup, c.StartOffset, c.KeyMetadataField,
		c.NackResendSleep, c.CloseTimeout, c.MaxWait, c.QueueCapacity, c.HeartbeatInterval,
		c.SessionTimeout, c.RebalanceTimeout, c.JoinGroupBackoff)
}
