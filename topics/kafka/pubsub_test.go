package kafka_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/sagabridge/sagabridge/topics/kafka"
)

// The conformance suite runs twice per cluster:
//
//   - "group": every pub/sub a suite test builds shares one consumer group
//     per test (derived from the test's name; topics are unique per test
//     too, so tests do not rebalance each other). This is the production
//     mode, a work queue: ConsumerGroups true, and a new subscriber does
//     NOT receive what the group already consumed.
//   - "ephemeral": ConsumerGroup is empty, so every Subscribe call gets its
//     own group and reads the topic from the start:
//     NewSubscriberReceivesOldMessages true.
//
// Topics are created with one partition, so order holds across the whole
// topic: GuaranteedOrder true. It is declared only with a single subscriber
// (GuaranteedOrderWithSingleSubscriber): when several members of a group
// rebalance, the old owner's in-flight message can interleave with the new
// owner's replay of the uncommitted suffix.
func suiteFeatures(ephemeral bool) tests.Features {
	return tests.Features{
		ConsumerGroups:                      true,
		ExactlyOnceDelivery:                 false,
		GuaranteedOrder:                     true,
		GuaranteedOrderWithSingleSubscriber: true,
		Persistent:                          true,
		RestartServiceCommand:               nil,
		RequireSingleInstance:               false,
		NewSubscriberReceivesOldMessages:    ephemeral,
		// In ephemeral mode N subscribers each read all M messages (a
		// broadcast), so the full-size TestConcurrentSubscribe moves 50x
		// 5000 messages and takes minutes under -race; the full sizes run
		// in group mode.
		ForceShort: ephemeral,
	}
}

func runSuite(t *testing.T, brokers []string) {
	build := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		t.Helper()
		logger := watermill.NopLogger{}
		pub, err := kafka.NewPublisher(testPublisherConfig(brokers), logger)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := kafka.NewSubscriber(fastSubscriberConfig(brokers, group), logger)
		if err != nil {
			t.Fatal(err)
		}
		return pub, sub
	}
	t.Run("group", func(t *testing.T) {
		tests.TestPubSub(t, suiteFeatures(false),
			func(t *testing.T) (message.Publisher, message.Subscriber) {
				return build(t, groupFor(t))
			},
			build,
		)
	})
	t.Run("ephemeral", func(t *testing.T) {
		tests.TestPubSub(t, suiteFeatures(true),
			func(t *testing.T) (message.Publisher, message.Subscriber) {
				return build(t, "")
			},
			build,
		)
	})
}

// groupFor derives a consumer group from the (sub)test name, which the suite
// makes unique per test.
func groupFor(t *testing.T) string {
	sum := sha256.Sum256([]byte(t.Name()))
	return "test-" + hex.EncodeToString(sum[:8])
}

func TestPubSubKfake(t *testing.T) {
	runSuite(t, startCluster(t))
}

// TestPubSubExternal runs the same suite against a real cluster when
// KAFKA_BROKERS (comma-separated host:port) is set.
func TestPubSubExternal(t *testing.T) {
	brokers := externalBrokers()
	if brokers == nil {
		t.Skip("KAFKA_BROKERS not set")
	}
	runSuite(t, brokers)
}
