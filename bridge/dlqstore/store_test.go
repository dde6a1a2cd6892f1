package dlqstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/bridge/dlqstore"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

const dlqTopic = "sagabridge.dlq"

type env struct {
	ps    *natsjs.PubSub
	store *dlqstore.Store
	js    jetstream.JetStream
	now   time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ps, err := natsjs.New(natsjs.Config{URL: srv.ClientURL(), ConsumerGroup: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ps.Close() })
	st, err := dlqstore.Open(ps.Conn(), dlqTopic)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(ps.Conn())
	if err != nil {
		t.Fatal(err)
	}
	return &env{ps: ps, store: st, js: js, now: time.Now().UTC().Truncate(time.Millisecond)}
}

// deadLetter publishes what the bridge would for msg failing with f; the
// origin topic's stream is created as the bridge's subscription would.
func (e *env) deadLetter(t *testing.T, msg *message.Message, f dlq.Failure) {
	t.Helper()
	if err := e.ps.EnsureStream(f.OriginTopic); err != nil {
		t.Fatal(err)
	}
	out, err := dlq.NewMessage(msg, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ps.Publisher().Publish(dlqTopic, out); err != nil {
		t.Fatal(err)
	}
}

func original(i int) *message.Message {
	m := message.NewMessage(fmt.Sprintf("orig-%02d", i), []byte(fmt.Sprintf(`{"n":%d}`, i)))
	m.Metadata.Set("Content-Type", "application/json")
	m.Metadata.Set("ce-type", "test.event")
	m.Metadata.Set("X-Custom", fmt.Sprintf("h%d", i))
	return m
}

// streamMsgs reads every message stored on a topic's stream.
func (e *env) streamMsgs(t *testing.T, topic string) []*message.Message {
	t.Helper()
	ctx := context.Background()
	st, err := e.js.Stream(ctx, natsjs.StreamName(topic))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*message.Message
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := (&wmnats.NATSMarshaler{}).Unmarshal(&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func (e *env) count(t *testing.T) uint64 {
	t.Helper()
	n, err := e.store.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestListShowPurge(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if n := e.count(t); n != 0 {
		t.Fatalf("empty DLQ counts %d", n)
	}
	var none []dlqstore.Item
	if err := e.store.List(ctx, dlqstore.Filter{}, func(it dlqstore.Item) error { none = append(none, it); return nil }); err != nil || len(none) != 0 {
		t.Fatalf("list of a missing stream: %v %v", none, err)
	}
	fails := []dlq.Failure{
		{Kind: dlq.KindDecode, Reason: "not JSON", OriginTopic: "orders.placed"},
		{Kind: dlq.KindDecode, Reason: "not JSON either", OriginTopic: "orders.placed"},
		{Kind: dlq.KindFinished, Reason: "instance order-1 has FINISHED", Route: "payment", OriginTopic: "payment.replies", EventType: "payment.charged"},
		{Kind: dlq.KindFinished, Reason: "instance order-2 has finished", Route: "payment", OriginTopic: "payment.replies", EventType: "payment.declined"},
		{Kind: dlq.KindNotFound, Reason: "waited 5m", Route: "shipping", OriginTopic: "shipping.replies", EventType: "shipping.created"},
	}
	for i, f := range fails {
		f.FailedAt = e.now.Add(time.Duration(i-len(fails)) * time.Hour) // 5h ago … 1h ago
		f.Attempts = i + 1
		e.deadLetter(t, original(i), f)
	}
	list := func(f dlqstore.Filter) []dlqstore.Item {
		t.Helper()
		var out []dlqstore.Item
		if err := e.store.List(ctx, f, func(it dlqstore.Item) error { out = append(out, it); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	all := list(dlqstore.Filter{})
	if len(all) != len(fails) {
		t.Fatalf("listed %d, want %d", len(all), len(fails))
	}
	for i, it := range all {
		if it.Err != nil || it.Seq != uint64(i+1) || it.Entry.Failure.Attempts != i+1 || string(it.Entry.Payload) != fmt.Sprintf(`{"n":%d}`, i) ||
			it.Entry.Metadata["X-Custom"] != fmt.Sprintf("h%d", i) || !it.Entry.Failure.FailedAt.Equal(e.now.Add(time.Duration(i-len(fails))*time.Hour)) {
			t.Errorf("item %d: %+v", i, it)
		}
	}
	for _, c := range []struct {
		name string
		f    dlqstore.Filter
		want int
	}{
		{"kind", dlqstore.Filter{Kind: dlq.KindDecode}, 2},
		{"route", dlqstore.Filter{Route: "payment"}, 2},
		{"reason is case-insensitive", dlqstore.Filter{Reason: "finished"}, 2},
		{"type prefix", dlqstore.Filter{Type: "payment.*"}, 2},
		{"type exact", dlqstore.Filter{Type: "payment.charged"}, 1},
		{"topic", dlqstore.Filter{Topic: "shipping.replies"}, 1},
		{"since", dlqstore.Filter{Since: e.now.Add(-2*time.Hour - time.Minute)}, 2},
		{"until is exclusive", dlqstore.Filter{Until: e.now.Add(-4 * time.Hour)}, 1},
		{"window", dlqstore.Filter{Since: e.now.Add(-4 * time.Hour), Until: e.now.Add(-2 * time.Hour)}, 2},
		{"nothing", dlqstore.Filter{Route: "payment", Kind: dlq.KindDecode}, 0},
	} {
		if got := len(list(c.f)); got != c.want {
			t.Errorf("%s (%s): %d, want %d", c.name, c.f, got, c.want)
		}
	}

	third := all[2]
	for _, id := range []string{"3", third.Entry.ID, "orig-02"} {
		it, err := e.store.Get(ctx, id)
		if err != nil || it.Seq != 3 || it.Entry.Failure.EventType != "payment.charged" {
			t.Errorf("get %q: %+v %v", id, it, err)
		}
	}
	for _, id := range []string{"99", "nobody"} {
		if _, err := e.store.Get(ctx, id); !errors.Is(err, dlqstore.ErrNotFound) {
			t.Errorf("get %q: %v, want ErrNotFound", id, err)
		}
	}

	n, err := e.store.Purge(ctx, dlqstore.Filter{Kind: dlq.KindFinished})
	if err != nil || n != 2 {
		t.Fatalf("purge finished: %d %v", n, err)
	}
	if got := list(dlqstore.Filter{}); len(got) != 3 || got[2].Entry.Failure.Kind != dlq.KindNotFound {
		t.Errorf("after a filtered purge: %d left", len(got))
	}
	if n, err := e.store.Purge(ctx, dlqstore.Filter{}); err != nil || n != 3 {
		t.Fatalf("purge all: %d %v", n, err)
	}
	if n := e.count(t); n != 0 {
		t.Errorf("%d left after purge", n)
	}
}

// TestReplayInterruptedResumes stops a replay right after one re-publish
// was stored and before its dead-letter message was removed and acked, as
// a crash there would, then runs it again: every message reaches its origin
// topic exactly once, with its payload and headers, and the DLQ is empty.
func TestReplayInterruptedResumes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n = 20
	want := map[string]*message.Message{} // replay id → original
	for i := range n {
		topic := "orders.placed"
		if i%2 == 1 {
			topic = "payment.replies"
		}
		orig := original(i)
		e.deadLetter(t, orig, dlq.Failure{Kind: dlq.KindEngine, Reason: "engine down", OriginTopic: topic, FailedAt: e.now})
		want[fmt.Sprintf("orig-%02d/replay/%d", i, e.now.UnixNano())] = orig
	}
	crash := errors.New("crash after publish")
	opts := dlqstore.ReplayOptions{Batch: 4, AckWait: time.Second}
	first := opts
	first.AfterPublish = func(it dlqstore.Item) error {
		if it.Seq == 7 {
			return crash
		}
		return nil
	}
	res, err := e.store.Replay(ctx, first)
	if !errors.Is(err, crash) {
		t.Fatalf("first run: %v", err)
	}
	if res.Replayed != 6 || res.Done || res.Resumed {
		t.Fatalf("first run: %+v", res)
	}
	if got := len(e.streamMsgs(t, "orders.placed")) + len(e.streamMsgs(t, "payment.replies")); got != 7 {
		t.Fatalf("after the crash the origin topics hold %d, want 7 (six replayed, one published but not acked)", got)
	}
	if c := e.count(t); c != n-6 {
		t.Fatalf("DLQ holds %d after the crash, want %d", c, n-6)
	}

	var seen []dlqstore.ReplayResult
	second := opts
	second.Progress = func(r dlqstore.ReplayResult) { seen = append(seen, r) }
	res, err = e.store.Replay(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || !res.Done || res.Replayed != n-6 || res.Duplicates != 1 || res.Consumer == "" {
		t.Fatalf("second run: %+v", res)
	}
	if len(seen) != n-6 {
		t.Errorf("progress called %d times", len(seen))
	}
	if c := e.count(t); c != 0 {
		t.Errorf("DLQ holds %d after the replay", c)
	}
	if _, err := e.js.Consumer(ctx, natsjs.StreamName(dlqTopic), res.Consumer); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("replay consumer still there after a finished replay: %v", err)
	}

	got := map[string]int{}
	for _, topic := range []string{"orders.placed", "payment.replies"} {
		for _, m := range e.streamMsgs(t, topic) {
			got[m.UUID]++
			orig, ok := want[m.UUID]
			if !ok {
				t.Errorf("%s: unexpected message %s", topic, m.UUID)
				continue
			}
			if string(m.Payload) != string(orig.Payload) {
				t.Errorf("%s: payload %s, want %s", m.UUID, m.Payload, orig.Payload)
			}
			for k, v := range orig.Metadata {
				if m.Metadata.Get(k) != v {
					t.Errorf("%s: header %s = %q, want %q", m.UUID, k, m.Metadata.Get(k), v)
				}
			}
			for k := range m.Metadata {
				if len(k) > 15 && k[:15] == "Sagabridge-Dlq-" {
					t.Errorf("%s: replay carries %s", m.UUID, k)
				}
			}
		}
	}
	if len(got) != n {
		t.Errorf("%d distinct messages replayed, want %d", len(got), n)
	}
	for id, c := range got {
		if c != 1 {
			t.Errorf("%s stored %d times", id, c)
		}
	}
}

func TestReplayFilterLimitDryRun(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 10 {
		kind := dlq.KindNotFound
		if i%2 == 1 {
			kind = dlq.KindDecode
		}
		e.deadLetter(t, original(i), dlq.Failure{Kind: kind, Reason: "r", OriginTopic: "orders.placed", FailedAt: e.now})
	}
	f := dlqstore.Filter{Kind: dlq.KindNotFound}

	dry, err := e.store.Replay(ctx, dlqstore.ReplayOptions{Filter: f, DryRun: true})
	if err != nil || dry.Replayed != 5 || dry.Skipped != 5 || dry.Scanned != 10 {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	if c := e.count(t); c != 10 || len(e.streamMsgs(t, "orders.placed")) != 0 {
		t.Fatalf("a dry run changed something")
	}

	res, err := e.store.Replay(ctx, dlqstore.ReplayOptions{Filter: f, Limit: 2, Rate: 1000})
	if err != nil || res.Replayed != 2 || res.Done {
		t.Fatalf("limited run: %+v %v", res, err)
	}
	res, err = e.store.Replay(ctx, dlqstore.ReplayOptions{Filter: f})
	if err != nil || res.Replayed != 3 || !res.Done || !res.Resumed {
		t.Fatalf("rest: %+v %v", res, err)
	}
	if c := e.count(t); c != 5 {
		t.Errorf("DLQ holds %d, want the 5 decode failures", c)
	}
	if got := len(e.streamMsgs(t, "orders.placed")); got != 5 {
		t.Errorf("origin holds %d, want 5", got)
	}
	// Another selection starts from the beginning on its own consumer.
	res, err = e.store.Replay(ctx, dlqstore.ReplayOptions{Filter: dlqstore.Filter{Kind: dlq.KindDecode}})
	if err != nil || res.Replayed != 5 || res.Resumed || !res.Done {
		t.Fatalf("decode failures: %+v %v", res, err)
	}
	if c := e.count(t); c != 0 {
		t.Errorf("DLQ holds %d", c)
	}

	// A replay interrupted by its context stops cleanly.
	e.deadLetter(t, original(42), dlq.Failure{Kind: dlq.KindDecode, Reason: "r", OriginTopic: "orders.placed", FailedAt: e.now.Add(time.Second)})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.store.Replay(cctx, dlqstore.ReplayOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled replay: %v", err)
	}
	if res, err := e.store.Replay(ctx, dlqstore.ReplayOptions{}); err != nil || res.Replayed != 1 {
		t.Errorf("after cancel: %+v %v", res, err)
	}
}

// TestReplayTruncatedFromOriginal: a truncated dead letter holds no
// payload; replay publishes the original it points at, as the origin
// stream holds it (every header value included), and keeps a truncated
// dead letter whose original is gone, saying so.
func TestReplayTruncatedFromOriginal(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const topic = "orders.placed"
	if err := e.ps.EnsureStream(topic); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"big":"payload"}`)
	ack, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: topic, Data: body,
		Header: nats.Header{"ce-type": {"a", "b"}, "X-Other": {"x"}}})
	if err != nil {
		t.Fatal(err)
	}
	truncate := func(seq uint64) {
		orig := message.NewMessage("", body)
		orig.Metadata.Set(natsjs.MetaStream, natsjs.StreamName(topic))
		orig.Metadata.Set(natsjs.MetaStreamSeq, fmt.Sprint(seq))
		out, err := dlq.Truncated(orig, dlq.Failure{Kind: dlq.KindDecode, Reason: "header repeated", OriginTopic: topic, FailedAt: e.now}, "test")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.ps.Publisher().Publish(dlqTopic, out); err != nil {
			t.Fatal(err)
		}
	}
	truncate(ack.Sequence)
	truncate(999) // never stored

	res, err := e.store.Replay(ctx, dlqstore.ReplayOptions{AckWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 1 || res.Kept != 1 || len(res.KeptWhy) != 1 || !strings.Contains(res.KeptWhy[0], "no longer in its stream") {
		t.Fatalf("replay: %+v", res)
	}
	if c := e.count(t); c != 1 {
		t.Errorf("DLQ holds %d, want the one whose original is gone", c)
	}
	st, err := e.js.Stream(ctx, natsjs.StreamName(topic))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetMsg(ctx, ack.Sequence+1)
	if err != nil {
		t.Fatalf("the replayed original: %v", err)
	}
	if string(raw.Data) != string(body) || len(raw.Header.Values("ce-type")) != 2 || raw.Header.Get("X-Other") != "x" {
		t.Errorf("replayed %q with headers %v, want the original", raw.Data, raw.Header)
	}
}

// TestConcurrentReplaysBothFinish: two replays whose filters select the
// same messages run at once (two durable consumers); each message reaches
// its topic once (the second publish is a duplicate the stream drops), and
// neither run aborts when the other removed a message first.
func TestConcurrentReplaysBothFinish(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n = 40
	for i := range n {
		e.deadLetter(t, original(i), dlq.Failure{Kind: dlq.KindEngine, Reason: "engine down", OriginTopic: "orders.placed", FailedAt: e.now})
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, f := range []dlqstore.Filter{{}, {Kind: dlq.KindEngine}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.store.Replay(ctx, dlqstore.ReplayOptions{Filter: f, Batch: 4, AckWait: time.Second})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replay %d: %v", i, err)
		}
	}
	if c := e.count(t); c != 0 {
		t.Errorf("DLQ holds %d after both replays", c)
	}
	seen := map[string]int{}
	for _, m := range e.streamMsgs(t, "orders.placed") {
		seen[m.UUID]++
	}
	if len(seen) != n {
		t.Errorf("%d distinct messages replayed, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s stored %d times", id, c)
		}
	}
}
