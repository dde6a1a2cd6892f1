package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sagabridge/sagabridge/bridge/dlqstore"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// TestWorkerSIGTERMMidLoad stops a worker with SIGTERM while sagas are
// between steps and events wait on the broker: the worker exits 0, the
// durable consumers it used survive, and after a restart on the same data
// every order ends in exactly one outcome with the participants' books
// balanced, and nothing was dead-lettered. An event acked without effect
// would leave its order without an outcome; a consumer removed at shutdown
// would replay every stored event, and the replies of finished sagas would
// land in the dead-letter topic. The worker logs at info: every line is a
// JSON record, the engine library's included, and the stop warns of
// nothing (the work it abandons runs again after the restart).
func TestWorkerSIGTERMMidLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	const n = 100
	dir := t.TempDir()
	srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	cfgPath := writeWorkerConfig(t, dir, srv.ClientURL())
	logPath := filepath.Join(dir, "worker.log")
	dumpOnFailure(t, logPath)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	client := mustPubSub(t, srv.ClientURL(), "test-client")
	legacy := mustPubSub(t, srv.ClientURL(), "legacy-services")
	watch := mustPubSub(t, srv.ClientURL(), "test-watcher")
	parts, err := simulated.New(simulated.Config{ReplyDelay: 20 * time.Millisecond}, legacy.Publisher(), legacy.Subscriber(), nil)
	if err != nil {
		t.Fatal(err)
	}
	watcher := simulated.NewWatcher(nil)
	wg.Add(2)
	go func() { defer wg.Done(); _ = parts.Run(ctx) }()
	go func() { defer wg.Done(); _ = watcher.Run(ctx, watch.Subscriber(), topics.Outcomes) }()

	w := startWorker(t, cfgPath, logPath, workerLogLevelEnv+"=info")
	orders := map[string]simulated.Order{}
	for i := 1; i <= n; i++ {
		o := simulated.Order{OrderID: "term-" + itoa(i), Amount: float64(i), FailPayment: i%4 == 0}
		orders["order-"+o.OrderID] = o
		if err := simulated.PublishOrder(client.Publisher(), order.OrdersPlaced, "evt-"+o.OrderID, o); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitUntil(t, 60*time.Second, "the first outcomes", func() bool { return watcher.Count() >= 10 })

	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	exited := make(chan error, 1)
	go func() { exited <- w.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("worker after SIGTERM: %v (want exit status 0)", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("worker still running 60s after SIGTERM")
	}
	checkStopLog(t, logPath)
	before := watcher.Count()
	t.Logf("SIGTERM after %d of %d outcomes; exited 0 after %s", before, n, time.Since(sent).Round(time.Millisecond))
	if before >= n {
		t.Fatal("every saga finished before SIGTERM; the test proves nothing")
	}
	if code := w.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}

	// The durable consumers outlive the worker, holding its progress.
	js, err := jetstream.New(client.Conn())
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{order.OrdersPlaced, order.InventoryReplies, order.PaymentReplies, order.ShippingReplies} {
		ci, err := js.Consumer(ctx, natsjs.StreamName(topic), "sagabridge_"+natsjs.StreamName(topic))
		if err != nil {
			t.Errorf("consumer of %s after SIGTERM: %v", topic, err)
			continue
		}
		info := ci.CachedInfo()
		t.Logf("%s after SIGTERM: ack floor %d, %d unacked, %d waiting", topic, info.AckFloor.Stream, info.NumAckPending, info.NumPending)
	}

	startWorker(t, cfgPath, logPath)
	testkit.WaitUntil(t, 2*time.Minute, "every outcome after restart", func() bool { return watcher.Count() >= n })
	time.Sleep(time.Second) // a duplicate would arrive now

	outcomes := watcher.Outcomes()
	for id, o := range orders {
		got := outcomes[id]
		if len(got) != 1 {
			t.Errorf("%s: %d distinct outcomes, want 1", id, len(got))
			continue
		}
		want := topics.StatusCompleted
		if o.FailPayment {
			want = topics.StatusCompensated
		}
		if got[0].Outcome.Status != want {
			t.Errorf("%s: %s, want %s", id, got[0].Outcome.Status, want)
		}
	}
	if d := watcher.Duplicates(); d != 0 {
		t.Errorf("%d outcome deliveries repeated an id", d)
	}
	led := parts.Ledger().Snapshot()
	for id, o := range orders {
		if o.FailPayment && (led.Reserved[o.OrderID] || led.Charged[o.OrderID]) {
			t.Errorf("%s: compensated but still holds stock or money", id)
		}
	}
	st, err := dlqstore.Open(client.Conn(), "sagabridge.dlq")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.List(ctx, dlqstore.Filter{}, func(it dlqstore.Item) error {
		t.Errorf("dead letter %d: %s on %s: %s", it.Seq, it.Entry.Failure.Kind, it.Entry.Failure.OriginTopic, it.Entry.Failure.Reason)
		return nil
	}); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// checkStopLog: every line of the worker's log is a JSON record with an
// RFC 3339 time and a level, and none is at warn or above.
func checkStopLog(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec struct {
			Level  string `json:"level"`
			TS     string `json:"ts"`
			Logger string `json:"logger"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Level == "" {
			t.Errorf("log line is not a zap record: %s", line)
			continue
		}
		if _, err := time.Parse(time.RFC3339Nano, rec.TS); err != nil {
			t.Errorf("log time %q is not RFC 3339: %s", rec.TS, line)
		}
		if rec.Level != "debug" && rec.Level != "info" {
			t.Errorf("a stop logged at %s: %s", rec.Level, line)
		}
	}
}
