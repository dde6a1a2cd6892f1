package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/segmentio/kafka-go"
)

// Stored is one record of a topic read as it is stored, outside any
// consumer group (tools that list or scan a topic).
type Stored struct {
	Partition int
	Offset    int64
	Time      time.Time
	Key       []byte
	// Message is the record as the subscriber would deliver it.
	Message *message.Message
}

// Reader reads whole topics without a consumer group: tools that list a
// dead-letter topic or summarise outcomes.
type Reader struct {
	conn   Connection
	net    network
	client *kafka.Client
}

// NewReader connects with c's TLS and SASL settings.
func NewReader(c Connection) (*Reader, error) {
	c.setDefaults()
	var p problems
	c.validate(&p)
	if err := p.join(); err != nil {
		return nil, err
	}
	n, err := buildNetwork(c, Network{})
	if err != nil {
		return nil, err
	}
	return &Reader{conn: c, net: n, client: &kafka.Client{Addr: kafka.TCP(c.Brokers...), Transport: n.transport, Timeout: c.DialTimeout}}, nil
}

// Close releases the connections.
func (r *Reader) Close() { r.net.close() }

// Client is the admin client, for offsets and topic creation.
func (r *Reader) Client() *kafka.Client { return r.client }

// Bounds are a partition's first and next offsets.
type Bounds struct{ First, Next int64 }

// Partitions returns each partition's bounds; a missing topic has none.
func (r *Reader) Partitions(ctx context.Context, topic string) (map[int]Bounds, error) {
	md, err := r.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	var req []kafka.OffsetRequest
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
				return map[int]Bounds{}, nil
			}
			return nil, fmt.Errorf("metadata of %s: %w", topic, t.Error)
		}
		for _, p := range t.Partitions {
			req = append(req, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	out := map[int]Bounds{}
	if len(req) == 0 {
		return out, nil
	}
	resp, err := r.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	if err != nil {
		return nil, fmt.Errorf("offsets of %s: %w", topic, err)
	}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		out[po.Partition] = Bounds{First: po.FirstOffset, Next: po.LastOffset}
	}
	return out, nil
}

// OffsetAt returns, per partition, the first offset stored at or after t
// (the partition's next offset when none is).
func (r *Reader) OffsetAt(ctx context.Context, topic string, t time.Time) (map[int]int64, error) {
	parts, err := r.Partitions(ctx, topic)
	if err != nil || len(parts) == 0 {
		return map[int]int64{}, err
	}
	var req []kafka.OffsetRequest
	for p := range parts {
		req = append(req, kafka.TimeOffsetOf(p, t))
	}
	resp, err := r.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	if err != nil {
		return nil, fmt.Errorf("offsets of %s at %s: %w", topic, t, err)
	}
	out := map[int]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("offsets of %s/%d at %s: %w", topic, po.Partition, t, po.Error)
		}
		// The broker answers the first offset whose time is at or after
		// t; -1 (or none) when there is none.
		off := parts[po.Partition].Next
		for o := range po.Offsets {
			if o >= 0 && o < off {
				off = o
			}
		}
		out[po.Partition] = off
	}
	return out, nil
}

// ErrStop ends a Read early without an error.
var ErrStop = errors.New("stop")

// Read calls fn with every record of topic from the offsets in from (a
// partition left out starts at its first offset) up to the end it had
// when Read began, partition by partition in partition order.
func (r *Reader) Read(ctx context.Context, topic string, from map[int]int64, fn func(Stored) error) error {
	parts, err := r.Partitions(ctx, topic)
	if err != nil {
		return err
	}
	ids := make([]int, 0, len(parts))
	for p := range parts {
		ids = append(ids, p)
	}
	sort.Ints(ids)
	for _, p := range ids {
		b := parts[p]
		start := b.First
		if o, ok := from[p]; ok && o > start {
			start = o
		}
		if start >= b.Next {
			continue
		}
		if err := r.readPartition(ctx, topic, p, start, b.Next, fn); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

func (r *Reader) readPartition(ctx context.Context, topic string, partition int, start, end int64, fn func(Stored) error) error {
	rd := kafka.NewReader(kafka.ReaderConfig{
		Brokers: r.conn.Brokers, Topic: topic, Partition: partition, Dialer: r.net.dialer,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 200 * time.Millisecond,
		Logger: nil, ErrorLogger: kafka.LoggerFunc(func(string, ...any) {}),
	})
	defer rd.Close()
	if err := rd.SetOffset(start); err != nil {
		return err
	}
	for {
		m, err := rd.ReadMessage(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read %s/%d: %w", topic, partition, err)
		}
		uuid, md := fromRecord(m, DefaultKeyMetadataField)
		msg := message.NewMessage(uuid, m.Value)
		msg.Metadata = md
		if err := fn(Stored{Partition: m.Partition, Offset: m.Offset, Time: m.Time, Key: m.Key, Message: msg}); err != nil {
			return err
		}
		if m.Offset+1 >= end {
			return nil
		}
	}
}

// GroupLag is how many records of topic the consumer group has not
// committed yet: per partition, the next offset minus the group's
// committed one (all of them when it committed none), summed.
func (r *Reader) GroupLag(ctx context.Context, group, topic string) (int64, error) {
	parts, err := r.Partitions(ctx, topic)
	if err != nil || len(parts) == 0 {
		return 0, err
	}
	ids := make([]int, 0, len(parts))
	for p := range parts {
		ids = append(ids, p)
	}
	resp, err := r.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		return 0, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	if resp.Error != nil {
		return 0, fmt.Errorf("offsets of group %s: %w", group, resp.Error)
	}
	var lag int64
	committed := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error == nil && p.CommittedOffset >= 0 {
			committed[p.Partition] = p.CommittedOffset
		}
	}
	for p, b := range parts {
		from := b.First
		if c, ok := committed[p]; ok && c > from {
			from = c
		}
		lag += max(b.Next-from, 0)
	}
	return lag, nil
}
