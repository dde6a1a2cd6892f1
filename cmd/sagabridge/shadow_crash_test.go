package main

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order/legacy"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics"
)

// TestWorkerSIGKILLShadowMidFlight kills the worker while OrderSaga
// instances in shadow mode are between steps of the legacy flow they
// follow; after a restart each instance publishes exactly one shadow
// outcome, agreeing with the legacy flow, and the legacy flow took each
// order once.
func TestWorkerSIGKILLShadowMidFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	const n = 60
	dir := t.TempDir()
	br := natsCrashBroker(t, dir)
	cfgPath := writeConfig(t, dir, br.yaml, embeddedEngine(dir), "127.0.0.1:0")
	// The timeout outlasts the worker's downtime: a legacy step that
	// happened while it was down is not "stuck".
	addMigration(t, cfgPath, "shadow", 0, "60s")
	logPath := filepath.Join(dir, "worker.log")

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	client := br.connect(t, "test-client")
	lc := br.connect(t, "legacy-choreography")
	watch := br.connect(t, "test-shadow-watcher")
	choreo, err := legacy.New(legacy.Config{OrdersTopic: "legacy.orders.placed", Delay: 15 * time.Millisecond}, lc.Publisher(), lc.Subscriber(), nil)
	if err != nil {
		t.Fatal(err)
	}
	shadow := simulated.NewWatcher(nil)
	wg.Add(2)
	go func() { defer wg.Done(); _ = choreo.Run(ctx) }()
	go func() { defer wg.Done(); _ = shadow.Run(ctx, watch.Subscriber(), topics.ShadowOutcomes) }()

	w := startWorker(t, cfgPath, logPath)
	orders := publishOrders(t, client.Publisher(), "shadow-crash", n)
	killAfter(t, w, shadow, 10, n)

	startWorker(t, cfgPath, logPath)
	testkit.WaitUntil(t, 3*time.Minute, "every shadow outcome after restart", func() bool { return shadow.Count() >= n })
	time.Sleep(time.Second) // a duplicate would arrive now

	outcomes := shadow.Outcomes()
	for id, o := range orders {
		got := outcomes[id]
		if len(got) != 1 {
			t.Errorf("%s: %d distinct shadow outcomes, want 1", id, len(got))
			continue
		}
		out := got[0].Outcome
		want := topics.StatusCompleted
		if o.FailPayment {
			want = topics.StatusCompensated
		}
		if out.Status != want || out.Migration == nil || len(out.Migration.Divergences) != 0 {
			t.Errorf("%s: %s with %+v, want %s and no divergence", id, out.Status, out.Migration, want)
		}
	}
	if d := shadow.Duplicates(); d != 0 {
		t.Errorf("%d shadow outcome deliveries repeated an id", d)
	}
	if got := choreo.Snapshot().Orders; got != n {
		t.Errorf("the legacy flow took %d orders, want each of the %d once", got, n)
	}
	if t.Failed() {
		b, _ := os.ReadFile(logPath)
		t.Logf("worker log:\n%s", b)
	}
}
