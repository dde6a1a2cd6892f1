package natsjs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sagabridge/sagabridge/topics"
)

// PartitionKey orders by the partition_key metadata the bridge and the
// examples set on what they publish.
func PartitionKey(_ string, msg *message.Message) (string, any) {
	return msg.Metadata.Get("partition_key"), nil
}

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
		in:    make(chan *pending, s.cfg.Concurrency),
		done:  make(chan string, s.cfg.Concurrency),
		retry: make(chan *pending),
		slots: make(chan struct{}, s.cfg.Concurrency),
		busy:  map[string][]*pending{},
		seen:  newSeen(),
	}
	ctx, cancel := context.WithCancel(ctx)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if ctx.Err() != nil {
			_ = m.Nak() // hand it back now rather than after ackWait
			return
		}
		// A redelivery of a message this subscription still holds, or has
		// just acked, is not handled a second time: the server redelivered
		// it because the process missed the ack wait (stopped, starved),
		// and the copy it holds settles it (acks go by stream sequence).
		// The metadata is parsed from the reply subject: once per message.
		var seq uint64
		md, err := m.Metadata()
		if err == nil {
			seq = md.Sequence.Stream
		} else {
			md = nil
		}
		switch d.seen.admit(seq) {
		case seenHeld:
			return
		case seenAcked:
			_ = m.Ack()
			return
		}
		// The ordering key (the bridge decodes and routes the event to
		// find it) is worked out here, not in the dispatch loop, which
		// keeps beating the heartbeats of what it holds meanwhile.
		p := d.convert(m, md)
		p.seq = seq
		select {
		case d.in <- p:
		case <-ctx.Done():
			d.nak(p)
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
		// Stop, not Drain: draining kept pull requests alive and bounced
		// messages between a closing subscription and its successor.
		// Messages the client had prefetched come back after ackWait.
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
	// keyed is what the Keyer returned beside the key.
	keyed any
	// storedAt is when JetStream stored the message (zero if unknown).
	storedAt time.Time
	// readErr says the message could not be carried as it was stored.
	readErr string
	// retries counts local redeliveries after a nack (keyed messages only).
	retries uint64
	// delivered is the broker's delivery count when this message arrived.
	delivered uint64
	// seq is the message's stream sequence (0 if unknown).
	seq uint64
}

// dispatch is one subscription's scheduler. Only run touches busy.
type dispatch struct {
	sub      *orderedSubscriber
	topic    string
	out      chan *message.Message
	in       chan *pending
	done     chan string
	retry    chan *pending
	slots    chan struct{}
	busy     map[string][]*pending // key in flight → messages queued behind it
	inflight sync.WaitGroup
	seen     *seen
}

func (d *dispatch) run(ctx context.Context) {
	// ready holds messages whose key is free (or empty), in arrival order,
	// waiting for a slot.
	var ready []*pending
	defer func() {
		// Nothing more is delivered: hand back what waits, let in-flight
		// messages finish, then close the channel Watermill reads.
		for drained := false; !drained; {
			select {
			case p := <-d.in:
				d.nak(p)
			default:
				drained = true
			}
		}
		for _, p := range ready {
			d.nak(p)
		}
		for _, q := range d.busy {
			for _, p := range q {
				d.nak(p)
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
	// Messages waiting here were delivered by the server, whose ack wait
	// runs for them too: tell it they are being worked on, or a slow engine
	// makes them expire and another consumer handles them a second time.
	beat := time.NewTicker(d.sub.cfg.AckWait / 3)
	defer beat.Stop()
	// What waits behind a busy key (an instance whose event is being
	// handled, or parked) is the backlog. It has a budget of its own
	// (MaxBacklog, maxBacklogBytes), apart from the window of messages
	// whose key is free (readyMax + Concurrency in flight), so a busy or
	// parked instance's events do not hold up every other instance's: only
	// when the backlog is full does reading stop.
	readyMax := 3 * d.sub.cfg.Concurrency
	var waiting, waitingBytes int
	for {
		var slots chan struct{}
		if len(ready) > 0 {
			slots = d.slots
		}
		in := d.in
		if len(ready) >= readyMax || waiting >= d.sub.cfg.MaxBacklog || waitingBytes >= maxBacklogBytes {
			in = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			for _, p := range ready {
				_ = p.js.InProgress()
			}
			for _, q := range d.busy {
				for _, p := range q {
					_ = p.js.InProgress()
				}
			}
		case slots <- struct{}{}:
			p := ready[0]
			ready = ready[1:]
			d.inflight.Add(1)
			go d.deliver(ctx, p)
		case p := <-d.retry:
			// A nacked keyed message goes first again: its key stays held.
			ready = append([]*pending{p}, ready...)
		case key := <-d.done:
			// The key's message is settled: the next one of that key runs.
			if q := d.busy[key]; len(q) > 0 {
				ready = append(ready, q[0])
				d.busy[key] = q[1:]
				waiting--
				waitingBytes -= len(q[0].msg.Payload)
			} else {
				delete(d.busy, key)
			}
		case p := <-in:
			if p.key != "" {
				if q, inFlight := d.busy[p.key]; inFlight {
					d.busy[p.key] = append(q, p)
					waiting++
					waitingBytes += len(p.msg.Payload)
					continue
				}
				d.busy[p.key] = nil
			}
			ready = append(ready, p)
		}
	}
}

// maxBacklogBytes bounds the payloads a subscription holds waiting behind
// busy keys, whatever MaxBacklog allows.
const maxBacklogBytes = 64 << 20

// convert makes the Watermill message of m, whose JetStream metadata is
// md (nil when it could not be read), and works out its ordering key.
func (d *dispatch) convert(m jetstream.Msg, md *jetstream.MsgMetadata) *pending {
	msg, readErr := unmarshal(m.Headers(), m.Data())
	p := &pending{js: m, msg: msg, delivered: 1}
	if md != nil {
		p.delivered = md.NumDelivered
		p.storedAt = md.Timestamp
		msg.Metadata.Set(MetaStoredAt, md.Timestamp.UTC().Format(time.RFC3339Nano))
		msg.Metadata.Set(MetaStream, md.Stream)
		msg.Metadata.Set(MetaStreamSeq, strconv.FormatUint(md.Sequence.Stream, 10))
	}
	msg.Metadata.Set(MetaDeliveries, strconv.FormatUint(p.delivered, 10))
	p.readErr = readErr
	if readErr != "" {
		msg.Metadata.Set(MetaReadError, readErr)
	} else {
		p.key, p.keyed = d.sub.cfg.Key(d.topic, msg)
	}
	return p
}

// delivery is what the handler is told about this delivery of p.
func (p *pending) delivery() topics.Delivery {
	return topics.Delivery{Count: int(p.delivered + p.retries), StoredAt: p.storedAt, Key: p.key, Keyed: p.keyed, ReadError: p.readErr}
}

// unmarshal is Watermill's NATS header unmarshaling (the UUID from its
// header, JetStream's own headers left out) except that a header with
// several values keeps its first and is reported, with its name and how
// many values it had, never the values.
func unmarshal(hdr nats.Header, data []byte) (*message.Message, string) {
	md := make(message.Metadata, len(hdr))
	var repeated []string
	for k, v := range hdr {
		switch k {
		case wmnats.WatermillUUIDHdr, nats.MsgIdHdr, nats.ExpectedLastMsgIdHdr, nats.ExpectedStreamHdr,
			nats.ExpectedLastSubjSeqHdr, nats.ExpectedLastSeqHdr:
			continue
		}
		if len(v) == 0 {
			continue
		}
		md.Set(k, v[0])
		if len(v) > 1 {
			repeated = append(repeated, fmt.Sprintf("%q (%d values)", k, len(v)))
		}
	}
	msg := message.NewMessage(hdr.Get(wmnats.WatermillUUIDHdr), data)
	msg.Metadata = md
	if len(repeated) == 0 {
		return msg, ""
	}
	slices.Sort(repeated)
	return msg, "header " + strings.Join(repeated, ", ") + " repeated: a message carries one value per header (the dead letter keeps the first; the original is in the stream)"
}

// deliver hands one message to Watermill and settles it with the broker:
// ack (waiting for the server's confirmation) after Watermill acked. After
// a nack, a message without a key goes back to the broker with a backoff;
// a keyed one is retried here after the backoff, holding its key so that
// nothing of the same key overtakes it, and releasing its slot meanwhile.
func (d *dispatch) deliver(ctx context.Context, p *pending) {
	defer d.inflight.Done()
	nacked := d.handOut(ctx, p)
	<-d.slots
	if nacked && p.key != "" {
		if d.backoff(ctx, p) {
			p.retries++
			p.msg = p.msg.Copy()
			p.msg.Metadata.Set(MetaDeliveries, strconv.FormatUint(p.delivered+p.retries, 10))
			select {
			case d.retry <- p:
				return
			case <-ctx.Done():
			}
		}
		d.nak(p)
	}
	if p.key != "" {
		d.done <- p.key
	}
}

// handOut gives the message to Watermill and waits for its verdict; it
// reports whether the message was nacked and is the caller's to retry.
func (d *dispatch) handOut(ctx context.Context, p *pending) (nacked bool) {
	msgCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.msg.SetContext(topics.WithDelivery(msgCtx, p.delivery()))
	// Heartbeats keep the server from redelivering the message while it
	// waits to be handed out or while the handler (which bounds itself
	// below ackWait) runs. A handler that never answers is no longer
	// covered after four ack waits, and the message is redelivered.
	beat := time.NewTicker(d.sub.cfg.AckWait / 3)
	defer beat.Stop()
	for handed := false; !handed; {
		select {
		case d.out <- p.msg:
			handed = true
		case <-beat.C:
			_ = p.js.InProgress()
		case <-ctx.Done():
			d.nak(p)
			return false
		}
	}
	timeout := time.NewTimer(4 * d.sub.cfg.AckWait)
	defer timeout.Stop()
	for {
		select {
		case <-beat.C:
			_ = p.js.InProgress()
		case <-p.msg.Acked():
			d.ack(ctx, p)
			return false
		case <-p.msg.Nacked():
			if p.key != "" {
				return true
			}
			_ = p.js.NakWithDelay(d.sub.cfg.Retry(p.delivered))
			d.seen.release(p.seq)
			return false
		case <-timeout.C:
			// No verdict: the server may hand the message out again, and
			// this time it is to be handled.
			d.seen.release(p.seq)
			return false
		}
	}
}

// nak hands a message back to the server at once; its redelivery is to
// be handled.
func (d *dispatch) nak(p *pending) {
	_ = p.js.Nak()
	d.seen.release(p.seq)
}

// ack settles an acked message. The effect is durable before Watermill
// acks; the ack itself only stops redelivery. A lost ack is a redelivery,
// which every action tolerates, so waiting for the server's confirmation
// (DoubleAck) is optional: it costs a round trip per message.
func (d *dispatch) ack(ctx context.Context, p *pending) {
	var err error
	if d.sub.cfg.ConfirmAcks {
		ackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err = p.js.DoubleAck(ackCtx)
		cancel()
	} else {
		err = p.js.Ack()
	}
	if err != nil {
		d.sub.cfg.Logger.Error("nats: ack failed; message will be redelivered", err, watermill.LogFields{"topic": d.topic, "uuid": p.msg.UUID})
	}
	// Its effect is durable either way: a redelivery is acked unhandled.
	d.seen.acked(p.seq)
}

// backoff waits before a local retry, telling the broker the message is
// still being worked on so it is not handed to another consumer. False when
// the subscription ended first.
func (d *dispatch) backoff(ctx context.Context, p *pending) bool {
	wait := time.NewTimer(d.sub.cfg.Retry(p.delivered + p.retries))
	defer wait.Stop()
	beat := time.NewTicker(d.sub.cfg.AckWait / 3)
	defer beat.Stop()
	for {
		select {
		case <-wait.C:
			_ = p.js.InProgress()
			return true
		case <-beat.C:
			_ = p.js.InProgress()
		case <-ctx.Done():
			return false
		}
	}
}

// seen remembers, by stream sequence, the messages a subscription holds
// (delivered, not yet settled) and the last ones it acked, so that a
// redelivery of either is not handled a second time. The server redelivers
// a message whose ack wait ran out while the process could not beat its
// heartbeats (SIGSTOP, a long pause); without this, after SIGCONT both
// copies were handled, and out of order.
type seen struct {
	mu    sync.Mutex
	held  map[uint64]struct{}
	done  map[uint64]struct{}
	order []uint64 // done, oldest first
}

// seenAckedMax bounds how many acked sequences are remembered: more than a
// subscription acks in the time the server takes to redeliver.
const seenAckedMax = 1 << 16

type seenVerdict int

const (
	seenNew seenVerdict = iota
	seenHeld
	seenAcked
)

func newSeen() *seen {
	return &seen{held: map[uint64]struct{}{}, done: map[uint64]struct{}{}}
}

// admit says whether seq is new (and holds it from now on), held, or
// acked. Sequence 0 (unknown) is always new.
func (s *seen) admit(seq uint64) seenVerdict {
	if seq == 0 {
		return seenNew
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.held[seq]; ok {
		return seenHeld
	}
	if _, ok := s.done[seq]; ok {
		return seenAcked
	}
	s.held[seq] = struct{}{}
	return seenNew
}

// release forgets seq: handed back to the server, its redelivery is new.
func (s *seen) release(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.held, seq)
}

// acked moves seq from held to acked.
func (s *seen) acked(seq uint64) {
	if seq == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.held, seq)
	if _, ok := s.done[seq]; ok {
		return
	}
	s.done[seq] = struct{}{}
	s.order = append(s.order, seq)
	if len(s.order) > seenAckedMax {
		delete(s.done, s.order[0])
		s.order = s.order[1:]
	}
}
