package kafka

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/segmentio/kafka-go"

	"github.com/sagabridge/sagabridge/topics"
)

// recordReader is the part of *kafka.Reader a subscription uses; an
// interface so the delivery and commit rules can be tested without a broker.
type recordReader interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

// subscriptionConfig is what one subscription needs from SubscriberConfig.
type subscriptionConfig struct {
	topic           string
	group           string
	keyField        string
	nackResendSleep time.Duration
	// nackResendMax caps the resend backoff, which doubles from
	// nackResendSleep; at or below it, every resend waits nackResendSleep.
	nackResendMax time.Duration
	// maxBacklog bounds the records waiting behind a busy key.
	maxBacklog   int
	closeTimeout time.Duration
	// concurrency is how many messages are handed out unacked at once
	// (at least 1); one key is never in flight twice.
	concurrency int
	// key is the ordering key; nil means the record key.
	key topics.Keyer
	// noCommit is set for throwaway groups: nobody will resume them, and
	// committed offsets would outlive them on the broker for the offsets
	// retention period.
	noCommit bool
}

// commitRetryDelay is how long a failed commit waits before it is tried
// again when no new ack triggers it earlier.
const commitRetryDelay = time.Second

// fetchErrorDelay spaces out retries when the reader reports an error.
const fetchErrorDelay = 250 * time.Millisecond

// subscription is one Subscribe call: one kafka-go reader, one output
// channel, up to concurrency messages in flight (never two of one key), and
// a commit loop beside it.
type subscription struct {
	cfg    subscriptionConfig
	reader recordReader
	logger watermill.LoggerAdapter
	out    chan *message.Message

	mu      sync.Mutex // guards tracker
	tracker *ackTracker

	// kick wakes the commit loop; capacity 1, so acks coalesce.
	kick chan struct{}

	// seen knows the records held or just acked, so that fetching them
	// again after a rebalance does not handle them again.
	seen *seen
}

func newSubscription(cfg subscriptionConfig, reader recordReader, logger watermill.LoggerAdapter) *subscription {
	if cfg.maxBacklog <= 0 {
		cfg.maxBacklog = defaultMaxBacklog
	}
	return &subscription{
		cfg:     cfg,
		reader:  reader,
		logger:  logger.With(watermill.LogFields{"topic": cfg.topic, "consumer_group": cfg.group}),
		out:     make(chan *message.Message),
		tracker: newAckTracker(),
		kick:    make(chan struct{}, 1),
		seen:    newSeen(),
	}
}

// run consumes until ctx is cancelled or closing is closed, then shuts down
// in order: stop fetching, let the in-flight message finish (bounded by
// closeTimeout), commit what was acked, close the reader, close out.
func (s *subscription) run(ctx context.Context, closing <-chan struct{}) {
	defer close(s.out)

	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-closing:
			stop()
		case <-stopCtx.Done():
		}
	}()

	// graceCtx ends closeTimeout after the stop: the in-flight ack and the
	// final commit share that budget.
	graceCtx, graceCancel := context.WithCancel(context.Background())
	defer graceCancel()
	context.AfterFunc(stopCtx, func() {
		t := time.AfterFunc(s.cfg.closeTimeout, graceCancel)
		context.AfterFunc(graceCtx, func() { t.Stop() })
	})

	stopCommits := make(chan struct{})
	commitsDone := make(chan struct{})
	go func() {
		defer close(commitsDone)
		s.commitLoop(graceCtx, stopCommits)
	}()

	s.consume(ctx, stopCtx, graceCtx)
	stop() // starts the grace clock even when consume ended on a reader error

	close(stopCommits)
	<-commitsDone
	if err := s.reader.Close(); err != nil {
		s.logger.Error("Closing kafka reader failed", err, nil)
	}
	s.logger.Debug("Subscription closed", nil)
}

// consume fetches messages and delivers each from a goroutine of its own,
// at most concurrency at once and one per ordering key, until stopCtx ends;
// then it waits for the deliveries under way (bounded by graceCtx).
//
// A record whose key is busy (its previous record in flight or waiting to
// be resent) waits in its key's queue, the backlog, without holding one of
// the concurrency slots, and the fetching goes on: one busy or parked key
// does not hold up the others until maxBacklog records wait. A record
// waiting out a nack gives its slot back meanwhile.
func (s *subscription) consume(msgCtx, stopCtx, graceCtx context.Context) {
	// With one slot the whole partition goes in order: nothing is fetched
	// while a message is in flight, as before there was a setting. Above
	// one, the fetch goes on, and a record takes a slot only when its key
	// is free.
	strict := s.cfg.concurrency <= 1
	q := s.newKeyQueues(msgCtx, stopCtx, graceCtx, strict)
	defer q.wait()
	for {
		sl, ok := q.reserve(strict)
		if !ok {
			return
		}
		rec, err := s.reader.FetchMessage(stopCtx)
		if err != nil {
			q.release(sl)
			if s.fetchFailed(stopCtx, err) {
				return
			}
			continue
		}
		// Delivered in fetch order, even if it waits for its key: nothing
		// at or after it in its partition is committed before it is acked.
		s.mu.Lock()
		s.tracker.delivered(rec.Partition, rec.Offset)
		s.mu.Unlock()
		// Fetched again after the group took the partition away and gave
		// it back: a record still held is settled by the copy that holds
		// it (the tracker counts offsets, not copies); one already acked
		// is acked again, unhandled.
		if v := s.seen.admit(position{Partition: rec.Partition, Offset: rec.Offset}); v != seenNew {
			q.release(sl)
			if v == seenAcked {
				s.acked(rec)
			}
			continue
		}
		p := s.pending(rec)
		q.push(p.key, p, sl)
	}
}

// newKeyQueues are the queues consume hands its records to: concurrency
// slots, and a backlog of maxBacklog records waiting for their key.
func (s *subscription) newKeyQueues(msgCtx, stopCtx, graceCtx context.Context, strict bool) *keyQueues {
	return &keyQueues{
		waiting: map[string][]pendingRecord{},
		space:   make(chan struct{}, max(s.cfg.maxBacklog, 1)),
		start: func(key string, p pendingRecord, sl *slot) {
			// A keyed record waiting out a nack lets other keys use its
			// slot (nothing of its key overtakes it). With one slot the
			// whole partition stays in order, and an unkeyed record has
			// nothing to keep its place: both hold the slot.
			yield := key != "" && !strict
			s.deliver(msgCtx, stopCtx, graceCtx, p, sl, yield)
		},
		slots: make(chan struct{}, max(s.cfg.concurrency, 1)),
		stop:  stopCtx,
	}
}

// fetchFailed logs a failed fetch and waits before the next; true when
// the subscription is to stop.
func (s *subscription) fetchFailed(stopCtx context.Context, err error) (stop bool) {
	if stopCtx.Err() != nil {
		return true
	}
	if errors.Is(err, io.EOF) {
		s.logger.Error("Kafka reader closed underneath the subscription", err, nil)
		return true
	}
	s.logger.Error("Fetching from Kafka failed, retrying", err, nil)
	return !sleepCtx(stopCtx, fetchErrorDelay)
}

// pending is rec made a message and keyed: by the Keyer when there is
// one, else by the record key.
func (s *subscription) pending(rec kafka.Message) pendingRecord {
	p := pendingRecord{rec: rec, msg: s.message(rec), key: string(rec.Key)}
	if s.cfg.key != nil {
		p.key, p.keyed = s.cfg.key(s.cfg.topic, p.msg)
	}
	return p
}

// pendingRecord is a fetched record, the message made of it, and its
// ordering key with what the Keyer returned beside it.
type pendingRecord struct {
	rec   kafka.Message
	msg   *message.Message
	key   string
	keyed any
}

// slot is one of the subscription's concurrency places, held by one
// goroutine at a time.
type slot struct {
	ch   chan struct{}
	held bool
}

// take waits for a place; false when ctx ended first.
func (sl *slot) take(ctx context.Context) bool {
	if sl.held {
		return true
	}
	select {
	case sl.ch <- struct{}{}:
		sl.held = true
		return true
	case <-ctx.Done():
		return false
	}
}

// give hands the place back, if held.
func (sl *slot) give() {
	if sl.held {
		<-sl.ch
		sl.held = false
	}
}

// keyQueues runs one delivery per ordering key at a time: a record whose
// key is in flight waits in its key's queue (taking a place in space, not
// a slot) and starts, with a slot, when the one before it is settled. An
// empty key never waits.
type keyQueues struct {
	start func(string, pendingRecord, *slot) // delivers; returns when settled or stopped
	slots chan struct{}
	// space holds a place per record waiting behind its key, and one for
	// the record being fetched.
	space chan struct{}
	stop  context.Context

	mu      sync.Mutex
	waiting map[string][]pendingRecord // a key present is in flight
	wg      sync.WaitGroup
}

// push takes p, fetched with a place in space (and, when sl is not nil, a
// slot held): a record whose key is busy keeps the place and waits
// without a slot; any other gives the place back and runs once it has a
// slot, which push waits for.
func (q *keyQueues) push(key string, p pendingRecord, sl *slot) {
	if key != "" {
		q.mu.Lock()
		if queue, busy := q.waiting[key]; busy {
			q.waiting[key] = append(queue, p)
			q.mu.Unlock()
			if sl != nil {
				sl.give()
			}
			return
		}
		q.waiting[key] = nil
		q.mu.Unlock()
	}
	<-q.space
	if sl == nil {
		sl = &slot{ch: q.slots}
		if !sl.take(q.stop) {
			// Stopping: nothing queued behind it yet (only this loop
			// queues); the record is not committed and will be redelivered.
			if key != "" {
				q.mu.Lock()
				delete(q.waiting, key)
				q.mu.Unlock()
			}
			return
		}
	}
	q.run(key, p, sl)
}

// run delivers p, then the records queued behind it, one at a time. The
// slot goes back only after the key is free: given back first, the fetch
// loop could take it (with one slot it takes it for every fetch), find the
// key still busy, queue the key's next record here, and then hold the
// only slot while it waits for a new record, stranding the queued one
// until something else arrived on the topic.
func (q *keyQueues) run(key string, p pendingRecord, sl *slot) {
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		for {
			if q.stop.Err() == nil {
				q.start(key, p, sl)
			}
			if key == "" {
				sl.give()
				return
			}
			q.mu.Lock()
			queue := q.waiting[key]
			if len(queue) == 0 {
				delete(q.waiting, key)
				q.mu.Unlock()
				sl.give()
				return
			}
			p, q.waiting[key] = queue[0], queue[1:]
			q.mu.Unlock()
			<-q.space
			// Still held unless a nack's backoff gave it back.
			if !sl.take(q.stop) {
				// Stopping: what waits is dropped (it is not committed and
				// will be redelivered).
				q.mu.Lock()
				for range q.waiting[key] {
					<-q.space
				}
				delete(q.waiting, key)
				q.mu.Unlock()
				return
			}
		}
	}()
}

// wait returns when every delivery started has ended and every queued
// record was dropped.
func (q *keyQueues) wait() { q.wg.Wait() }

// reserve takes a place in the backlog for the record about to be fetched
// and, when strict, a slot (sl); it is not ok when q.stop ends first.
func (q *keyQueues) reserve(strict bool) (sl *slot, ok bool) {
	// Room in the backlog, in case the record's key is busy.
	select {
	case q.space <- struct{}{}:
	case <-q.stop.Done():
		return nil, false
	}
	if !strict {
		return nil, true
	}
	sl = &slot{ch: q.slots}
	if !sl.take(q.stop) {
		<-q.space
		return nil, false
	}
	return sl, true
}

// release gives back what reserve took, for a record that is not pushed.
func (q *keyQueues) release(sl *slot) {
	if sl != nil {
		sl.give()
	}
	<-q.space
}

// deliver sends rec until it is acked or the subscription stops. A nack
// resends the same record after a backoff (nackResendSleep doubling up to
// nackResendMax), during which, with yield, the record gives its slot
// back; nothing later of its key is handed out meanwhile, and nothing
// after it in its partition is committed, so nothing is skipped.
func (s *subscription) deliver(msgCtx, stopCtx, graceCtx context.Context, p pendingRecord, sl *slot, yield bool) {
	rec, first := p.rec, p.msg
	// Kafka does not count deliveries: these are this subscription's.
	d := topics.Delivery{Count: 1, StoredAt: rec.Time, Key: p.key, Keyed: p.keyed}
	fields := watermill.LogFields{
		"message_uuid": first.UUID,
		"partition":    rec.Partition,
		"offset":       rec.Offset,
	}
	backoff := s.cfg.nackResendSleep
	for msg := first; ; msg = s.message(rec) {
		// A fresh message per further attempt: a Watermill message can be
		// acked or nacked once, and a handler may have changed the payload
		// or metadata.
		ctx, cancel := context.WithCancel(msgCtx)
		msg.SetContext(topics.WithDelivery(ctx, d))
		d.Count++

		select {
		case s.out <- msg:
		case <-stopCtx.Done():
			cancel()
			return
		}

		select {
		case <-msg.Acked():
			cancel()
			s.seen.acked(position{Partition: rec.Partition, Offset: rec.Offset})
			s.acked(rec)
			return
		case <-msg.Nacked():
			cancel()
			s.logger.Trace("Message nacked, resending", fields)
			if yield {
				sl.give()
			}
			if !sleepCtx(stopCtx, backoff) || !sl.take(stopCtx) {
				return
			}
			backoff = min(2*backoff, max(s.cfg.nackResendMax, s.cfg.nackResendSleep))
		case <-stopCtx.Done():
			// Shutting down with the message in flight: give the handler
			// until the grace period ends, then let it go unacked (it is
			// not committed and will be redelivered).
			select {
			case <-msg.Acked():
				s.seen.acked(position{Partition: rec.Partition, Offset: rec.Offset})
				s.acked(rec)
			case <-msg.Nacked():
			case <-graceCtx.Done():
				s.logger.Info("In-flight message not acked before close timeout; it will be redelivered", fields)
			}
			cancel()
			return
		}
	}
}

// message is rec as a Watermill message of its own.
func (s *subscription) message(rec kafka.Message) *message.Message {
	uuid, md := fromRecord(rec, s.cfg.keyField)
	msg := message.NewMessage(uuid, append([]byte(nil), rec.Value...))
	for k, v := range md {
		msg.Metadata[k] = v
	}
	return msg
}

func (s *subscription) acked(rec kafka.Message) {
	s.mu.Lock()
	ok := s.tracker.ack(rec.Partition, rec.Offset)
	s.mu.Unlock()
	if !ok {
		s.logger.Info("Ack for a message the tracker no longer holds (partition rewound); it will be redelivered",
			watermill.LogFields{"partition": rec.Partition, "offset": rec.Offset})
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// commitLoop commits the acked prefix whenever an ack arrives, coalescing
// acks that come in while a commit is under way. After stop it makes one
// last commit, bounded by graceCtx.
func (s *subscription) commitLoop(graceCtx context.Context, stop <-chan struct{}) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-s.kick:
		case <-retry.C:
		case <-stop:
			s.commit(graceCtx)
			return
		}
		if !s.commit(graceCtx) {
			retry.Reset(commitRetryDelay)
		}
	}
}

// commit commits what the tracker allows; false when the commit failed and
// should be retried. A failure is logged, never fatal: the offsets stay
// committable, and if the partition moved to another member meanwhile, that
// member restarts from the last committed offset and redelivers.
func (s *subscription) commit(ctx context.Context) bool {
	if s.cfg.noCommit {
		return true
	}
	s.mu.Lock()
	ps := s.tracker.committable()
	s.mu.Unlock()
	if len(ps) == 0 {
		return true
	}
	recs := make([]kafka.Message, len(ps))
	for i, p := range ps {
		recs[i] = kafka.Message{Topic: s.cfg.topic, Partition: p.Partition, Offset: p.Offset}
	}
	if err := s.reader.CommitMessages(ctx, recs...); err != nil {
		s.logger.Error("Committing offsets failed; the messages may be redelivered", err,
			watermill.LogFields{"positions": ps})
		return false
	}
	s.mu.Lock()
	s.tracker.committed(ps)
	s.mu.Unlock()
	s.logger.Trace("Committed offsets", watermill.LogFields{"positions": ps})
	return true
}

// sleepCtx sleeps for d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
