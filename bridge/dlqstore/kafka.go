package dlqstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"
	"golang.org/x/time/rate"

	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/topics/kafka"
)

// KafkaStore is the dead-letter topic of a bridge on Kafka.
//
// A Kafka topic cannot delete one record, so what `dlq purge` and `dlq
// replay` remove is recorded instead: each handled dead letter gets an
// acknowledgement, keyed "<partition>/<offset>", on a compacted topic
// beside the dead-letter topic (AckTopic: "<dlq topic>.acks"). Listing,
// counting, replaying and the depth gauge skip acknowledged dead letters;
// the records themselves go when the topic's retention drops them.
//
// Replay is at least once: a dead letter is re-published to its origin
// topic, then acknowledged; a replay interrupted between the two publishes
// that one again when run again (Kafka has no message-id dedupe; the
// bridge's starts are idempotent by instance ID, and raises on finished
// instances follow the route's onFinished policy).
type KafkaStore struct {
	r     *kafka.Reader
	pub   *kafka.Publisher
	topic string
	acks  string
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// AckTopic is where a Kafka dead-letter topic's acknowledgements go.
func AckTopic(dlqTopic string) string { return dlqTopic + ".acks" }

// OpenKafka connects to the cluster; Close releases it.
func OpenKafka(c kafka.Connection, dlqTopic string) (*KafkaStore, error) {
	if dlqTopic == "" {
		return nil, errors.New("dlqstore: topic is empty")
	}
	r, err := kafka.NewReader(c)
	if err != nil {
		return nil, fmt.Errorf("dlqstore: %w", err)
	}
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{Connection: c}, watermill.NopLogger{})
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("dlqstore: %w", err)
	}
	return &KafkaStore{r: r, pub: pub, topic: dlqTopic, acks: AckTopic(dlqTopic), Now: time.Now}, nil
}

// Close releases the connections.
func (s *KafkaStore) Close() error {
	err := s.pub.Close()
	s.r.Close()
	return err
}

// Topic is the dead-letter topic.
func (s *KafkaStore) Topic() string { return s.topic }

// ack is the value of an acknowledgement.
type ack struct {
	Action string    `json:"action"` // purged or replayed
	At     time.Time `json:"at"`
}

// acked reads the acknowledgements: ref → action.
func (s *KafkaStore) acked(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	err := s.r.Read(ctx, s.acks, nil, func(m kafka.Stored) error {
		var a ack
		if len(m.Message.Payload) > 0 && json.Unmarshal(m.Message.Payload, &a) == nil {
			out[string(m.Key)] = a.Action
		}
		return nil
	})
	return out, err
}

func ref(partition int, offset int64) string {
	return strconv.Itoa(partition) + "/" + strconv.FormatInt(offset, 10)
}

// scan calls fn with every dead letter not yet acknowledged, stored at
// or after since (zero: all), oldest first per partition.
func (s *KafkaStore) scan(ctx context.Context, since time.Time, fn func(Item) error) error {
	done, err := s.acked(ctx)
	if err != nil {
		return err
	}
	var from map[int]int64
	if !since.IsZero() {
		// A dead letter is stored after it failed: starting at the
		// failure bound loses nothing.
		if from, err = s.r.OffsetAt(ctx, s.topic, since.Add(-time.Second)); err != nil {
			return err
		}
	}
	err = s.r.Read(ctx, s.topic, from, func(m kafka.Stored) error {
		id := ref(m.Partition, m.Offset)
		if done[id] != "" {
			return nil
		}
		it := Item{Seq: uint64(m.Offset), Ref: id, StoredAt: m.Time}
		it.Entry, it.Err = dlq.Parse(m.Message)
		return fn(it)
	})
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}

// Count is how many dead letters are not acknowledged.
func (s *KafkaStore) Count(ctx context.Context) (uint64, error) {
	var n uint64
	err := s.scan(ctx, time.Time{}, func(Item) error { n++; return nil })
	return n, err
}

// List calls fn for each unacknowledged dead letter f selects.
func (s *KafkaStore) List(ctx context.Context, f Filter, fn func(Item) error) error {
	return s.scan(ctx, f.Since, func(it Item) error {
		if !f.Match(it) {
			return nil
		}
		return fn(it)
	})
}

// Get returns one dead letter by "<partition>/<offset>" or by its
// dead-letter message ID ("dlq-<original id>", or the original id alone).
func (s *KafkaStore) Get(ctx context.Context, id string) (Item, error) {
	var found *Item
	err := s.scan(ctx, time.Time{}, func(it Item) error {
		if it.Ref == id || it.Entry.ID == id || it.Entry.ID == "dlq-"+id {
			found = &it
			return ErrStop
		}
		return nil
	})
	if err != nil {
		return Item{}, err
	}
	if found == nil {
		return Item{}, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	return *found, nil
}

// Purge acknowledges the dead letters f selects and returns how many.
func (s *KafkaStore) Purge(ctx context.Context, f Filter) (int, error) {
	var refs []string
	if err := s.List(ctx, f, func(it Item) error { refs = append(refs, it.Ref); return nil }); err != nil {
		return 0, err
	}
	if err := s.ensureAckTopic(ctx); err != nil {
		return 0, err
	}
	for i, r := range refs {
		if err := s.acknowledge(r, "purged"); err != nil {
			return i, err
		}
	}
	return len(refs), nil
}

// ensureAckTopic creates the compacted acknowledgement topic.
func (s *KafkaStore) ensureAckTopic(ctx context.Context) error {
	resp, err := s.r.Client().CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{
		Topic: s.acks, NumPartitions: 1, ReplicationFactor: -1,
		ConfigEntries: []kafkago.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}},
	}}})
	if err != nil {
		return fmt.Errorf("dlqstore: create %s: %w", s.acks, err)
	}
	if err := resp.Errors[s.acks]; err != nil && !errors.Is(err, kafkago.TopicAlreadyExists) {
		return fmt.Errorf("dlqstore: create %s: %w", s.acks, err)
	}
	return nil
}

func (s *KafkaStore) acknowledge(r, action string) error {
	b, err := json.Marshal(ack{Action: action, At: s.Now().UTC()})
	if err != nil {
		return err
	}
	m := message.NewMessage("ack-"+strings.ReplaceAll(r, "/", "-")+"-"+action, b)
	m.Metadata.Set(kafka.DefaultKeyMetadataField, r)
	if err := s.pub.Publish(s.acks, m); err != nil {
		return fmt.Errorf("dlqstore: acknowledge %s: %w", r, err)
	}
	return nil
}

// Replay re-publishes the dead letters opts selects to their origin
// topics, each acknowledged after its re-publish was stored. A run again
// after an interruption goes on with what is not acknowledged.
func (s *KafkaStore) Replay(ctx context.Context, opts ReplayOptions) (ReplayResult, error) {
	res := ReplayResult{Topics: map[string]int{}}
	selected, err := s.selectForReplay(ctx, opts, &res)
	if err != nil {
		return res, err
	}
	if opts.DryRun {
		for _, it := range selected {
			res.Replayed++
			res.Topics[it.Entry.Failure.OriginTopic]++
		}
		res.Done = true
		return res, nil
	}
	if len(selected) > 0 {
		if err := s.ensureAckTopic(ctx); err != nil {
			return res, err
		}
	}
	var limiter *rate.Limiter
	if opts.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(opts.Rate), 1)
	}
	for _, it := range selected {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if limiter != nil {
			if err := limiter.Wait(ctx); err != nil {
				return res, err
			}
		}
		if err := s.replayOne(ctx, it, opts, &res); err != nil {
			return res, err
		}
	}
	res.Done = opts.Limit == 0 || len(selected) < opts.Limit
	return res, nil
}

// selectForReplay is what a replay with opts takes, oldest first, at most
// opts.Limit; res counts what it scanned, skipped and kept.
func (s *KafkaStore) selectForReplay(ctx context.Context, opts ReplayOptions, res *ReplayResult) ([]Item, error) {
	var selected []Item
	err := s.scan(ctx, opts.Filter.Since, func(it Item) error {
		res.Scanned++
		switch {
		case it.Entry.Failure.OriginTopic == "":
			res.Unreadable++
		case !opts.Filter.Match(it):
			res.Skipped++
		default:
			if opts.Limit > 0 && len(selected) >= opts.Limit {
				return nil
			}
			if opts.Check != nil {
				if err := opts.Check(it); err != nil {
					res.keep(it, err) // not acknowledged: it stays listed
					return nil
				}
			}
			selected = append(selected, it)
		}
		return nil
	})
	return selected, err
}

// replayOne re-publishes it to its origin topic, then acknowledges it; one
// whose truncated original cannot be read is kept.
func (s *KafkaStore) replayOne(ctx context.Context, it Item, opts ReplayOptions, res *ReplayResult) error {
	msg := it.Entry.Replay()
	if it.Entry.Truncated != "" {
		orig, err := s.original(ctx, it.Entry)
		if err != nil {
			res.keep(it, err)
			return nil
		}
		msg = orig
	}
	topic := it.Entry.Failure.OriginTopic
	if err := s.pub.Publish(topic, msg); err != nil {
		return fmt.Errorf("replay dead letter %s to %s: %w", it.Ref, topic, err)
	}
	if opts.AfterPublish != nil {
		if err := opts.AfterPublish(it); err != nil {
			return err
		}
	}
	if err := s.acknowledge(it.Ref, "replayed"); err != nil {
		return err
	}
	res.Replayed++
	res.Topics[topic]++
	if opts.Progress != nil {
		opts.Progress(*res)
	}
	return nil
}

// original reads the record a truncated dead letter points at.
func (s *KafkaStore) original(ctx context.Context, e dlq.Entry) (*message.Message, error) {
	broker, at := dlq.ParsePointer(e.Failure.Origin.Pointer)
	if broker != "kafka" {
		return nil, fmt.Errorf("truncated copy and no Kafka pointer to the original (%q)", e.Failure.Origin.Pointer)
	}
	p, perr := strconv.Atoi(at["partition"])
	o, oerr := strconv.ParseInt(at["offset"], 10, 64)
	if perr != nil || oerr != nil || at["topic"] == "" {
		return nil, fmt.Errorf("truncated copy: bad pointer %q", e.Failure.Origin.Pointer)
	}
	var out *message.Message
	err := s.r.Read(ctx, at["topic"], map[int]int64{p: o}, func(m kafka.Stored) error {
		if m.Partition == p && m.Offset == o {
			out = m.Message
			return kafka.ErrStop
		}
		if m.Partition == p {
			return kafka.ErrStop // past it: the record is gone
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("truncated copy: read the original (%s): %w", e.Failure.Origin.Pointer, err)
	}
	if out == nil {
		return nil, fmt.Errorf("truncated copy: the original (%s) is no longer in its topic", e.Failure.Origin.Pointer)
	}
	for k := range out.Metadata {
		if dlq.IsDeliveryMetadata(k) {
			delete(out.Metadata, k)
		}
	}
	out.UUID = strings.TrimPrefix(e.ID, "dlq-") + "/replay"
	return out, nil
}
