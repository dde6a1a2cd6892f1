package natsjs_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// BenchmarkConsume publishes b.N 300-byte messages to an embedded
// nats-server and consumes them in the same run:
//
//   - adapter-1 / adapter-16: through the bridge's subscriber with 1 and 16
//     messages in flight (acks not confirmed, the bridge's default);
//
//   - raw: nats.go's jetstream pull consumer, DoubleAck per message, one at
//     a time: the same safety without the adapter;
//
//   - raw-async: the same consumer with fire-and-forget acks: the ceiling.
//
//     go test -run '^$' -bench BenchmarkConsume -benchtime 20000x ./topics/natsjs/
func BenchmarkConsume(b *testing.B) {
	srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	n := b.N
	topic := fmt.Sprintf("bench.consume.%d", n)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: natsjs.StreamName(topic), Subjects: []string{topic}}); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 300)
	for i := 0; i < n; i++ {
		if _, err := js.PublishAsync(topic, payload); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		b.Fatal("publish did not complete")
	}

	b.ResetTimer()
	adapter16 := consumeAdapter(ctx, b, srv.ClientURL(), topic, n, 16)
	b.StopTimer()
	adapter1 := consumeAdapter(ctx, b, srv.ClientURL(), topic, n, 1)
	raw := consumeRaw(ctx, b, js, topic, n, true)
	rawAsync := consumeRaw(ctx, b, js, topic, n, false)
	b.ReportMetric(adapter16, "adapter-16-msgs/s")
	b.ReportMetric(adapter1, "adapter-1-msgs/s")
	b.ReportMetric(raw, "raw-msgs/s")
	b.ReportMetric(rawAsync, "raw-async-msgs/s")
	b.ReportMetric(adapter16/raw, "adapter-16/raw")
	b.ReportMetric(adapter16/rawAsync, "adapter-16/raw-async")
}

func consumeAdapter(ctx context.Context, b *testing.B, url, topic string, n, concurrency int) float64 {
	ps, err := natsjs.New(natsjs.Config{URL: url, ConsumerGroup: fmt.Sprintf("bench-adapter-%d", concurrency), Concurrency: concurrency})
	if err != nil {
		b.Fatal(err)
	}
	defer ps.Close()
	ch, err := ps.Subscriber().Subscribe(ctx, topic)
	if err != nil {
		b.Fatal(err)
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
			b.Fatalf("adapter got %d of %d", i, n)
		}
	}
	return rate(n, first)
}

func consumeRaw(ctx context.Context, b *testing.B, js jetstream.JetStream, topic string, n int, confirm bool) float64 {
	cons, err := js.CreateOrUpdateConsumer(ctx, natsjs.StreamName(topic), jetstream.ConsumerConfig{
		Durable: fmt.Sprintf("bench-raw-%v", confirm), AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: topic,
	})
	if err != nil {
		b.Fatal(err)
	}
	it, err := cons.Messages()
	if err != nil {
		b.Fatal(err)
	}
	defer it.Stop()
	var first time.Time
	var got atomic.Int64
	for i := 0; i < n; i++ {
		m, err := it.Next()
		if err != nil {
			b.Fatalf("raw got %d of %d: %v", i, n, err)
		}
		if i == 0 {
			first = time.Now()
		}
		if confirm {
			err = m.DoubleAck(ctx)
		} else {
			err = m.Ack()
		}
		if err != nil {
			b.Fatal(err)
		}
		got.Add(1)
	}
	return rate(n, first)
}

func rate(n int, first time.Time) float64 {
	if n <= 1 {
		return 0
	}
	return float64(n-1) / time.Since(first).Seconds()
}
