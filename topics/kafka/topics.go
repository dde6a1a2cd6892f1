package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// topicAdmin creates and checks topics. It remembers topics it has seen
// exist so that Publish does not pay an admin round trip per call.
type topicAdmin struct {
	client            *kafka.Client
	partitions        int
	replicationFactor int

	mu    sync.Mutex
	known map[string]struct{}
}

func newTopicAdmin(c Connection, tc TopicCreation, transport *kafka.Transport, timeout time.Duration) *topicAdmin {
	return &topicAdmin{
		client: &kafka.Client{
			Addr:      kafka.TCP(c.Brokers...),
			Transport: transport,
			Timeout:   timeout,
		},
		partitions:        tc.TopicPartitions,
		replicationFactor: tc.TopicReplicationFactor,
		known:             map[string]struct{}{},
	}
}

func (a *topicAdmin) isKnown(topic string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.known[topic]
	return ok
}

func (a *topicAdmin) remember(topic string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.known[topic] = struct{}{}
}

// ensure creates topic unless it exists, then waits until the cluster's
// metadata lists it with a leader for every partition: on a real cluster
// creation is asynchronous, and a writer racing it would fail.
func (a *topicAdmin) ensure(ctx context.Context, topic string) error {
	if a.isKnown(topic) {
		return nil
	}
	resp, err := a.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{
			Topic:             topic,
			NumPartitions:     a.partitions,
			ReplicationFactor: a.replicationFactor,
		}},
	})
	if err != nil {
		return fmt.Errorf("create topic %q: %w", topic, err)
	}
	if err := resp.Errors[topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topic %q: %w", topic, err)
	}
	for {
		ok, err := a.exists(ctx, topic)
		if err == nil && ok {
			a.remember(topic)
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("not visible in metadata yet")
			}
			return fmt.Errorf("wait for topic %q: %w (%w)", topic, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// exists reports whether the metadata lists topic with a leader for every
// partition.
func (a *topicAdmin) exists(ctx context.Context, topic string) (bool, error) {
	md, err := a.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return false, fmt.Errorf("metadata for topic %q: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
				return false, nil
			}
			return false, fmt.Errorf("metadata for topic %q: %w", topic, t.Error)
		}
		if len(t.Partitions) == 0 {
			return false, nil
		}
		for _, p := range t.Partitions {
			if p.Leader.Host == "" {
				return false, nil
			}
		}
		return true, nil
	}
	return false, nil
}

// check returns an error when topic does not exist; used when topics are not
// auto-created so that a wrong name fails at SubscribeInitialize instead of
// a silent wait for a partition assignment that never comes.
func (a *topicAdmin) check(ctx context.Context, topic string) error {
	if a.isKnown(topic) {
		return nil
	}
	ok, err := a.exists(ctx, topic)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("topic %q does not exist and auto_create_topics is off", topic)
	}
	a.remember(topic)
	return nil
}
