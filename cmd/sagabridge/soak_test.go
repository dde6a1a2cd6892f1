package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
)

// soakSagas is how many orders the soak places; SAGABRIDGE_SOAK_SAGAS
// changes it for a longer run by hand.
const soakSagas = 10000

// TestSoakRandomFailuresAndKills places 10,000 orders, a random share of
// which the payment or shipping service refuses, while the worker process
// is SIGKILLed at random points and started again. simulated.Check then
// proves, from the outcome topic and the services' ledgers: one outcome
// per order, compensations exactly for the refused ones, and nothing
// reserved, charged or shipped for a compensated order.
func TestSoakRandomFailuresAndKills(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: 10,000 sagas across worker kills")
	}
	n := soakSagas
	if s := os.Getenv("SAGABRIDGE_SOAK_SAGAS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 100 {
			t.Fatalf("SAGABRIDGE_SOAK_SAGAS=%q: want a number ≥ 100", s)
		}
	}
	rng := seededRand(t)
	dir := t.TempDir()
	br := natsRestartable(t, dir)
	broker := map[string]any{"kind": "nats", "concurrency": 64, "nats": br.yaml["nats"]}
	cfgPath := writeConfig(t, dir, broker, embeddedEngine(dir), "127.0.0.1:0")
	logPath := filepath.Join(dir, "worker.log")
	dumpOnFailure(t, logPath)
	rig := startRig(t, br, simulated.Config{})

	// A few kills at random points between a tenth and nine tenths of the
	// outcomes, each after a random extra moment.
	kills := make([]int, 3)
	for i := range kills {
		kills[i] = n/10 + rng.IntN(n*8/10)
	}
	slices.Sort(kills)
	t.Logf("SIGKILL after %v outcomes", kills)

	bin := buildWorker(t)
	start := time.Now()
	orders := randomOrders(rng, "soak", n, 0.15, 0.10)
	w := startBinary(t, bin, cfgPath, logPath)
	rig.publish(t, orders)
	t.Logf("published %d orders in %s", n, time.Since(start).Round(time.Millisecond))
	for _, at := range kills {
		testkit.WaitUntil(t, 5*time.Minute, strconv.Itoa(at)+" outcomes", func() bool { return rig.watcher.Count() >= at })
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
		w.kill()
		t.Logf("SIGKILL at %d outcomes, %s in", rig.watcher.Count(), time.Since(start).Round(time.Millisecond))
		w = startBinary(t, bin, cfgPath, logPath)
	}
	rig.waitAll(t, 10*time.Minute)
	t.Logf("%d sagas across %d kills in %s", n, len(kills), time.Since(start).Round(time.Millisecond))
	rig.check(t)
}

// buildWorker builds the real sagabridge binary, without the race
// detector: the soak's worker is a process of its own, and instrumented it
// runs several times slower on small machines. The test process (services,
// watcher, checker) keeps whatever flags the test runs with.
func buildWorker(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), "sagabridge")
	start := time.Now()
	if b, err := exec.Command(goBin, "build", "-o", out, ".").CombinedOutput(); err != nil {
		t.Fatalf("build the worker: %v\n%s", err, b)
	}
	t.Logf("built the worker (no -race) in %s", time.Since(start).Round(time.Millisecond))
	return out
}

// startBinary runs `bin run -c cfgPath`, its output appended to logPath.
func startBinary(t *testing.T, bin, cfgPath, logPath string) *worker {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return startCmd(t, exec.Command(bin, "run", "-c", cfgPath, "--log-level", "warn"), logf)
}
