package natsjs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// KeyFunc returns the ordering key of a message: messages with the same
// non-empty key are handed out one at a time, in stream order. An empty key
// means the message may run beside any other.
type KeyFunc func(topic string, msg *message.Message) string

// PartitionKey orders by the partition_key metadata the bridge and the
// examples set on what they publish.
func PartitionKey(_ string, msg *message.Message) string { return msg.Metadata.Get("partition_key") }

// orderedSubscriber is a Watermill subscriber on a durable JetStream pull
// consumer. Watermill-nats's own subscriber blocks a subscription until each
// message is acked, so concurrency there means several queue subscribers
// and no order at all; this one hands out up to Concurrency messages at
// once, never two with the same key, and acks each after Watermill did.
type orderedSubscriber struct {
	ps      *PubSub
	js      jetstream.JetStream
	cfg     Config
	closing chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

func newOrderedSubscriber(ps *PubSub, cfg Config) (*orderedSubscriber, error) {
	js, err := jetstream.New(ps.conn)
	if err != nil {
		return nil, fmt.Errorf("nats: jetstream: %w", err)
	}
	return &orderedSubscriber{ps: ps, js: js, cfg: cfg, closing: make(chan struct{})}, nil
}

// ConsumerName is the durable consumer of a group on a topic.
func ConsumerName(group, topic string) string { return group + "_" + StreamName(topic) }

func (s *orderedSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	select {
	case <-s.closing:
		return nil, errors.New("nats: subscriber is closed")
	default:
	}
	if err := s.ps.EnsureStream(topic); err != nil {
		return nil, err
	}
	cons, err := s.js.CreateOrUpdateConsumer(ctx, StreamName(topic), jetstream.ConsumerConfig{
		Durable:       ConsumerName(s.cfg.ConsumerGroup, topic),
		FilterSubject: topic,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.AckWait,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: s.cfg.MaxAckPending,
		MaxDeliver:    -1,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: consumer for %s: %w", topic, err)
	}
	d := &dispatch{
		sub:   s,
		topic: topic,
		out:   make(chan *message.Message),
		in:    make(chan jetstream.Msg, s.cfg.Concurrency),
		done:  make(chan string, s.cfg.Concurrency),
		slots: make(chan struct{}, s.cfg.Concurrency),
		busy:  map[string][]*pending{},
	}
	ctx, cancel := context.WithCancel(ctx)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case d.in <- m:
		case <-ctx.Done():
			_ = m.Nak() // hand it back now rather than after ackWait
		}
	}, jetstream.PullMaxMessages(s.cfg.Concurrency*2))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("nats: consume %s: %w", topic, err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
		case <-s.closing:
			cancel()
		}
		cc.Stop()
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		d.run(ctx)
	}()
	return d.out, nil
}

func (s *orderedSubscriber) Close() error {
	s.once.Do(func() { close(s.closing) })
	s.wg.Wait()
	return nil
}

// pending is a message waiting for, or in, its turn.
type pending struct {
	js  jetstream.Msg
	msg *message.Message
	key string
}

// dispatch is one subscription's scheduler. Only run touches busy.
type dispatch struct {
	sub      *orderedSubscriber
	topic    string
	out      chan *message.Message
	in       chan jetstream.Msg
	done     chan string
	slots    chan struct{}
	busy     map[string][]*pending // key in flight → messages queued behind it
	inflight sync.WaitGroup
}

func (d *dispatch) run(ctx context.Context) {
	// ready holds messages whose key is free (or empty), in arrival order,
	// waiting for a slot.
	var ready []*pending
	defer func() {
		// Nothing more is delivered: hand back what waits, let in-flight
		// messages finish, then close the channel Watermill reads.
		for _, p := range ready {
			_ = p.js.Nak()
		}
		for _, q := range d.busy {
			for _, p := range q {
				_ = p.js.Nak()
			}
		}
		go func() {
			for range d.done {
			}
		}()
		d.inflight.Wait()
		close(d.out)
		close(d.done)
	}()
	for {
		var slots chan struct{}
		if len(ready) > 0 {
			slots = d.slots
		}
		select {
		case <-ctx.Done():
			return
		case slots <- struct{}{}:
			p := ready[0]
			ready = ready[1:]
			d.inflight.Add(1)
			go d.deliver(ctx, p)
		case key := <-d.done:
			// The key's message is settled: the next one of that key runs.
			if q := d.busy[key]; len(q) > 0 {
				ready = append(ready, q[0])
				d.busy[key] = q[1:]
			} else {
				delete(d.busy, key)
			}
		case m := <-d.in:
			p, err := d.convert(m)
			if err != nil {
				// Not a message Watermill can carry (a header repeated):
				// give it back; ackWait limits how often this repeats.
				d.sub.cfg.Logger.Error("nats: cannot read message", err, watermill.LogFields{"topic": d.topic})
				_ = m.NakWithDelay(d.sub.cfg.AckWait)
				continue
			}
			if p.key != "" {
				if q, inFlight := d.busy[p.key]; inFlight {
					d.busy[p.key] = append(q, p)
					continue
				}
				d.busy[p.key] = nil
			}
			ready = append(ready, p)
		}
	}
}

func (d *dispatch) convert(m jetstream.Msg) (*pending, error) {
	msg, err := (&wmnats.NATSMarshaler{}).Unmarshal(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	if err != nil {
		return nil, err
	}
	if md, err := m.Metadata(); err == nil {
		msg.Metadata.Set(MetaDeliveries, strconv.FormatUint(md.NumDelivered, 10))
		msg.Metadata.Set(MetaStoredAt, md.Timestamp.UTC().Format(time.RFC3339Nano))
	}
	return &pending{js: m, msg: msg, key: d.sub.cfg.Key(d.topic, msg)}, nil
}

// deliver hands one message to Watermill and settles it with the broker:
// ack (waiting for the server's confirmation) after Watermill acked,
// nak with backoff after a nack, nak at once when the subscription ends.
func (d *dispatch) deliver(ctx context.Context, p *pending) {
	defer d.inflight.Done()
	defer func() {
		<-d.slots
		if p.key != "" {
			d.done <- p.key
		}
	}()
	msgCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.msg.SetContext(msgCtx)
	select {
	case d.out <- p.msg:
	case <-ctx.Done():
		_ = p.js.Nak()
		return
	}
	timeout := time.NewTimer(d.sub.cfg.AckWait)
	defer timeout.Stop()
	select {
	case <-p.msg.Acked():
		ackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := p.js.DoubleAck(ackCtx); err != nil {
			// The broker will redeliver: at-least-once, never lost.
			d.sub.cfg.Logger.Error("nats: ack failed; message will be redelivered", err, watermill.LogFields{"topic": d.topic, "uuid": p.msg.UUID})
		}
	case <-p.msg.Nacked():
		n := uint64(1)
		if md, err := p.js.Metadata(); err == nil {
			n = md.NumDelivered
		}
		_ = p.js.NakWithDelay(d.sub.cfg.Retry(n))
	case <-timeout.C:
		// The handler outlived ackWait: the broker redelivers by itself.
	}
}
