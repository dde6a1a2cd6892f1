package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/sagas/order"

	"gopkg.in/yaml.v3"

	"github.com/sagabridge/sagabridge/bridge/migrate"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// addMigration adds the OrderSaga's migration wiring (cmd/sagabridge/internal/devenv's
// migration.yaml) to a worker config file, in mode with percent and the
// shadow's legacy step timeout.
func addMigration(t *testing.T, cfgPath, mode string, percent int, timeout string) {
	t.Helper()
	var cfg, frag map[string]any
	b, err := os.ReadFile(cfgPath)
	if err == nil {
		err = yaml.Unmarshal(b, &cfg)
	}
	if err == nil {
		err = yaml.Unmarshal(order.MigrationYAML(), &frag)
	}
	if err != nil {
		t.Fatal(err)
	}
	routes := cfg["routes"].([]any)
	if !strings.Contains(fmt.Sprint(routes), "legacy-observed") {
		cfg["routes"] = append(routes, frag["routes"].([]any)...)
	}
	mig := frag["migration"].(map[string]any)
	w := mig["workflows"].(map[string]any)["OrderSaga"].(map[string]any)
	w["mode"], w["timeout"] = mode, timeout
	if mode == "canary" {
		w["percent"] = percent
	}
	cfg["migration"] = mig
	if b, err = yaml.Marshal(cfg); err == nil {
		err = os.WriteFile(cfgPath, b, 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestSIGHUPChangesCanaryShare runs a worker with the OrderSaga at canary
// 30 %, raises it to 60 % by editing the file and sending SIGHUP, and shows
// that an order in bucket 30..59 was handed to the legacy flow before and
// is driven by the saga after; a change that needs a restart is refused.
func TestSIGHUPChangesCanaryShare(t *testing.T) {
	dir := t.TempDir()
	srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	cfgPath := writeWorkerConfig(t, dir, srv.ClientURL())
	setCanary := func(percent int, timeout string) {
		t.Helper()
		addMigration(t, cfgPath, "canary", percent, timeout)
	}
	setCanary(30, "10s")
	logPath := filepath.Join(dir, "worker.log")
	t.Setenv(workerLogLevelEnv, "info") // the reload says what it applied at info
	w := startWorker(t, cfgPath, logPath)

	// Who got which order: the legacy flow (hand-off topic) or the saga
	// (its first command).
	var mu sync.Mutex
	handedOff, commanded := map[string]bool{}, map[string]bool{}
	client := mustPubSub(t, srv.ClientURL(), "test-observer")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for topic, seen := range map[string]map[string]bool{"legacy.orders.placed": handedOff, order.InventoryCommands: commanded} {
		ch, err := client.Subscriber().Subscribe(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for msg := range ch {
				var ev topics.CloudEvent
				if json.Unmarshal(msg.Payload, &ev) == nil {
					mu.Lock()
					seen[ev.Subject] = true // order ID on orders, instance ID on commands
					mu.Unlock()
				}
				msg.Ack()
			}
		}()
	}
	got := func(m map[string]bool, k string) bool { mu.Lock(); defer mu.Unlock(); return m[k] }

	// Two orders whose bucket is in 30..59: legacy at 30 %, saga at 60 %.
	var ids []string
	for i := 0; len(ids) < 2; i++ {
		id := fmt.Sprintf("hup-%d", i)
		if b := migrate.Bucket("order-" + id); b >= 30 && b < 60 {
			ids = append(ids, id)
		}
	}
	publish := func(id string) {
		t.Helper()
		if err := simulated.PublishOrder(client.Publisher(), order.OrdersPlaced, "evt-"+id, simulated.Order{OrderID: id, Amount: 1}); err != nil {
			t.Fatal(err)
		}
	}
	publish(ids[0])
	testkit.WaitUntil(t, time.Minute, "the first order handed to the legacy flow", func() bool { return got(handedOff, ids[0]) })

	setCanary(60, "10s")
	if err := w.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logHas := func(s string) bool { b, _ := os.ReadFile(logPath); return strings.Contains(string(b), s) }
	testkit.WaitUntil(t, 30*time.Second, "the reload applied", func() bool { return logHas(`"mode":"canary","percent":60`) })
	publish(ids[1])
	testkit.WaitUntil(t, time.Minute, "the second order driven by the saga", func() bool { return got(commanded, "order-"+ids[1]) })
	if got(handedOff, ids[1]) || got(commanded, "order-"+ids[0]) {
		t.Errorf("an order went both ways: handed off %v, commanded %v", handedOff, commanded)
	}

	setCanary(60, "20s")
	if err := w.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 30*time.Second, "the restart-only change refused", func() bool { return logHas("only mode and percent change without a restart") })
	if w.cmd.ProcessState != nil {
		t.Fatal("the worker exited on SIGHUP")
	}
}
