package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/segmentio/kafka-go"

	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/topics"
)

// fakeReader serves a fixed list of records and records commits, so the
// subscription's delivery and commit rules can be checked without a broker.
type fakeReader struct {
	mu          sync.Mutex
	recs        []kafka.Message
	next        int
	commits     [][]kafka.Message
	failCommits int
	closed      bool
}

func newFakeReader(partition int, n int) *fakeReader {
	r := &fakeReader{}
	for i := 0; i < n; i++ {
		r.recs = append(r.recs, kafka.Message{
			Topic: "t", Partition: partition, Offset: int64(i),
			Value:   []byte(fmt.Sprintf("payload-%d", i)),
			Headers: []kafka.Header{{Key: HeaderUUID, Value: []byte(fmt.Sprintf("uuid-%d", i))}},
		})
	}
	return r
}

func (r *fakeReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	r.mu.Lock()
	if r.next < len(r.recs) {
		m := r.recs[r.next]
		r.next++
		r.mu.Unlock()
		return m, nil
	}
	r.mu.Unlock()
	<-ctx.Done()
	return kafka.Message{}, ctx.Err()
}

func (r *fakeReader) CommitMessages(_ context.Context, msgs ...kafka.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("commit after close")
	}
	if r.failCommits > 0 {
		r.failCommits--
		return errors.New("rebalance in progress")
	}
	r.commits = append(r.commits, append([]kafka.Message(nil), msgs...))
	return nil
}

func (r *fakeReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

func (r *fakeReader) fetched() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next
}

// committedOffsets flattens the commit calls of partition 0, in order.
func (r *fakeReader) committedOffsets() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int64
	for _, c := range r.commits {
		for _, m := range c {
			out = append(out, m.Offset)
		}
	}
	return out
}

func (r *fakeReader) lastCommitted() int64 {
	offs := r.committedOffsets()
	if len(offs) == 0 {
		return -1
	}
	return offs[len(offs)-1]
}

type runningSub struct {
	sub     *subscription
	reader  *fakeReader
	closing chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
}

func startSub(t *testing.T, r *fakeReader, closeTimeout time.Duration, logger watermill.LoggerAdapter) *runningSub {
	t.Helper()
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	s := newSubscription(subscriptionConfig{
		topic: "t", group: "g", keyField: DefaultKeyMetadataField,
		nackResendSleep: time.Millisecond, closeTimeout: closeTimeout,
	}, r, logger)
	ctx, cancel := context.WithCancel(context.Background())
	rs := &runningSub{sub: s, reader: r, closing: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rs.done)
		s.run(ctx, rs.closing)
	}()
	t.Cleanup(func() {
		cancel()
		<-rs.done
	})
	return rs
}

func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("channel closed")
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
	return nil
}

func TestSubscriptionNackRedeliversSameMessageWithoutSkipping(t *testing.T) {
	rs := startSub(t, newFakeReader(0, 3), time.Second, nil)

	m0 := receive(t, rs.sub.out)
	m0.Ack()
	m1 := receive(t, rs.sub.out)
	if m1.UUID != "uuid-1" {
		t.Fatalf("got %s, want uuid-1", m1.UUID)
	}
	m1.Payload[0] = 'X' // a handler scribbling on the payload must not leak into the redelivery
	m1.Nack()
	again := receive(t, rs.sub.out)
	if again.UUID != "uuid-1" || string(again.Payload) != "payload-1" || again.Metadata.Get(MetadataOffset) != "1" {
		t.Fatalf("redelivery = %s %q %v, want uuid-1 payload-1 offset 1", again.UUID, again.Payload, again.Metadata)
	}
	// Nothing after the nacked message was fetched while it was pending.
	if n := rs.reader.fetched(); n != 2 {
		t.Fatalf("fetched %d records while offset 1 was nacked, want 2", n)
	}
	testkit.WaitUntil(t, 5*time.Second, "commit of offset 0", func() bool { return rs.reader.lastCommitted() == 0 })
	again.Ack()
	receive(t, rs.sub.out).Ack()
	testkit.WaitUntil(t, 5*time.Second, "commit of offset 2", func() bool { return rs.reader.lastCommitted() == 2 })
}

func TestSubscriptionCloseWithUnackedInFlightCommitsOnlyAcked(t *testing.T) {
	rs := startSub(t, newFakeReader(0, 5), 100*time.Millisecond, nil)
	receive(t, rs.sub.out).Ack()
	receive(t, rs.sub.out).Ack()
	inFlight := receive(t, rs.sub.out)

	start := time.Now()
	close(rs.closing)
	select {
	case <-rs.done:
	case <-time.After(5 * time.Second):
		t.Fatal("subscription did not stop")
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("stopped after %s, before the close timeout for the in-flight message", d)
	}
	if got := rs.reader.lastCommitted(); got != 1 {
		t.Fatalf("last committed offset %d, want 1 (offset 2 was never acked)", got)
	}
	select {
	case <-inFlight.Context().Done():
	default:
		t.Fatal("in-flight message context not cancelled after close")
	}
	if _, ok := <-rs.sub.out; ok {
		t.Fatal("output channel not closed")
	}
	if !rs.reader.closed {
		t.Fatal("reader not closed")
	}
	assertNoDoubleCommit(t, rs.reader)
}

func TestSubscriptionAckDuringCloseGraceIsCommitted(t *testing.T) {
	rs := startSub(t, newFakeReader(0, 5), 5*time.Second, nil)
	receive(t, rs.sub.out).Ack()
	inFlight := receive(t, rs.sub.out)
	rs.cancel() // the Subscribe context ends
	time.Sleep(20 * time.Millisecond)
	inFlight.Ack()
	select {
	case <-rs.done:
	case <-time.After(5 * time.Second):
		t.Fatal("subscription did not stop after the in-flight ack")
	}
	if got := rs.reader.lastCommitted(); got != 1 {
		t.Fatalf("last committed offset %d, want 1", got)
	}
	if n := rs.reader.fetched(); n != 2 {
		t.Fatalf("fetched %d records, want 2: fetching must stop at shutdown", n)
	}
}

func TestSubscriptionCommitFailureIsLoggedAndRetriedNotSkipped(t *testing.T) {
	r := newFakeReader(0, 3)
	r.failCommits = 1
	logs := &captureLogger{}
	rs := startSub(t, r, time.Second, logs)
	receive(t, rs.sub.out).Ack() // its commit fails
	testkit.WaitUntil(t, 5*time.Second, "the failed commit to be logged", func() bool { return logs.has("Committing offsets failed") })
	receive(t, rs.sub.out).Ack()
	receive(t, rs.sub.out).Ack()
	testkit.WaitUntil(t, 5*time.Second, "commit of offset 2", func() bool { return r.lastCommitted() == 2 })
	assertNoDoubleCommit(t, r)
}

func TestSubscriptionFailedCommitIsRetriedWithoutNewAcks(t *testing.T) {
	r := newFakeReader(0, 1)
	r.failCommits = 1
	rs := startSub(t, r, time.Second, nil)
	receive(t, rs.sub.out).Ack()
	testkit.WaitUntil(t, 5*time.Second, "retry of the failed commit", func() bool { return r.lastCommitted() == 0 })
}

// assertNoDoubleCommit checks that commits only ever move forward.
func assertNoDoubleCommit(t *testing.T, r *fakeReader) {
	t.Helper()
	offs := r.committedOffsets()
	for i := 1; i < len(offs); i++ {
		if offs[i] <= offs[i-1] {
			t.Fatalf("commits %v do not strictly increase", offs)
		}
	}
}

func TestSubscriptionEphemeralGroupCommitsNothing(t *testing.T) {
	r := newFakeReader(0, 3)
	s := newSubscription(subscriptionConfig{
		topic: "t", group: "g", keyField: DefaultKeyMetadataField,
		closeTimeout: time.Second, noCommit: true,
	}, r, watermill.NopLogger{})
	closing := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(context.Background(), closing)
	}()
	for i := 0; i < 3; i++ {
		receive(t, s.out).Ack()
	}
	close(closing)
	<-done
	if offs := r.committedOffsets(); len(offs) != 0 {
		t.Fatalf("ephemeral group committed %v", offs)
	}
}

// newKeyedFakeReader serves one record per key on partition 0; "" is a
// record without a key.
func newKeyedFakeReader(keys ...string) *fakeReader {
	r := newFakeReader(0, len(keys))
	for i, k := range keys {
		if k != "" {
			r.recs[i].Key = []byte(k)
		}
	}
	return r
}

// TestSubscriptionConcurrencyOverlapsKeysKeepsEachKeyInOrder: above 1,
// messages of different keys are in flight together, a key waits for its
// predecessor without holding up other keys (nor taking a slot while it
// waits), and commits still stop at the first unacked offset.
func TestSubscriptionConcurrencyOverlapsKeysKeepsEachKeyInOrder(t *testing.T) {
	r := newKeyedFakeReader("a", "b", "a", "c", "", "d")
	s := newSubscription(subscriptionConfig{
		topic: "t", group: "g", keyField: DefaultKeyMetadataField,
		nackResendSleep: time.Millisecond, closeTimeout: time.Second, concurrency: 4,
	}, r, watermill.NopLogger{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.run(ctx, make(chan struct{})) }()
	t.Cleanup(func() { cancel(); <-done })

	// Offset 2 (key a) waits for offset 0 without a slot; offsets 3 (key
	// c) and 4 (no key) do not wait for it. Four slots: 0, 1, 3 and 4 in
	// flight, 2 queued, 5 not handed out.
	got := map[string]*message.Message{}
	for range 4 {
		m := receive(t, s.out)
		got[m.UUID] = m
	}
	for _, want := range []string{"uuid-0", "uuid-1", "uuid-3", "uuid-4"} {
		if got[want] == nil {
			t.Fatalf("in flight: %v, want uuid-0, uuid-1, uuid-3 and uuid-4", keysOf(got))
		}
	}
	select {
	case m := <-s.out:
		t.Fatalf("%s handed out with every slot taken", m.UUID)
	case <-time.After(50 * time.Millisecond):
	}

	got["uuid-1"].Ack() // out of order: frees a slot, commits nothing
	m := receive(t, s.out)
	if m.UUID != "uuid-5" {
		t.Fatalf("got %s, want uuid-5 (key d, nothing to wait for)", m.UUID)
	}
	got[m.UUID] = m
	time.Sleep(20 * time.Millisecond)
	if c := r.lastCommitted(); c != -1 {
		t.Fatalf("committed %d with offset 0 unacked", c)
	}

	got["uuid-0"].Ack() // key a's next one may go now
	m = receive(t, s.out)
	if m.UUID != "uuid-2" {
		t.Fatalf("got %s, want uuid-2 after its key's uuid-0 was acked", m.UUID)
	}
	got[m.UUID] = m
	testkit.WaitUntil(t, 5*time.Second, "commit of offset 1", func() bool { return r.lastCommitted() == 1 })
	got["uuid-4"].Ack()
	got["uuid-3"].Ack()
	got["uuid-5"].Ack()
	time.Sleep(20 * time.Millisecond)
	if c := r.lastCommitted(); c != 1 {
		t.Fatalf("committed %d with offset 2 unacked", c)
	}
	got["uuid-2"].Ack()
	testkit.WaitUntil(t, 5*time.Second, "commit of offset 5", func() bool { return r.lastCommitted() == 5 })
}

func keysOf(m map[string]*message.Message) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSubscriptionKeyFuncReplacesTheRecordKey: with a KeyFunc the records'
// own keys do not matter; the function's key orders, and the handler gets
// the very message the function saw, and what the function returned
// beside the key comes back in the delivery.
func TestSubscriptionKeyFuncReplacesTheRecordKey(t *testing.T) {
	r := newKeyedFakeReader("a", "b", "c")
	var mu sync.Mutex
	seen := map[*message.Message]bool{}
	s := newSubscription(subscriptionConfig{
		topic: "t", group: "g", keyField: DefaultKeyMetadataField,
		nackResendSleep: time.Millisecond, closeTimeout: time.Second, concurrency: 3,
		key: func(topic string, m *message.Message) (string, any) {
			mu.Lock()
			defer mu.Unlock()
			seen[m] = true
			return "one-instance", m.UUID + "-keyed"
		},
	}, r, watermill.NopLogger{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.run(ctx, make(chan struct{})) }()
	t.Cleanup(func() { cancel(); <-done })

	for i := range 3 {
		m := receive(t, s.out)
		if want := fmt.Sprintf("uuid-%d", i); m.UUID != want {
			t.Fatalf("got %s, want %s: one key, so partition order", m.UUID, want)
		}
		mu.Lock()
		keyed := seen[m]
		mu.Unlock()
		if !keyed {
			t.Fatalf("%s: not the message the key function saw", m.UUID)
		}
		if d, ok := topics.DeliveryOf(m); !ok || d.Key != "one-instance" || d.Keyed != m.UUID+"-keyed" || d.Count != 1 {
			t.Fatalf("%s: delivery %+v (told: %v), want key one-instance, keyed %s-keyed, count 1", m.UUID, d, ok, m.UUID)
		}
		select {
		case other := <-s.out:
			t.Fatalf("%s handed out while %s of the same key was in flight", other.UUID, m.UUID)
		case <-time.After(30 * time.Millisecond):
		}
		m.Ack()
	}
}

// TestKeyQueuesForgetSettledKeys: a key is remembered only while one of its
// records is in flight or queued, so the map does not grow with every
// instance ever seen; queued records run in order and hold no slot while
// they wait; after a stop nothing new starts, and every slot and backlog
// place is given back.
func TestKeyQueuesForgetSettledKeys(t *testing.T) {
	var mu sync.Mutex
	var order []int64
	release := make(chan struct{})
	slots := make(chan struct{}, 4)
	stopCtx, stop := context.WithCancel(context.Background())
	defer stop()
	q := &keyQueues{
		waiting: map[string][]pendingRecord{},
		slots:   slots,
		space:   make(chan struct{}, 8),
		stop:    stopCtx,
		start: func(_ string, p pendingRecord, _ *slot) {
			<-release
			mu.Lock()
			order = append(order, p.rec.Offset)
			mu.Unlock()
		},
	}
	push := func(key string, offset int64) {
		q.space <- struct{}{}
		sl := &slot{ch: slots}
		sl.take(context.Background())
		q.push(key, pendingRecord{rec: kafka.Message{Offset: offset}}, sl)
	}
	for i := range 3 {
		push("order-1", int64(i))
	}
	q.mu.Lock()
	queued := len(q.waiting["order-1"])
	q.mu.Unlock()
	if queued != 2 {
		t.Fatalf("%d queued behind the first, want 2", queued)
	}
	if n := len(slots); n != 1 {
		t.Fatalf("%d slots held with one record in flight and two queued, want 1", n)
	}
	close(release)
	q.wait()
	if fmt.Sprint(order) != "[0 1 2]" {
		t.Fatalf("ran %v, want [0 1 2]", order)
	}
	if n := len(q.waiting); n != 0 {
		t.Fatalf("%d keys remembered after everything settled", n)
	}

	stop()
	push("order-2", 9)
	q.wait()
	if fmt.Sprint(order) != "[0 1 2]" || len(slots) != 0 || len(q.space) != 0 {
		t.Fatalf("after stop: ran %v, %d slots and %d backlog places held; want nothing new run and none held", order, len(slots), len(q.space))
	}
}
