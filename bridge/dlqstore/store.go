// Package dlqstore reads, replays and purges the dead-letter topic on NATS
// JetStream. Dead-letter messages are built and parsed by bridge/dlq; this
// package only moves them.
//
// Replay is exact and resumable: each selected message is re-published to
// its origin topic (dlq.Entry.Replay: the original payload and headers,
// under a message id derived from the dead-letter entry), and only after
// JetStream confirmed that publish is the message removed from the
// dead-letter stream and acked on a durable consumer. An interrupted replay
// run again with the same filters resumes on the same consumer; a message
// whose publish succeeded but whose removal did not happen is published
// again under the same id, which the origin stream drops as a duplicate
// inside its duplicate window (2 minutes for streams the bridge creates).
package dlqstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// ErrNotFound means no dead-letter message has that ID.
var ErrNotFound = errors.New("dead-letter message not found")

// Store is the dead-letter topic of one bridge.
type Store struct {
	js     jetstream.JetStream
	topic  string
	stream string
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// Open uses an existing connection; the caller closes it.
func Open(nc *nats.Conn, dlqTopic string) (*Store, error) {
	if dlqTopic == "" {
		return nil, errors.New("dlqstore: topic is empty")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("dlqstore: jetstream: %w", err)
	}
	return &Store{js: js, topic: dlqTopic, stream: natsjs.StreamName(dlqTopic), Now: time.Now}, nil
}

// Topic is the dead-letter topic.
func (s *Store) Topic() string { return s.topic }

// Stream is the JetStream stream that stores it.
func (s *Store) Stream() string { return s.stream }

// Item is one dead-letter message as stored.
type Item struct {
	// Seq is the stream sequence (the offset on Kafka).
	Seq uint64
	// Ref is the ID `dlq show` and `dlq list` use: the sequence on NATS,
	// "<partition>/<offset>" on Kafka.
	Ref      string
	StoredAt time.Time
	Entry    dlq.Entry
	// Err says what metadata could not be read; Entry holds the rest.
	Err error
}

// Filter selects dead-letter messages; zero fields select everything.
type Filter struct {
	// Ref selects the one message with this Item.Ref.
	Ref   string
	Route string
	// Reason is a case-insensitive substring of the failure reason.
	Reason string
	Kind   string
	// Type is the event type (exact, or a prefix when it ends in '*').
	Type string
	// Topic is the origin topic.
	Topic string
	// Since and Until bound the failure time (inclusive, exclusive).
	Since, Until time.Time
}

// IsZero reports whether the filter selects everything.
func (f Filter) IsZero() bool { return f == Filter{} }

// Match applies the filter.
func (f Filter) Match(it Item) bool {
	e := it.Entry.Failure
	if f.Ref != "" && it.Ref != f.Ref {
		return false
	}
	if f.Route != "" && e.Route != f.Route {
		return false
	}
	if f.Kind != "" && e.Kind != f.Kind {
		return false
	}
	if f.Topic != "" && e.OriginTopic != f.Topic {
		return false
	}
	if f.Type != "" {
		if p, ok := strings.CutSuffix(f.Type, "*"); ok {
			if !strings.HasPrefix(e.EventType, p) {
				return false
			}
		} else if e.EventType != f.Type {
			return false
		}
	}
	if f.Reason != "" && !strings.Contains(strings.ToLower(e.Reason), strings.ToLower(f.Reason)) {
		return false
	}
	at := it.FailedAt()
	if !f.Since.IsZero() && at.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !at.Before(f.Until) {
		return false
	}
	return true
}

// FailedAt is when the message failed, or when it was stored if the
// metadata does not say.
func (it Item) FailedAt() time.Time {
	if !it.Entry.Failure.FailedAt.IsZero() {
		return it.Entry.Failure.FailedAt
	}
	return it.StoredAt
}

// String describes the filter for messages and consumer descriptions.
func (f Filter) String() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+strconv.Quote(v))
		}
	}
	add("ref", f.Ref)
	add("route", f.Route)
	add("reason", f.Reason)
	add("kind", f.Kind)
	add("type", f.Type)
	add("topic", f.Topic)
	if !f.Since.IsZero() {
		add("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		add("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, " ")
}

func (s *Store) streamHandle(ctx context.Context) (jetstream.Stream, error) {
	st, err := s.js.Stream(ctx, s.stream)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("dlqstore: stream %s: %w", s.stream, err)
	}
	return st, nil
}

// Count returns how many messages the dead-letter stream holds.
func (s *Store) Count(ctx context.Context) (uint64, error) {
	st, err := s.streamHandle(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("dlqstore: stream info: %w", err)
	}
	return info.State.Msgs, nil
}

var marshaler wmnats.NATSMarshaler

func decode(seq uint64, stored time.Time, subject string, hdr nats.Header, data []byte) Item {
	it := Item{Seq: seq, Ref: strconv.FormatUint(seq, 10), StoredAt: stored}
	msg, err := marshaler.Unmarshal(&nats.Msg{Subject: subject, Header: hdr, Data: data})
	if err != nil {
		it.Err = fmt.Errorf("dlq message %d: %w", seq, err)
		it.Entry = dlq.Entry{Payload: data, Metadata: map[string]string{}}
		return it
	}
	it.Entry, it.Err = dlq.Parse(msg)
	return it
}

// List calls fn for each message that matches f, oldest first, without
// consuming anything. fn may return errStop-like errors to end early;
// List returns what fn returned.
func (s *Store) List(ctx context.Context, f Filter, fn func(Item) error) error {
	return s.scan(ctx, f.Since, func(it Item) error {
		if !f.Match(it) {
			return nil
		}
		return fn(it)
	})
}

// ErrStop ends a List or scan early without an error.
var ErrStop = natsjs.ErrStop

// scan reads every message (from since on, by storage time).
func (s *Store) scan(ctx context.Context, since time.Time, fn func(Item) error) error {
	if !since.IsZero() {
		// The message is stored after it failed, so starting at the
		// failure bound loses nothing.
		since = since.Add(-time.Second)
	}
	return natsjs.ReadTopic(ctx, s.js, s.topic, since, func(m natsjs.Stored) error {
		return fn(decode(m.Seq, m.Stored, m.Subject, m.Headers, m.Data))
	})
}

// Get returns one message by stream sequence ("42") or by its dead-letter
// message ID ("dlq-<original id>", or the original id alone).
func (s *Store) Get(ctx context.Context, id string) (Item, error) {
	st, err := s.streamHandle(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return Item{}, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Item{}, err
	}
	if seq, err := strconv.ParseUint(id, 10, 64); err == nil {
		raw, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return Item{}, fmt.Errorf("%s: %w", id, ErrNotFound)
		}
		if err != nil {
			return Item{}, fmt.Errorf("dlqstore: get %d: %w", seq, err)
		}
		return decode(raw.Sequence, raw.Time, raw.Subject, raw.Header, raw.Data), nil
	}
	var found *Item
	err = s.scan(ctx, time.Time{}, func(it Item) error {
		if it.Entry.ID == id || it.Entry.ID == "dlq-"+id {
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

// Purge removes the messages f selects and returns how many. A zero
// filter purges the whole stream at once.
func (s *Store) Purge(ctx context.Context, f Filter) (int, error) {
	st, err := s.streamHandle(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if f.IsZero() {
		info, err := st.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("dlqstore: stream info: %w", err)
		}
		if err := st.Purge(ctx); err != nil {
			return 0, fmt.Errorf("dlqstore: purge %s: %w", s.stream, err)
		}
		return int(info.State.Msgs), nil
	}
	var seqs []uint64
	if err := s.List(ctx, f, func(it Item) error { seqs = append(seqs, it.Seq); return nil }); err != nil {
		return 0, err
	}
	n := 0
	for _, seq := range seqs {
		if err := st.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return n, fmt.Errorf("dlqstore: delete %d: %w", seq, err)
		}
		n++
	}
	return n, nil
}

// ReplayOptions configure a replay.
type ReplayOptions struct {
	Filter Filter
	// Rate limits re-publishes per second; 0 is unlimited.
	Rate float64
	// Limit stops after this many re-publishes; 0 is no limit. The durable
	// consumer stays, so the next run continues.
	Limit int
	// DryRun only counts what would be replayed; nothing is published,
	// consumed or removed.
	DryRun bool
	// Consumer names the durable replay consumer; empty derives it from
	// ConsumerKey, or from the filter when that is empty too. Runs with the
	// same name share progress.
	Consumer    string
	ConsumerKey string
	// AckWait is how long a message fetched by a replay that died waits
	// before another run gets it (default 30s).
	AckWait time.Duration
	// Batch is how many messages are fetched at once (default 64).
	Batch int
	// Progress is called after each message looked at.
	Progress func(ReplayResult)
	// AfterPublish runs after a re-publish succeeded and before the message
	// is removed and acked; an error stops the replay right there, as a
	// crash would. For tests and tooling.
	AfterPublish func(it Item) error
	// Check, when set, may refuse to replay a message (its route is gone
	// from the config, say): the message stays in the dead-letter topic and
	// the result says why.
	Check func(it Item) error
}

// ReplayResult counts what a replay did.
type ReplayResult struct {
	// Consumer is the durable consumer's name ("" in a dry run).
	Consumer string `json:"consumer,omitempty"`
	// Resumed: the consumer had delivered messages before this run.
	Resumed bool `json:"resumed"`
	// Pending is what the consumer had left to look at when the run began.
	Pending uint64 `json:"pending"`
	// Scanned counts messages looked at; Replayed those re-published and
	// removed; Duplicates those of them the origin stream already held (a
	// resumed replay); Skipped those the filter did not select; Unreadable
	// those without an origin topic (left in place).
	Scanned    int `json:"scanned"`
	Replayed   int `json:"replayed"`
	Duplicates int `json:"duplicates"`
	Skipped    int `json:"skipped"`
	Unreadable int `json:"unreadable"`
	// Kept counts selected messages left in place because they cannot be
	// replayed (Check refused, or a truncated copy whose original is gone);
	// KeptWhy says why for the first few.
	Kept    int      `json:"kept"`
	KeptWhy []string `json:"keptWhy,omitempty"`
	// Topics counts replays per origin topic.
	Topics map[string]int `json:"topics,omitempty"`
	// Done: nothing is left for this consumer, which was removed.
	Done bool `json:"done"`
}

// ReplayConsumerName derives the durable consumer name from a key.
func ReplayConsumerName(key string) string {
	h := sha256.Sum256([]byte(key))
	return "sagabridge_replay_" + hex.EncodeToString(h[:6])
}

var errLimit = errors.New("limit reached")

// Replay re-publishes the selected messages to their origin topics. See
// the package documentation for why an interrupted replay neither loses
// nor doubles a message.
func (s *Store) Replay(ctx context.Context, opts ReplayOptions) (ReplayResult, error) {
	if opts.DryRun {
		return s.dryRun(ctx, opts)
	}
	res := ReplayResult{Topics: map[string]int{}}
	st, err := s.streamHandle(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		res.Done = true
		return res, nil
	}
	if err != nil {
		return res, err
	}
	if opts.AckWait <= 0 {
		opts.AckWait = 30 * time.Second
	}
	if opts.Batch <= 0 {
		opts.Batch = 64
	}
	cons, err := s.replayConsumer(ctx, st, opts, &res)
	if err != nil {
		return res, err
	}
	// The replay covers what the stream holds now. A replayed message that
	// fails again is dead-lettered again, after this bound: a later replay
	// takes it, this one does not loop on it.
	sinfo, err := st.Info(ctx)
	if err != nil {
		return res, fmt.Errorf("dlqstore: stream info: %w", err)
	}
	err = s.drain(ctx, st, cons, sinfo.State.LastSeq, opts, &res)
	return res, err
}

// dryRun counts what a replay with opts would re-publish, and to which
// topics, without re-publishing or removing anything.
func (s *Store) dryRun(ctx context.Context, opts ReplayOptions) (ReplayResult, error) {
	res := ReplayResult{Topics: map[string]int{}}
	err := s.scan(ctx, opts.Filter.Since, func(it Item) error {
		res.Scanned++
		switch {
		case it.Entry.Failure.OriginTopic == "":
			res.Unreadable++
		case !opts.Filter.Match(it):
			res.Skipped++
		default:
			if opts.Check != nil {
				if err := opts.Check(it); err != nil {
					res.keep(it, err)
					break
				}
			}
			if opts.Limit > 0 && res.Replayed >= opts.Limit {
				return ErrStop
			}
			res.Replayed++
			res.Topics[it.Entry.Failure.OriginTopic]++
		}
		if opts.Progress != nil {
			opts.Progress(res)
		}
		return nil
	})
	return res, err
}

// replayConsumer creates the durable consumer of a replay, or takes up the
// one an interrupted replay of the same selection left, and records in res
// its name and whether it resumes.
func (s *Store) replayConsumer(ctx context.Context, st jetstream.Stream, opts ReplayOptions, res *ReplayResult) (jetstream.Consumer, error) {
	name := opts.Consumer
	if name == "" {
		key := opts.ConsumerKey
		if key == "" {
			key = opts.Filter.String()
		}
		name = ReplayConsumerName(key)
	}
	res.Consumer = name
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:           name,
		Description:       "sagabridge dlq replay: " + opts.Filter.String(),
		FilterSubject:     s.topic,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           opts.AckWait,
		MaxDeliver:        -1,
		MaxAckPending:     opts.Batch * 2,
		InactiveThreshold: 7 * 24 * time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("dlqstore: replay consumer %s: %w", name, err)
	}
	if ci := cons.CachedInfo(); ci != nil {
		res.Resumed = ci.Delivered.Consumer > 0
		res.Pending = ci.NumPending + uint64(ci.NumAckPending)
	}
	return cons, nil
}

// drain replays what cons delivers up to the stream sequence upper, batch
// by batch, until everything up to upper is handled (then it removes the
// consumer and sets res.Done), opts.Limit is reached, or ctx ends.
func (s *Store) drain(ctx context.Context, st jetstream.Stream, cons jetstream.Consumer, upper uint64, opts ReplayOptions, res *ReplayResult) error {
	var limiter *rate.Limiter
	if opts.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(opts.Rate), 1)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if opts.Limit > 0 && res.Replayed >= opts.Limit {
			return nil
		}
		// No wait: the server answers at once with what it has.
		batch, err := cons.FetchNoWait(opts.Batch)
		if err != nil {
			return fmt.Errorf("dlqstore: fetch: %w", err)
		}
		got, beyond, stop := s.replayBatch(ctx, st, batch, upper, opts, limiter, res)
		if stop != nil {
			if errors.Is(stop, errLimit) {
				return nil
			}
			return stop
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("dlqstore: fetch: %w", err)
		}
		if got > 0 && !beyond {
			continue
		}
		done, err := s.coveredUpTo(ctx, st, cons, upper)
		if err != nil {
			return err
		}
		if done {
			// Everything up to the bound is handled: the consumer has done
			// its job. Removing it loses nothing (what it skipped or left is
			// still in the stream) and lets the next replay start afresh.
			name := res.Consumer
			if err := st.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return fmt.Errorf("dlqstore: remove replay consumer %s: %w", name, err)
			}
			res.Done = true
			return nil
		}
		// Messages another run holds, or one that died holds until its
		// AckWait ends: wait for them.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// replayBatch replays the messages of one fetch: got is how many it held,
// beyond whether one was past upper (handed back for a later replay); after
// stop, the first error of replayOne, the rest are handed back at once.
func (s *Store) replayBatch(ctx context.Context, st jetstream.Stream, batch jetstream.MessageBatch, upper uint64, opts ReplayOptions, limiter *rate.Limiter, res *ReplayResult) (got int, beyond bool, stop error) {
	for m := range batch.Messages() {
		got++
		if md, err := m.Metadata(); err == nil && md.Sequence.Stream > upper {
			// Not this run's: leave it for the next one.
			_ = m.NakWithDelay(opts.AckWait)
			beyond = true
			continue
		}
		if stop != nil {
			// Hand it back at once rather than after AckWait.
			_ = m.Nak()
			continue
		}
		stop = s.replayOne(ctx, st, m, opts, limiter, res)
		if opts.Progress != nil && stop == nil {
			opts.Progress(*res)
		}
	}
	return got, beyond, stop
}

// coveredUpTo reports whether the consumer has acked every message of the
// topic up to upper that is still stored.
func (s *Store) coveredUpTo(ctx context.Context, st jetstream.Stream, cons jetstream.Consumer, upper uint64) (bool, error) {
	ci, err := cons.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("dlqstore: replay consumer: %w", err)
	}
	floor := ci.AckFloor.Stream
	if floor >= upper {
		return true, nil
	}
	next, err := st.GetMsg(ctx, floor+1, jetstream.WithGetMsgSubject(s.topic))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("dlqstore: next message after %d: %w", floor, err)
	}
	return next.Sequence > upper, nil
}

func (s *Store) replayOne(ctx context.Context, st jetstream.Stream, m jetstream.Msg, opts ReplayOptions, limiter *rate.Limiter, res *ReplayResult) error {
	md, err := m.Metadata()
	if err != nil {
		_ = m.Nak()
		return fmt.Errorf("dlqstore: message metadata: %w", err)
	}
	it := decode(md.Sequence.Stream, md.Timestamp, m.Subject(), m.Headers(), m.Data())
	ack := func() error {
		if err := m.DoubleAck(ctx); err != nil {
			return fmt.Errorf("dlqstore: ack %d: %w", it.Seq, err)
		}
		return nil
	}
	switch {
	case it.Entry.Failure.OriginTopic == "":
		res.Scanned++
		res.Unreadable++
		return ack()
	case !opts.Filter.Match(it):
		res.Scanned++
		res.Skipped++
		return ack()
	case opts.Limit > 0 && res.Replayed >= opts.Limit:
		_ = m.Nak()
		return errLimit
	}
	if limiter != nil {
		if err := limiter.Wait(ctx); err != nil {
			_ = m.Nak()
			return err
		}
	}
	if opts.Check != nil {
		if err := opts.Check(it); err != nil {
			res.Scanned++
			res.keep(it, err)
			return ack()
		}
	}
	topic := it.Entry.Failure.OriginTopic
	var dup bool
	if it.Entry.Truncated != "" {
		// The dead letter holds no payload: replay the original, which the
		// origin stream may still hold.
		raw, gone := s.original(ctx, it.Entry)
		if gone != nil {
			res.Scanned++
			res.keep(it, gone)
			return ack()
		}
		dup, err = s.publishRaw(ctx, topic, it.Entry.Replay().UUID, raw)
	} else {
		dup, err = s.publish(ctx, topic, it.Entry.Replay())
	}
	if err != nil {
		// Not published (or not confirmed): neither removed nor acked.
		_ = m.Nak()
		return fmt.Errorf("replay dead letter %d to %s: %w", it.Seq, topic, err)
	}
	if opts.AfterPublish != nil {
		if err := opts.AfterPublish(it); err != nil {
			return err
		}
	}
	// Removed before the ack: a run that dies in between finds the message
	// gone, and the server does not hand out a deleted message again.
	if err := st.DeleteMsg(ctx, it.Seq); err != nil && !msgGone(err) {
		return fmt.Errorf("dlqstore: remove replayed %d: %w", it.Seq, err)
	}
	res.Scanned++
	res.Replayed++
	res.Topics[topic]++
	if dup {
		res.Duplicates++
	}
	// The message is gone from the stream; an ack that fails only leaves
	// the consumer to skip it later.
	_ = m.DoubleAck(ctx)
	return nil
}

// keepWhyMax bounds ReplayResult.KeptWhy.
const keepWhyMax = 20

func (r *ReplayResult) keep(it Item, why error) {
	r.Kept++
	if len(r.KeptWhy) < keepWhyMax {
		r.KeptWhy = append(r.KeptWhy, fmt.Sprintf("%d: %v", it.Seq, why))
	}
}

// msgGone reports a delete of a message that is no longer there: already
// removed by a replay running beside this one, which is not a failure.
// JetStream answers that with err_code 10057 ("no message found"), which
// the client flattens into the text of ErrMsgDeleteUnsuccessful.
func msgGone(err error) bool {
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return true
	}
	return errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) &&
		strings.Contains(err.Error(), "err_code=10057") && strings.Contains(err.Error(), "no message found")
}

// original reads the message a truncated dead letter points at from the
// origin stream; an error says why it cannot be replayed.
func (s *Store) original(ctx context.Context, e dlq.Entry) (*jetstream.RawStreamMsg, error) {
	broker, at := dlq.ParsePointer(e.Failure.Origin.Pointer)
	if broker != "nats" {
		return nil, fmt.Errorf("truncated copy and no NATS pointer to the original (%q)", e.Failure.Origin.Pointer)
	}
	seq, err := strconv.ParseUint(at["seq"], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("truncated copy: bad pointer %q", e.Failure.Origin.Pointer)
	}
	st, err := s.js.Stream(ctx, at["stream"])
	if err != nil {
		return nil, fmt.Errorf("truncated copy: origin stream %s: %w", at["stream"], err)
	}
	raw, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("truncated copy: the original (%s) is no longer in its stream", e.Failure.Origin.Pointer)
	}
	if err != nil {
		return nil, fmt.Errorf("truncated copy: read the original (%s): %w", e.Failure.Origin.Pointer, err)
	}
	return raw, nil
}

// publishRaw re-publishes an original as the stream holds it (every
// header value, the payload) under the replay's message id.
func (s *Store) publishRaw(ctx context.Context, topic, id string, raw *jetstream.RawStreamMsg) (duplicate bool, err error) {
	hdr := nats.Header{}
	for k, v := range raw.Header {
		switch k {
		case nats.MsgIdHdr, nats.ExpectedLastMsgIdHdr, nats.ExpectedStreamHdr, nats.ExpectedLastSubjSeqHdr, nats.ExpectedLastSeqHdr, wmnats.WatermillUUIDHdr:
			continue
		}
		hdr[k] = append([]string(nil), v...)
	}
	hdr.Set(wmnats.WatermillUUIDHdr, id)
	ack, err := s.js.PublishMsg(ctx, &nats.Msg{Subject: topic, Header: hdr, Data: raw.Data}, jetstream.WithMsgID(id))
	if err != nil {
		return false, err
	}
	return ack.Duplicate, nil
}

// publish stores msg on topic and waits for JetStream's confirmation. The
// message id (Nats-Msg-Id) is the Watermill UUID, as the bridge's own
// publisher sets it, so the stream drops a second publish of the same
// replay.
func (s *Store) publish(ctx context.Context, topic string, msg *message.Message) (duplicate bool, err error) {
	nm, err := marshaler.Marshal(topic, msg)
	if err != nil {
		return false, err
	}
	for k := range nm.Header {
		if natsjs.IsDeliveryKey(k) {
			nm.Header.Del(k)
		}
	}
	ack, err := s.js.PublishMsg(ctx, nm, jetstream.WithMsgID(msg.UUID))
	if err != nil {
		if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
			return false, fmt.Errorf("no stream stores topic %s: %w", topic, err)
		}
		return false, err
	}
	return ack.Duplicate, nil
}

// SortedTopics lists the topics of a result in name order.
func (r ReplayResult) SortedTopics() []string {
	out := make([]string, 0, len(r.Topics))
	for t := range r.Topics {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
