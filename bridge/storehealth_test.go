package bridge_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
)

// TestDatabaseDeletedIsNotReady: the embedded engine's database file
// deleted under a running worker (SQLite keeps writing to the unlinked
// file, and all of it is gone at the next start) makes /readyz not ready
// with the cause, and the events that arrive from then on wait on the
// broker as in an engine outage: not acked into a lost database, not
// dead-lettered, no outcome.
func TestDatabaseDeletedIsNotReady(t *testing.T) {
	kit := natsKit(t)
	cfg := devConfig(t, kit, t.TempDir())
	s := startStack(t, kit, cfg, stackOptions{participants: true})

	publishOrder(t, s, "evt-db-1", simulated.Order{OrderID: "db-1", Amount: 1, Quantity: 1, SKU: "sku-1"})
	testkit.WaitUntil(t, 30*time.Second, "the first order's outcome", func() bool { return len(s.watcher.Outcomes()["order-db-1"]) == 1 })
	assertReady(t, s.bridge)

	if err := os.Remove(cfg.Engine.Embedded.DBPath); err != nil {
		t.Fatal(err)
	}
	var why error
	testkit.WaitUntil(t, 10*time.Second, "/readyz to report the deleted database", func() bool {
		why = readyErr(s.bridge)
		return why != nil
	})
	if msg := why.Error(); !strings.Contains(msg, "engine:") || !strings.Contains(msg, "was deleted") {
		t.Fatalf("/readyz says %q; want the engine check naming the deleted file", msg)
	}
	t.Logf("/readyz: %v", why)

	st := s.bridge.Stats()
	deadBefore, startedBefore := st.DeadLettered.Load(), st.Started.Load()
	publishOrder(t, s, "evt-db-2", simulated.Order{OrderID: "db-2", Amount: 1, Quantity: 1, SKU: "sku-1"})
	testkit.WaitUntil(t, 10*time.Second, "the bridge to try the next order on the engine", func() bool { return st.EngineErrors.Load() > 0 })
	time.Sleep(2 * time.Second)
	if n := st.DeadLettered.Load() - deadBefore; n != 0 {
		t.Errorf("%d events dead-lettered while the database was gone", n)
	}
	if n := st.Started.Load() - startedBefore; n != 0 {
		t.Errorf("%d sagas started into the deleted database", n)
	}
	if n := len(s.watcher.Outcomes()["order-db-2"]); n != 0 {
		t.Errorf("%d outcomes for the order published after the database was deleted", n)
	}
	if readyErr(s.bridge) == nil {
		t.Error("/readyz ready again with the database still gone")
	}
}
