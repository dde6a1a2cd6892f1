package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"
)

// BenchmarkConsume publishes b.N messages to an in-process kfake broker and
// consumes them three times in the same run, each in a fresh group:
//
//   - adapter: through the Subscriber (ack per message; commits of the acked
//     prefix coalesced in the background);
//   - raw: kafka-go's Reader, FetchMessage then a synchronous CommitMessages
//     per message: at-least-once per message without the adapter;
//   - raw-fetch: kafka-go's Reader, FetchMessage only and one commit at the
//     end: the reader's ceiling, no per-message safety at all.
//
// Both clocks start at the first message, so group joins are not counted.
// It reports the rates and the adapter's ratio to each baseline:
//
//	go test -run '^$' -bench BenchmarkConsume -benchtime 20000x ./topics/kafka/
func BenchmarkConsume(b *testing.B) {
	brokers := startCluster(b)
	n := b.N
	topic := fmt.Sprintf("bench-%d", n)
	pub := newPublisher(b, testPublisherConfig(brokers), nil)
	payload := make([]byte, 300)
	for sent := 0; sent < n; {
		batch := make([]*message.Message, 0, 500)
		for ; sent < n && len(batch) < cap(batch); sent++ {
			batch = append(batch, message.NewMessage(fmt.Sprint(sent), payload))
		}
		if err := pub.Publish(topic, batch...); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	b.ResetTimer()
	adapter, err := consumeWithSubscriber(ctx, brokers, topic, n)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	raw, err := consumeWithRawReader(ctx, brokers, topic, n, "bench-raw", true)
	if err != nil {
		b.Fatal(err)
	}
	fetchOnly, err := consumeWithRawReader(ctx, brokers, topic, n, "bench-raw-fetch", false)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(adapter, "adapter-msgs/s")
	b.ReportMetric(raw, "raw-msgs/s")
	b.ReportMetric(fetchOnly, "raw-fetch-msgs/s")
	b.ReportMetric(adapter/raw, "adapter/raw")
	b.ReportMetric(adapter/fetchOnly, "adapter/raw-fetch")
}

// rate is messages per second over the time from the first to the last one.
func rate(n int, first time.Time) float64 {
	if n <= 1 {
		return 0
	}
	return float64(n-1) / time.Since(first).Seconds()
}

func consumeWithSubscriber(ctx context.Context, brokers []string, topic string, n int) (float64, error) {
	sub, err := newBenchSubscriber(brokers)
	if err != nil {
		return 0, err
	}
	defer sub.Close()
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		return 0, err
	}
	var first time.Time
	for i := 0; i < n; i++ {
		select {
		case m := <-ch:
			if i == 0 {
				first = time.Now()
			}
			m.Ack()
		case <-ctx.Done():
			return 0, fmt.Errorf("subscriber got %d of %d: %w", i, n, ctx.Err())
		}
	}
	return rate(n, first), nil
}

func newBenchSubscriber(brokers []string) (message.Subscriber, error) {
	return newSubscriberE(fastSubscriberConfig(brokers, "bench-adapter"))
}

func consumeWithRawReader(ctx context.Context, brokers []string, topic string, n int, group string, commitEach bool) (float64, error) {
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: brokers, Topic: topic, GroupID: group,
		StartOffset: kafkago.FirstOffset, CommitInterval: 0,
		MaxWait: 100 * time.Millisecond, MaxBytes: 10e6,
		HeartbeatInterval: 100 * time.Millisecond, SessionTimeout: 6 * time.Second,
		RebalanceTimeout: 5 * time.Second, JoinGroupBackoff: 100 * time.Millisecond,
	})
	defer r.Close()
	var first time.Time
	for i := 0; i < n; i++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return 0, fmt.Errorf("raw reader got %d of %d: %w", i, n, err)
		}
		if i == 0 {
			first = time.Now()
		}
		if commitEach || i == n-1 {
			if err := r.CommitMessages(ctx, m); err != nil {
				return 0, fmt.Errorf("raw commit: %w", err)
			}
		}
	}
	return rate(n, first), nil
}
