package natsjs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stored is one message as JetStream keeps it.
type Stored struct {
	Seq     uint64
	Stored  time.Time
	Subject string
	Headers nats.Header
	Data    []byte
}

// ErrStop, returned by ReadTopic's callback, ends the read without an error.
var ErrStop = errors.New("stop")

// ReadTopic calls fn for every message of a topic's stream stored from
// since on (zero: from the start), oldest first, up to the last message
// stored when it began. It consumes nothing: it reads with an ordered
// consumer, which the server removes when it goes idle. A missing stream
// reads as empty.
func ReadTopic(ctx context.Context, js jetstream.JetStream, topic string, since time.Time, fn func(Stored) error) error {
	st, err := js.Stream(ctx, StreamName(topic))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("nats: stream of %s: %w", topic, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("nats: stream info of %s: %w", topic, err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{topic}, InactiveThreshold: time.Minute}
	if !since.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	upper := info.State.LastSeq
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("nats: read %s: %w", topic, err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// No wait: the server answers at once with what it has.
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return fmt.Errorf("nats: fetch %s: %w", topic, err)
		}
		got, last := 0, false
		var fnErr error
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			last = md.NumPending == 0 || md.Sequence.Stream >= upper
			if fnErr != nil || md.Sequence.Stream > upper {
				continue
			}
			fnErr = fn(Stored{Seq: md.Sequence.Stream, Stored: md.Timestamp, Subject: m.Subject(), Headers: m.Headers(), Data: m.Data()})
		}
		if fnErr != nil {
			if errors.Is(fnErr, ErrStop) {
				return nil
			}
			return fnErr
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("nats: fetch %s: %w", topic, err)
		}
		if last {
			return nil
		}
		if got == 0 {
			ci, err := cons.Info(ctx)
			if err != nil || ci.NumPending == 0 {
				return nil
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
