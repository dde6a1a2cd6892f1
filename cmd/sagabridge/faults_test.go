package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/sagas/order"

	"os/signal"
	"syscall"

	"gopkg.in/yaml.v3"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/engine/embedded"
	"github.com/sagabridge/sagabridge/internal/daprtest"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics/kafka"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// Helpers of the fault tests (faults_test.go, soak_test.go): brokers that
// can be stopped and started again on the same port and data, worker
// configs with an admin port the test knows, and the simulated services
// plus an outcome watcher and a dead-letter counter.

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// restartableBroker is a broker the test stops and starts again on the
// same port and data directory: a real restart, not a new broker.
type restartableBroker struct {
	name    string
	yaml    map[string]any
	connect func(t *testing.T, group string) bridge.Broker
	// dedupes: the broker drops a re-published message id (JetStream's
	// duplicate window), so consumers see no repeated outcome.
	dedupes bool

	mu    sync.Mutex
	up    bool
	start func() error
	stop  func()
}

func (b *restartableBroker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.up {
		b.stop()
		b.up = false
	}
}

func (b *restartableBroker) Start(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.up {
		return
	}
	// The port was ours a moment ago; a client reconnecting in a tight
	// loop cannot hold a listening port, so a failure here is real.
	var err error
	for range 50 {
		if err = b.start(); err == nil {
			b.up = true
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("restart %s: %v", b.name, err)
}

// natsRestartable is a nats-server with JetStream whose store is on disk.
func natsRestartable(t *testing.T, dir string) *restartableBroker {
	t.Helper()
	port := freePort(t)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	var srv *natsjs.Server
	b := &restartableBroker{
		name:    "nats",
		yaml:    map[string]any{"kind": "nats", "concurrency": 16, "nats": map[string]any{"url": url}},
		dedupes: true,
		connect: func(t *testing.T, group string) bridge.Broker { return mustPubSub(t, url, group) },
		start: func() (err error) {
			srv, err = natsjs.StartServer(natsjs.ServerConfig{Port: port, StoreDir: filepath.Join(dir, "nats")})
			return err
		},
		stop: func() { srv.Shutdown() },
	}
	b.Start(t)
	t.Cleanup(b.Stop)
	return b
}

// kafkaRestartable is kfake persisting topics, records and committed
// offsets in a directory.
func kafkaRestartable(t *testing.T, dir string) *restartableBroker {
	t.Helper()
	port := freePort(t)
	brokers := []string{"127.0.0.1:" + strconv.Itoa(port)}
	var k *kafka.Embedded
	b := &restartableBroker{
		name:    "kafka",
		yaml:    map[string]any{"kind": "kafka", "kafka": map[string]any{"brokers": brokers, "autoCreateTopics": true}},
		connect: func(t *testing.T, group string) bridge.Broker { return mustKafkaClient(t, brokers, group) },
		start: func() (err error) {
			k, err = kafka.StartEmbeddedWith(kafka.EmbeddedConfig{Port: port, DataDir: filepath.Join(dir, "kafka")})
			return err
		},
		stop: func() { k.Close() },
	}
	b.Start(t)
	t.Cleanup(b.Stop)
	return b
}

// embeddedEngine is the engine section of a worker on its own database.
func embeddedEngine(dir string) map[string]any {
	return map[string]any{"kind": "embedded", "embedded": map[string]any{"dbPath": filepath.Join(dir, "workflows.db")}}
}

// grpcEngine is the engine section of a worker on a sidecar (daprd, or a
// task hub of its own process) at addr, its retention record in dir.
func grpcEngine(addr, dir string) map[string]any {
	return map[string]any{"kind": "dapr", "dapr": map[string]any{"grpcEndpoint": addr, "retentionDir": filepath.Join(dir, "retention")}}
}

// writeConfig writes the dev routes with the given broker and engine
// sections; the admin server listens on adminAddr. broker may carry extra
// keys (ackWait) the test wants.
func writeConfig(t *testing.T, dir string, broker, eng map[string]any, adminAddr string) string {
	t.Helper()
	return writeConfigSections(t, dir, map[string]any{"broker": broker, "engine": eng, "admin": map[string]any{"listen": adminAddr}})
}

// writeConfigSections writes the dev routes with the given top-level
// sections (broker, engine, admin, ...) in place of the dev ones.
func writeConfigSections(t testing.TB, dir string, sections map[string]any) string {
	t.Helper()
	var cfg map[string]any
	if err := yaml.Unmarshal(order.BridgeYAML(), &cfg); err != nil {
		t.Fatal(err)
	}
	for k, v := range sections {
		cfg[k] = v
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ready asks the worker's /readyz; a worker that does not answer is not
// ready.
func ready(adminAddr string) bool {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + adminAddr + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// faultRig is what surrounds a worker under test: the simulated services,
// an outcome watcher, a dead-letter counter and a producer.
type faultRig struct {
	parts   *simulated.Participants
	watcher *simulated.Watcher
	client  bridge.Broker
	dead    atomic.Int64
	orders  []simulated.Order
	dedupes bool
}

func startRig(t *testing.T, br *restartableBroker, sim simulated.Config) *faultRig {
	t.Helper()
	r := &faultRig{client: br.connect(t, "test-client"), dedupes: br.dedupes}
	r.parts, r.watcher = runLegacyServices(t, br.connect, sim)
	watchDeadLetters(t, br.connect(t, "test-dlq"), func(dead string) {
		r.dead.Add(1)
		t.Logf("dead-lettered: %s", dead)
	})
	return r
}

// watchDeadLetters hands fn each message of the dead-letter topic as
// "kind: reason: payload", until the test ends.
func watchDeadLetters(t testing.TB, sub bridge.Broker, fn func(dead string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		ch, err := sub.Subscriber().Subscribe(ctx, "sagabridge.dlq")
		if err != nil {
			t.Errorf("watch dlq: %v", err)
			return
		}
		for msg := range ch {
			fn(fmt.Sprintf("%s: %s: %s", msg.Metadata.Get(dlq.MetaKind), msg.Metadata.Get(dlq.MetaReason), msg.Payload))
			msg.Ack()
		}
	}()
}

// randomOrders makes n orders named prefix-i; each fails payment or
// shipping with the given shares, drawn from rng.
func randomOrders(rng *rand.Rand, prefix string, n int, failPayment, failShipping float64) []simulated.Order {
	out := make([]simulated.Order, n)
	for i := range out {
		o := simulated.Order{OrderID: fmt.Sprintf("%s-%05d", prefix, i+1), SKU: "sku-1", Quantity: 1, Amount: float64(1 + i%97)}
		switch p := rng.Float64(); {
		case p < failPayment:
			o.FailPayment = true
		case p < failPayment+failShipping:
			o.FailShipping = true
		}
		out[i] = o
	}
	return out
}

// seededRand logs its seed; SAGABRIDGE_TEST_SEED replays a run.
func seededRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SAGABRIDGE_TEST_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SAGABRIDGE_TEST_SEED: %v", err)
		}
	}
	t.Logf("random seed %d (SAGABRIDGE_TEST_SEED=%d replays it)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed>>1|1))
}

func (r *faultRig) publish(t *testing.T, orders []simulated.Order) {
	t.Helper()
	for _, o := range orders {
		if err := simulated.PublishOrder(r.client.Publisher(), order.OrdersPlaced, "evt-"+o.OrderID, o); err != nil {
			t.Fatal(err)
		}
	}
	r.orders = append(r.orders, orders...)
}

// waitAll waits for an outcome of every order published, then a moment
// more for any duplicate to show.
func (r *faultRig) waitAll(t *testing.T, d time.Duration) {
	t.Helper()
	testkit.WaitUntil(t, d, fmt.Sprintf("%d outcomes", len(r.orders)), func() bool { return r.watcher.Count() >= len(r.orders) })
	time.Sleep(time.Second)
}

// check runs the outcome checker and the rig's own counters.
func (r *faultRig) check(t *testing.T) {
	t.Helper()
	rep := simulated.Check(r.orders, r.watcher.Outcomes(), r.parts.Ledger().Snapshot())
	if err := rep.Err(); err != nil {
		t.Errorf("outcomes and ledgers disagree with the orders:\n%v", err)
	}
	t.Logf("%d orders: %d completed, %d compensated; repeated outcome deliveries dropped by the watcher: %d",
		rep.Orders, rep.Completed, rep.Compensated, r.watcher.Duplicates())
	if r.dedupes && r.watcher.Duplicates() != 0 {
		t.Errorf("%d outcome deliveries repeated an id on a broker that dedupes", r.watcher.Duplicates())
	}
	if n := r.dead.Load(); n != 0 {
		t.Errorf("%d events dead-lettered", n)
	}
}

// dumpOnFailure prints the worker's log when the test failed.
func dumpOnFailure(t testing.TB, logPath string) {
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("worker log:\n%s", b)
		}
	})
}

// TestBrokerRestartMidLoad stops the broker with sagas in flight and starts
// it again on the same port and data (JetStream's file store; kfake's data
// directory), on each broker: the worker, a separate process, reconnects by
// itself, /readyz says not ready while the broker is gone, and every order
// published before and after ends in exactly one outcome with the
// participants' books balanced.
func TestBrokerRestartMidLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	for _, newBroker := range []func(*testing.T, string) *restartableBroker{natsRestartable, kafkaRestartable} {
		dir := t.TempDir()
		br := newBroker(t, dir)
		t.Run(br.name, func(t *testing.T) { brokerRestart(t, dir, br) })
	}
}

func brokerRestart(t *testing.T, dir string, br *restartableBroker) {
	const n = 200
	rng := seededRand(t)
	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfgPath := writeConfig(t, dir, br.yaml, embeddedEngine(dir), admin)
	logPath := filepath.Join(dir, "worker.log")
	dumpOnFailure(t, logPath)
	rig := startRig(t, br, simulated.Config{ReplyDelay: 10 * time.Millisecond})
	w := startWorker(t, cfgPath, logPath)
	testkit.WaitUntil(t, 90*time.Second, "the worker ready", func() bool { return ready(admin) })

	rig.publish(t, randomOrders(rng, "before", n/2, 0.2, 0.1))
	testkit.WaitUntil(t, 2*time.Minute, "the first outcomes", func() bool { return rig.watcher.Count() >= 10 })
	br.Stop()
	stoppedAt := time.Now()
	before := rig.watcher.Count()
	testkit.WaitUntil(t, 30*time.Second, "/readyz to report the broker gone", func() bool { return !ready(admin) })
	time.Sleep(3 * time.Second)
	br.Start(t)
	t.Logf("%s down for %s with %d of %d outcomes in", br.name, time.Since(stoppedAt).Round(time.Millisecond), before, n/2)
	if before >= n/2 {
		t.Fatalf("every saga finished before the broker stopped; the test proves nothing")
	}

	testkit.WaitUntil(t, 2*time.Minute, "/readyz after the broker returned", func() bool { return ready(admin) })
	rig.publish(t, randomOrders(rng, "after", n/2, 0.2, 0.1))
	rig.waitAll(t, 3*time.Minute)
	if w.cmd.ProcessState != nil {
		t.Fatalf("the worker exited: %v", w.cmd.ProcessState)
	}
	rig.check(t)
}

// TestEngineUnavailable takes the workflow engine away for 30 seconds with
// sagas in flight and orders arriving, on each engine: the task hub (a
// process of its own here, so it can die while the worker lives; in
// production it is inside the worker and dies with it) and daprd. Events
// wait unacked (no outcome, nothing dead-lettered) and /readyz says not
// ready the whole time; when the engine returns everything flows, exactly
// one outcome per order. (On daprd 1.14 the dapr case could deadlock a
// workflow actor and its activity actor; it passes on 1.16.)
func TestEngineUnavailable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes and keeps an engine down for 30s")
	}
	t.Run("embedded-hub", func(t *testing.T) {
		dir := t.TempDir()
		hub := startHub(t, dir)
		engineDown(t, dir, grpcEngine(hub.addr, dir), hub.kill, func() { hub.start(t) }, engineOutage)
	})
	t.Run("dapr", func(t *testing.T) {
		dir := t.TempDir()
		sidecar := startSidecar(t)
		engineDown(t, dir, grpcEngine(sidecar.GRPCAddr(), dir), sidecar.Kill, sidecar.Restart, engineOutage)
	})
	// daprd frozen (SIGSTOP), not dead: its connections stay open and
	// every call hangs instead of being refused. Calls end at the
	// handler's deadline as an outage; after SIGCONT daprd goes on with
	// the same state and the worker's open stream.
	t.Run("dapr-paused", func(t *testing.T) {
		// What daprd 1.16.0 does after SIGCONT varies from run to run
		// (continueSidecar); in one CI run it neither stopped its actor
		// runtime nor finished the sagas in 4 minutes. Run by make
		// test-dapr-pause until that is pinned down.
		if os.Getenv("SAGABRIDGE_TEST_DAPR_PAUSE") == "" {
			t.Skip("daprd 1.16.0 after SIGSTOP/SIGCONT is erratic; run: make test-dapr-pause")
		}
		dir := t.TempDir()
		sidecar := startSidecar(t)
		engineDown(t, dir, grpcEngine(sidecar.GRPCAddr(), dir), sidecar.Pause, func() { continueSidecar(t, sidecar) }, pauseOutage)
	})
}

// continueSidecar lets a paused daprd run again. daprd 1.16.0 paused past
// placement's heartbeat timeout does not recover: on SIGCONT it finds its
// placement stream gone, fails to deactivate its actors ("actor is
// closed, cannot handle lock"), stops its actor runtime and workflow
// engine and closes its API port, while the process lives on (seen in
// every run here). The worker holds the events meanwhile, as in any
// outage; the remedy is the one for daprd's wedge, kill daprd (in
// Kubernetes, the pod), and the test applies it once daprd says its actor
// runtime stopped.
func continueSidecar(t *testing.T, s *daprtest.Sidecar) {
	t.Helper()
	mark := len(s.Log())
	s.Continue()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(s.Log()[mark:], "Actor runtime stopped") {
			t.Logf("daprd stopped its actor runtime after SIGCONT (its /v1.0/healthz: %s); killing and restarting it", sidecarHealth(s))
			s.Restart()
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Log("daprd went on after SIGCONT")
}

// sidecarHealth is what daprd's health endpoint (the one Kubernetes
// probes) answers.
func sidecarHealth(s *daprtest.Sidecar) string {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + s.HTTPAddr() + "/v1.0/healthz")
	if err != nil {
		return err.Error()
	}
	_ = resp.Body.Close()
	return resp.Status
}

// engineOutage is how long the engine stays away; pauseOutage how long
// daprd stays frozen (longer than the handler's deadline and the broker's
// ack wait, so events are redelivered while it is).
const (
	engineOutage = 30 * time.Second
	pauseOutage  = 15 * time.Second
)

func engineDown(t *testing.T, dir string, eng map[string]any, kill, restart func(), outage time.Duration) {
	const n = 100
	rng := seededRand(t)
	br := natsRestartable(t, dir)
	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfgPath := writeConfig(t, dir, br.yaml, eng, admin)
	logPath := filepath.Join(dir, "worker.log")
	dumpOnFailure(t, logPath)
	rig := startRig(t, br, simulated.Config{ReplyDelay: 10 * time.Millisecond})
	w := startWorker(t, cfgPath, logPath)
	testkit.WaitUntil(t, 90*time.Second, "the worker ready", func() bool { return ready(admin) })

	rig.publish(t, randomOrders(rng, "before", n/2, 0.2, 0.1))
	testkit.WaitUntil(t, 2*time.Minute, "the first outcomes", func() bool { return rig.watcher.Count() >= 5 })
	kill()
	downAt := time.Now()
	testkit.WaitUntil(t, 20*time.Second, "/readyz to report the engine gone", func() bool { return !ready(admin) })
	// An outcome whose publish was under way when the engine died may
	// still arrive; after that, nothing can finish without the engine.
	time.Sleep(2 * time.Second)
	frozen := rig.watcher.Count()
	rig.publish(t, randomOrders(rng, "during", n/2, 0.2, 0.1))
	for time.Since(downAt) < outage {
		if ready(admin) {
			t.Fatalf("/readyz reports ready %s after the engine died", time.Since(downAt).Round(time.Millisecond))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if got := rig.watcher.Count(); got != frozen {
		t.Errorf("%d outcomes arrived while the engine was down", got-frozen)
	}
	if n := rig.dead.Load(); n != 0 {
		t.Fatalf("%d events dead-lettered while the engine was down", n)
	}
	t.Logf("engine down %s with %d of %d outcomes in", time.Since(downAt).Round(time.Millisecond), frozen, n)
	restart()
	testkit.WaitUntil(t, 2*time.Minute, "/readyz after the engine returned", func() bool { return ready(admin) })
	rig.waitAll(t, 4*time.Minute)
	if w.cmd.ProcessState != nil {
		t.Fatalf("the worker exited: %v", w.cmd.ProcessState)
	}
	rig.check(t)
}

// hubEnv makes the test binary run an embedded task hub (JSON hubConfig)
// instead of the tests, so a test can kill the engine and not the worker.
const hubEnv = "SAGABRIDGE_TEST_HUB"

type hubConfig struct {
	DBPath string `json:"dbPath"`
	Listen string `json:"listen"`
}

// hubProcess is a task hub in a process of its own, on a fixed port and
// database so that a restart is the same engine.
type hubProcess struct {
	addr    string
	cfg     string
	logPath string
	mu      sync.Mutex
	w       *worker
}

func startHub(t *testing.T, dir string) *hubProcess {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	b, err := json.Marshal(hubConfig{DBPath: filepath.Join(dir, "hub.db"), Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	h := &hubProcess{addr: addr, cfg: string(b), logPath: filepath.Join(dir, "hub.log")}
	h.start(t)
	return h
}

func (h *hubProcess) start(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	h.w = startProcess(t, h.logPath, hubEnv+"="+h.cfg)
	h.mu.Unlock()
	testkit.WaitUntil(t, 30*time.Second, "the task hub listening", func() bool {
		c, err := net.DialTimeout("tcp", h.addr, time.Second)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
}

func (h *hubProcess) kill() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.w.kill()
}

// runHub is the body of a task-hub process: serve until SIGTERM or SIGINT.
func runHub(cfgJSON string) int {
	var cfg hubConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "hub:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hub, err := embedded.Start(ctx, embedded.Config{DBPath: cfg.DBPath, Listen: cfg.Listen}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hub:", err)
		return 1
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hub.Stop(stopCtx); err != nil {
		fmt.Fprintln(os.Stderr, "hub:", err)
		return 1
	}
	return 0
}

// startSidecar is daprd with its own placement, scheduler and app ID.
func startSidecar(t *testing.T) *daprtest.Sidecar {
	t.Helper()
	return daprtest.Start(t, daprtest.Options{LogLevel: os.Getenv("SAGABRIDGE_TEST_DAPRD_LOG_LEVEL")})
}
