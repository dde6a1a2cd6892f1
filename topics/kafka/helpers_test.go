package kafka_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sagabridge/sagabridge/topics/kafka"
)

// startCluster runs an in-process Kafka-protocol broker for the test.
func startCluster(tb testing.TB, opts ...kfake.Opt) []string {
	tb.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		tb.Fatalf("start kfake: %v", err)
	}
	tb.Cleanup(c.Close)
	return c.ListenAddrs()
}

// externalBrokers returns KAFKA_BROKERS split on commas, or nil.
func externalBrokers() []string {
	v := strings.TrimSpace(os.Getenv("KAFKA_BROKERS"))
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// fastSubscriberConfig tunes group membership for tests: kfake finishes a
// rebalance as soon as every member rejoined, and members notice at their
// next heartbeat.
func fastSubscriberConfig(brokers []string, group string) kafka.SubscriberConfig {
	return kafka.SubscriberConfig{
		Connection:        kafka.Connection{Brokers: brokers, ClientID: "sagabridge-test"},
		TopicCreation:     kafka.TopicCreation{AutoCreateTopics: true},
		ConsumerGroup:     group,
		NackResendSleep:   5 * time.Millisecond,
		CloseTimeout:      500 * time.Millisecond,
		MaxWait:           100 * time.Millisecond,
		HeartbeatInterval: 100 * time.Millisecond,
		SessionTimeout:    6 * time.Second,
		RebalanceTimeout:  5 * time.Second,
		JoinGroupBackoff:  100 * time.Millisecond,
	}
}

func testPublisherConfig(brokers []string) kafka.PublisherConfig {
	return kafka.PublisherConfig{
		Connection:    kafka.Connection{Brokers: brokers, ClientID: "sagabridge-test"},
		TopicCreation: kafka.TopicCreation{AutoCreateTopics: true},
	}
}

func newPublisher(tb testing.TB, cfg kafka.PublisherConfig, logger watermill.LoggerAdapter) *kafka.Publisher {
	tb.Helper()
	p, err := kafka.NewPublisher(cfg, logger)
	if err != nil {
		tb.Fatalf("new publisher: %v", err)
	}
	tb.Cleanup(func() { _ = p.Close() })
	return p
}

func newSubscriberE(cfg kafka.SubscriberConfig) (*kafka.Subscriber, error) {
	return kafka.NewSubscriber(cfg, nil)
}

func newSubscriber(tb testing.TB, cfg kafka.SubscriberConfig, logger watermill.LoggerAdapter) *kafka.Subscriber {
	tb.Helper()
	s, err := kafka.NewSubscriber(cfg, logger)
	if err != nil {
		tb.Fatalf("new subscriber: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}
