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

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
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
	waitFor(t, "commit of offset 0", func() bool { return rs.reader.lastCommitted() == 0 })
	again.Ack()
	receive(t, rs.sub.out).Ack()
	waitFor(t, "commit of offset 2", func() bool { return rs.reader.lastCommitted() == 2 })
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
	waitFor(t, "the failed commit to be logged", func() bool { return logs.has("Committing offsets failed") })
	receive(t, rs.sub.out).Ack()
	receive(t, rs.sub.out).Ack()
	waitFor(t, "commit of offset 2", func() bool { return r.lastCommitted() == 2 })
	assertNoDoubleCommit(t, r)
}

func TestSubscriptionFailedCommitIsRetriedWithoutNewAcks(t *testing.T) {
	r := newFakeReader(0, 1)
	r.failCommits = 1
	rs := startSub(t, r, time.Second, nil)
	receive(t, rs.sub.out).Ack()
	waitFor(t, "retry of the failed commit", func() bool { return r.lastCommitted() == 0 })
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
