package admin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/zap/zaptest"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/admin"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/cmd/sagabridge/brokers"
	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/sagas/registry"
	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

var _ bridge.Metrics = (*admin.Metrics)(nil)

// stack is a bridge with Prometheus metrics and an admin server on a real
// nats-server and the real embedded engine.
type stack struct {
	srv     *natsjs.Server
	bridge  *bridge.Bridge
	metrics *admin.Metrics
	admin   *admin.Server
	client  *natsjs.PubSub
	watcher *simulated.Watcher
}

func startStack(t *testing.T, storeDir string, participants bool) *stack {
	t.Helper()
	srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: storeDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown() })
	cfg, err := config.Parse("dev.yaml", order.BridgeYAML())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Broker.Kind = "nats"
	cfg.Broker.NATS.URL = srv.ClientURL()
	cfg.Engine.Embedded.DBPath = filepath.Join(t.TempDir(), "workflows.db")

	ctx, cancel := context.WithCancel(context.Background())
	m := admin.NewMetrics(admin.MetricsOptions{Version: "test"})
	b, err := bridge.New(ctx, cfg, bridge.Options{Connect: brokers.Connect, Logger: zaptest.NewLogger(t).Named("bridge"), Metrics: m, Sagas: orderSagas(t)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var checks []admin.Check
	for _, c := range b.ReadyChecks() {
		checks = append(checks, admin.Check{Name: c.Name, Run: c.Run})
	}
	adm, err := admin.New(admin.Config{
		Listen: "127.0.0.1:0", Gatherer: m.Registry(), Checks: checks, Workflows: b.Engine(),
		CheckTimeout: 500 * time.Millisecond,
		Info:         admin.Info{BrokerKind: "nats", BrokerURL: b.BrokerURL(), EngineKind: "embedded", DLQTopic: cfg.DLQ.Topic},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := adm.Start(); err != nil {
		t.Fatal(err)
	}
	s := &stack{srv: srv, bridge: b, metrics: m, admin: adm, watcher: simulated.NewWatcher(nil)}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, context.Canceled) {
				errs <- err
			}
		}()
	}
	pubsub := func(group string) *natsjs.PubSub {
		ps, err := natsjs.New(natsjs.Config{URL: srv.ClientURL(), ConsumerGroup: group, Concurrency: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ps.Close() })
		return ps
	}
	s.client = pubsub("test-client")
	run(func() error { return b.Run(ctx) })
	watch := pubsub("test-watcher")
	run(func() error { return s.watcher.Run(ctx, watch.Subscriber(), cfg.Outcomes.Topic) })
	if participants {
		legacy := pubsub("legacy-services")
		parts, err := simulated.New(simulated.Config{}, legacy.Publisher(), legacy.Subscriber(), nil)
		if err != nil {
			t.Fatal(err)
		}
		run(func() error { return parts.Run(ctx) })
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = adm.Shutdown(context.Background())
		if err := b.Close(context.Background()); err != nil {
			t.Logf("bridge close: %v", err)
		}
		select {
		case err := <-errs:
			t.Errorf("component failed: %v", err)
		default:
		}
	})
	return s
}

// scrape fetches /metrics over HTTP and parses the text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	var parser expfmt.TextParser
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value returns the sample of a family whose labels include want; a
// histogram yields its sample count. Missing means 0.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	var sum float64
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(want); i += 2 {
			if have[want[i]] != want[i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// TestMetricsAfterKnownRun runs ten orders (two declined by payment), one
// order event sent twice under a new message id, and one undecodable
// message through a bridge with Prometheus metrics, then scrapes /metrics.
func TestMetricsAfterKnownRun(t *testing.T) {
	s := startStack(t, t.TempDir(), true)
	const n = 10
	for i := 1; i <= n; i++ {
		o := simulated.Order{OrderID: fmt.Sprintf("m-%02d", i), Amount: float64(i), FailPayment: i%5 == 0}
		if err := simulated.PublishOrder(s.client.Publisher(), order.OrdersPlaced, "evt-"+o.OrderID, o); err != nil {
			t.Fatal(err)
		}
	}
	// The same event again under another message id: a duplicate start.
	dup, err := simulated.OrderMessage("evt-m-01", simulated.Order{OrderID: "m-01", Amount: 1})
	if err != nil {
		t.Fatal(err)
	}
	dup.UUID = "again-" + dup.UUID
	bad := message.NewMessage("bad-1", []byte("{not json"))
	if err := s.client.Publisher().Publish(order.OrdersPlaced, dup, bad); err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, time.Minute, "10 outcomes", func() bool { return s.watcher.Count() >= n })

	// Counters settle after the last handler returns.
	var fams map[string]*dto.MetricFamily
	testkit.WaitUntil(t, 10*time.Second, "metrics to settle", func() bool {
		fams = scrape(t, s.admin.URL())
		return value(fams, "sagabridge_saga_outcomes_total") == n &&
			value(fams, "sagabridge_events_dead_lettered_total", "kind", dlq.KindDecode) == 1 &&
			value(fams, "sagabridge_handlers_in_flight") == 0 &&
			value(fams, "sagabridge_handler_duration_seconds") == value(fams, "sagabridge_events_consumed_total")
	})
	check := func(want float64, name string, labels ...string) {
		t.Helper()
		if got := value(fams, name, labels...); got != want {
			t.Errorf("%s%v = %v, want %v", name, labels, got, want)
		}
	}
	check(n+2, "sagabridge_events_consumed_total", "topic", order.OrdersPlaced)
	check(n+1, "sagabridge_events_routed_total", "route", "order-placed", "action", "start")
	check(1, "sagabridge_duplicate_starts_total", "route", "order-placed")
	check(1, "sagabridge_events_dead_lettered_total", "kind", dlq.KindDecode)
	check(1, "sagabridge_events_dead_lettered_total")
	check(0, "sagabridge_events_dead_lettered_total", "kind", dlq.KindFinished)
	check(n-2, "sagabridge_saga_outcomes_total", "saga", "OrderSaga", "status", topics.StatusCompleted)
	check(2, "sagabridge_saga_outcomes_total", "saga", "OrderSaga", "status", topics.StatusCompensated)
	check(n, "sagabridge_saga_duration_seconds", "saga", "OrderSaga")
	check(0, "sagabridge_handlers_in_flight")
	// Every reply is routed once: ten reservations, ten payment answers,
	// eight shipments, two releases of the declined orders' stock.
	check(n, "sagabridge_events_routed_total", "route", "inventory-reserved", "action", "raise")
	check(n, "sagabridge_events_routed_total", "route", "payment-charged-or-declined", "action", "raise")
	check(n-2, "sagabridge_events_routed_total", "route", "shipping-created-or-refused", "action", "raise")
	check(2, "sagabridge_events_routed_total", "route", "inventory-released", "action", "raise")
	check(1, "sagabridge_build_info", "version", "test")
	if value(fams, "sagabridge_handler_duration_seconds", "topic", order.OrdersPlaced, "result", "ack") != n+2 {
		t.Errorf("handler histogram for %s: %v acks", order.OrdersPlaced,
			value(fams, "sagabridge_handler_duration_seconds", "topic", order.OrdersPlaced, "result", "ack"))
	}
	if fams["go_goroutines"] == nil || fams["process_cpu_seconds_total"] == nil {
		t.Error("runtime collectors missing")
	}

	// The workflow API answers through the bridge's engine.
	cl, err := admin.NewClient(s.admin.Addr(), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var st engine.Status
	// The outcome is published just before the orchestration completes.
	testkit.WaitUntil(t, 10*time.Second, "order-m-05 to complete", func() bool {
		st, err = cl.Get(ctx, "order-m-05")
		return err == nil && st.RuntimeStatus == "COMPLETED"
	})
	if st.RuntimeStatus != "COMPLETED" || st.Workflow != "OrderSaga" || !strings.Contains(st.Output, topics.StatusCompensated) {
		t.Errorf("order-m-05: %+v", st)
	}
	if _, err := cl.Get(ctx, "order-nobody"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("get of a missing instance: %v, want ErrNotFound", err)
	}
	testkit.WaitUntil(t, 10*time.Second, "order-m-01 to complete", func() bool {
		st, err := cl.Get(ctx, "order-m-01")
		return err == nil && st.RuntimeStatus == "COMPLETED"
	})
	if err := cl.Raise(ctx, "order-m-01", "late.reply", []byte(`{"x":1}`)); !errors.Is(err, engine.ErrFinished) {
		t.Errorf("raise on a finished instance: %v, want ErrFinished", err)
	}
	if err := cl.Purge(ctx, "order-m-01"); err != nil {
		t.Fatalf("purge: %v", err)
	}
	if _, err := cl.Get(ctx, "order-m-01"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("get after purge: %v, want ErrNotFound", err)
	}
	info, err := cl.Info(ctx)
	if err != nil || info.BrokerURL != s.srv.ClientURL() {
		t.Errorf("info: %+v %v", info, err)
	}
}

// TestReadyzFollowsBroker stops the nats-server under a running bridge:
// /readyz turns 503 naming the broker, and 200 again once the server is
// back on the same port and store.
func TestReadyzFollowsBroker(t *testing.T) {
	dir := t.TempDir()
	s := startStack(t, dir, false)
	cl, err := admin.NewClient(s.admin.URL(), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ready := func() admin.Readiness {
		r, err := cl.Ready(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	testkit.WaitUntil(t, 10*time.Second, "ready", func() bool { return ready().Ready })
	// Readiness does not see the subscriptions; wait until the bridge has
	// its consumers before pulling the broker away.
	js, err := s.client.Conn().JetStream()
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 10*time.Second, "the bridge's consumers", func() bool {
		for _, topic := range []string{"orders.placed", "inventory.replies", "payment.replies", "shipping.replies"} {
			if _, err := js.ConsumerInfo(natsjs.StreamName(topic), "sagabridge_"+natsjs.StreamName(topic)); err != nil {
				return false
			}
		}
		return true
	})
	if r := ready(); r.Checks["broker"] != "ok" || r.Checks["engine"] != "ok" || r.Checks["routes"] != "ok" {
		t.Fatalf("checks: %v", r.Checks)
	}
	port := strings.TrimPrefix(s.srv.ClientURL(), "nats://127.0.0.1:")
	s.srv.Shutdown()
	var r admin.Readiness
	testkit.WaitUntil(t, 10*time.Second, "not ready", func() bool { r = ready(); return !r.Ready })
	if r.Checks["broker"] == "ok" || r.Checks["engine"] != "ok" {
		t.Errorf("checks with the broker down: %v", r.Checks)
	}
	resp, err := http.Get(s.admin.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz: %s, want 503", resp.Status)
	}

	var p int
	if _, err := fmt.Sscan(port, &p); err != nil {
		t.Fatal(err)
	}
	srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: dir, Port: p})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	testkit.WaitUntil(t, 20*time.Second, "ready again", func() bool { return ready().Ready })

	s.admin.SetDraining()
	if r := ready(); r.Ready || r.Checks["shutdown"] == "" {
		t.Errorf("draining: %+v", r)
	}
}

// fakeWorkflows answers from a map; it checks the API's error mapping.
type fakeWorkflows struct {
	mu     sync.Mutex
	status map[string]engine.Status
	calls  []string
}

func (f *fakeWorkflows) record(op, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op+" "+id)
	st, ok := f.status[id]
	switch {
	case !ok:
		return fmt.Errorf("engine: %s %s: %w", op, id, engine.ErrNotFound)
	case st.Finished() && op != "purge":
		return fmt.Errorf("engine: %s %s: %w", op, id, engine.ErrFinished)
	case id == "down":
		return fmt.Errorf("engine: %s: %w", op, engine.ErrUnavailable)
	}
	return nil
}

func (f *fakeWorkflows) Get(_ context.Context, id string) (engine.Status, error) {
	if err := f.record("get", id); err != nil && !errors.Is(err, engine.ErrFinished) {
		return engine.Status{}, err
	}
	return f.status[id], nil
}
func (f *fakeWorkflows) Raise(_ context.Context, id, ev string, p []byte, _ engine.RaiseOptions) error {
	return f.record("raise:"+ev+":"+string(p), id)
}
func (f *fakeWorkflows) Terminate(_ context.Context, id, r string) error {
	return f.record("terminate:"+r, id)
}
func (f *fakeWorkflows) Suspend(_ context.Context, id, r string) error {
	return f.record("suspend:"+r, id)
}
func (f *fakeWorkflows) Resume(_ context.Context, id, r string) error {
	return f.record("resume:"+r, id)
}
func (f *fakeWorkflows) Purge(_ context.Context, id string) error { return f.record("purge", id) }

func TestWorkflowAPIAndToken(t *testing.T) {
	wf := &fakeWorkflows{status: map[string]engine.Status{
		"run-1": {InstanceID: "run-1", Workflow: "W", RuntimeStatus: "RUNNING",
			CustomStatus: `{"step":"charge-payment","waitingFor":["event charge-payment.reply"]}`},
		"done-1": {InstanceID: "done-1", Workflow: "W", RuntimeStatus: "COMPLETED"},
		"down":   {InstanceID: "down", RuntimeStatus: "RUNNING"},
	}}
	if _, err := admin.New(admin.Config{Listen: "0.0.0.0:0"}); err == nil {
		t.Fatal("a non-loopback listener without a token was accepted")
	}
	if _, err := admin.New(admin.Config{Listen: ":9464"}); err == nil {
		t.Fatal("an every-interface listener without a token was accepted")
	}
	srv, err := admin.New(admin.Config{
		Listen: "0.0.0.0:0", Token: "s3cret", Workflows: wf,
		Gatherer: admin.NewMetrics(admin.MetricsOptions{NoRuntime: true}).Registry(),
		Checks:   []admin.Check{{Name: "broker", Run: func(context.Context) error { return errors.New("nats://user:pw@host down") }}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz without token: %d", code)
	}
	if code, _ := get("/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without token: %d", code)
	}
	if code, _ := get("/metrics", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("/metrics with a wrong token: %d", code)
	}
	if code, body := get("/metrics", "s3cret"); code != http.StatusOK || !strings.Contains(body, "sagabridge_events_dead_lettered_total") {
		t.Errorf("/metrics with the token: %d", code)
	}
	if code, body := get("/readyz", ""); code != http.StatusServiceUnavailable || strings.Contains(body, "pw@") || !strings.Contains(body, "failing") {
		t.Errorf("/readyz without token: %d %s", code, body)
	}
	if code, body := get("/readyz", "s3cret"); code != http.StatusServiceUnavailable || !strings.Contains(body, "down") {
		t.Errorf("/readyz with token: %d %s", code, body)
	}

	ctx := context.Background()
	anon, _ := admin.NewClient(ts.URL, "")
	if _, err := anon.Get(ctx, "run-1"); !errors.Is(err, admin.ErrUnauthorized) {
		t.Errorf("get without token: %v", err)
	}
	cl, _ := admin.NewClient(ts.URL, "s3cret")
	if st, err := cl.Get(ctx, "run-1"); err != nil || st.RuntimeStatus != "RUNNING" {
		t.Errorf("get: %+v %v", st, err)
	}
	if d, err := cl.Detail(ctx, "run-1"); err != nil || !strings.Contains(string(d.Progress), "charge-payment") {
		t.Errorf("detail: %s %v", d.Progress, err)
	}
	if d, err := cl.Detail(ctx, "done-1"); err != nil || d.Progress != nil {
		t.Errorf("detail without progress: %s %v", d.Progress, err)
	}
	if _, err := cl.Get(ctx, "nope"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("get missing: %v", err)
	}
	if err := cl.Raise(ctx, "run-1", "ev", []byte(`{"a":1}`)); err != nil {
		t.Errorf("raise: %v", err)
	}
	if err := cl.Raise(ctx, "done-1", "ev", nil); !errors.Is(err, engine.ErrFinished) {
		t.Errorf("raise on finished: %v", err)
	}
	if err := cl.Raise(ctx, "run-1", "", nil); !errors.Is(err, admin.ErrBadRequest) {
		t.Errorf("raise without event name: %v", err)
	}
	if err := cl.Suspend(ctx, "down", "x"); !errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("suspend on a down engine: %v", err)
	}
	for _, f := range []func() error{
		func() error { return cl.Terminate(ctx, "run-1", "why") },
		func() error { return cl.Suspend(ctx, "run-1", "why") },
		func() error { return cl.Resume(ctx, "run-1", "why") },
		func() error { return cl.Purge(ctx, "done-1") },
	} {
		if err := f(); err != nil {
			t.Error(err)
		}
	}
	// Instance IDs with slashes and spaces travel intact.
	if _, err := cl.Get(ctx, "order/a b"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("get of an odd ID: %v", err)
	}
	wf.mu.Lock()
	defer wf.mu.Unlock()
	want := []string{"get order/a b", `raise:ev:{"a":1} run-1`, "terminate:why run-1", "suspend:why run-1", "resume:why run-1", "purge done-1"}
	for _, w := range want {
		found := false
		for _, c := range wf.calls {
			found = found || c == w
		}
		if !found {
			t.Errorf("call %q not made; calls: %q", w, wf.calls)
		}
	}
}

func TestUnreachable(t *testing.T) {
	cl, _ := admin.NewClient("127.0.0.1:1", "")
	if _, err := cl.Get(context.Background(), "x"); !errors.Is(err, admin.ErrUnreachable) {
		t.Errorf("err = %v, want ErrUnreachable", err)
	}
}

func TestRedactURL(t *testing.T) {
	got := admin.RedactURL("nats://u:p@a:4222,nats://b:4222")
	if got != "nats://a:4222,nats://b:4222" {
		t.Errorf("RedactURL = %q", got)
	}
}

// TestAdminRefusesBrowserRequests: the token-less loopback API is not a web
// page's to use. On a real worker (NATS, embedded engine) with a running
// saga: a cross-site text/plain POST (what any page can send without a
// CORS preflight) does not terminate it, and requests under a foreign Host
// (a page whose name was rebound to 127.0.0.1) read neither the workflow
// with its input nor /metrics nor /readyz. The CLI's client, a same-origin
// write, and a name listed in admin.hosts still work.
func TestAdminRefusesBrowserRequests(t *testing.T) {
	s := startStack(t, t.TempDir(), false)
	o := simulated.Order{OrderID: "csrf-1", Amount: 7, Quantity: 1, SKU: "sku-secret"}
	if err := simulated.PublishOrder(s.client.Publisher(), order.OrdersPlaced, "evt-csrf-1", o); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := "order-" + o.OrderID
	cli, err := admin.NewClient(s.admin.URL(), "")
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 30*time.Second, "the saga to run", func() bool {
		st, err := cli.Get(ctx, id)
		return err == nil && st.RuntimeStatus == "RUNNING"
	})

	do := func(method, path, host string, hdr map[string]string, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, s.admin.URL()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	crossSite := map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
	if code, body := do(http.MethodPost, "/v1/workflows/"+id+"/terminate", "", crossSite, `{"reason":"csrf"}`); code != http.StatusForbidden {
		t.Errorf("cross-site POST: %d %s, want 403", code, body)
	}
	if code, body := do(http.MethodPost, "/v1/workflows/"+id+"/terminate", "", map[string]string{"Origin": "http://evil.example"}, `{"reason":"csrf"}`); code != http.StatusForbidden {
		t.Errorf("cross-origin POST without Sec-Fetch-Site: %d %s, want 403", code, body)
	}
	if code, body := do(http.MethodDelete, "/v1/workflows/"+id, "", map[string]string{"Sec-Fetch-Site": "same-site"}, ""); code != http.StatusForbidden {
		t.Errorf("same-site DELETE: %d %s, want 403", code, body)
	}
	rebound := "evil.example:" + s.admin.Addr()[strings.LastIndex(s.admin.Addr(), ":")+1:]
	for _, path := range []string{"/v1/workflows/" + id, "/metrics", "/readyz", "/v1/info"} {
		if code, body := do(http.MethodGet, path, rebound, nil, ""); code != http.StatusMisdirectedRequest || strings.Contains(body, "sku-secret") {
			t.Errorf("GET %s with Host %s: %d %.200s, want 421 and nothing of the workflow", path, rebound, code, body)
		}
	}
	if st, err := cli.Get(ctx, id); err != nil || st.RuntimeStatus != "RUNNING" {
		t.Fatalf("after the refused requests: %+v, %v; want the saga still running", st, err)
	}

	// What is not a browser's doing still works.
	if code, body := do(http.MethodPost, "/v1/workflows/"+id+"/suspend", "", map[string]string{"Origin": s.admin.URL(), "Sec-Fetch-Site": "same-origin"}, `{"reason":"same origin"}`); code != http.StatusNoContent {
		t.Errorf("same-origin POST: %d %s, want 204", code, body)
	}
	if err := cli.Resume(ctx, id, "cli"); err != nil {
		t.Errorf("CLI resume: %v", err)
	}
	if code, _ := do(http.MethodGet, "/v1/workflows/"+id, "localhost:9464", nil, ""); code != http.StatusOK {
		t.Errorf("GET with Host localhost: %d", code)
	}
	named, err := admin.New(admin.Config{Listen: "127.0.0.1:0", Hosts: []string{"sagabridge.internal"}, Workflows: s.bridge.Engine()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(named.Handler())
	defer ts.Close()
	for host, want := range map[string]int{"sagabridge.internal:80": http.StatusOK, "[::1]:1": http.StatusOK, "evil.example": http.StatusMisdirectedRequest} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v1/workflows/"+id, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("admin.hosts [sagabridge.internal], Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// TestMetricsListener: the metrics listener serves probes and /metrics
// without the admin token (off loopback, as in a pod), keeps the admin
// API off it, hides readiness details, and wants its own token for
// /metrics once one is set.
func TestMetricsListener(t *testing.T) {
	start := func(metricsToken string) *admin.Server {
		t.Helper()
		srv, err := admin.New(admin.Config{
			Listen: "127.0.0.1:0", Token: "admin-secret",
			MetricsListen: "0.0.0.0:0", MetricsToken: metricsToken,
			Gatherer: admin.NewMetrics(admin.MetricsOptions{Version: "t", NoRuntime: true}).Registry(),
			Checks:   []admin.Check{{Name: "broker", Run: func(context.Context) error { return errors.New("nats://user:pw@host down") }}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
		if srv.MetricsAddr() == "" || srv.MetricsAddr() == srv.Addr() {
			t.Fatalf("metrics addr %q, admin addr %q", srv.MetricsAddr(), srv.Addr())
		}
		return srv
	}
	get := func(url, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	local := func(addr string) string {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		return "http://127.0.0.1:" + port
	}
	srv := start("")
	base := local(srv.MetricsAddr())
	if code, _ := get(base+"/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	if code, body := get(base+"/metrics", ""); code != http.StatusOK || !strings.Contains(body, "sagabridge_build_info") {
		t.Errorf("/metrics without a token: %d %.200s", code, body)
	}
	code, body := get(base+"/readyz", "admin-secret")
	if code != http.StatusServiceUnavailable || strings.Contains(body, "pw@") || !strings.Contains(body, "failing") {
		t.Errorf("/readyz: %d %s (want 503 without details, even with the admin token)", code, body)
	}
	for _, path := range []string{"/v1/info", "/v1/workflows/x"} {
		if code, _ := get(base+path, "admin-secret"); code != http.StatusNotFound {
			t.Errorf("%s on the metrics listener: %d, want 404", path, code)
		}
	}
	if code, _ := get(srv.URL()+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics on the admin listener without its token: %d", code)
	}

	withToken := start("scrape-secret")
	base = local(withToken.MetricsAddr())
	if code, _ := get(base+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics with metrics.tokenFile set, no token: %d", code)
	}
	if code, _ := get(base+"/metrics", "scrape-secret"); code != http.StatusOK {
		t.Errorf("/metrics with its token: %d", code)
	}
	if code, _ := get(base+"/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz with a metrics token set: %d", code)
	}
}

// TestMetricsListenerOnLoopbackRefusesForeignHost: a metrics listener on
// loopback has no token either, so it answers only to the Host names the
// admin listener does.
func TestMetricsListenerOnLoopbackRefusesForeignHost(t *testing.T) {
	srv, err := admin.New(admin.Config{
		Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0",
		Gatherer: admin.NewMetrics(admin.MetricsOptions{Version: "t", NoRuntime: true}).Registry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	for host, want := range map[string]int{"": http.StatusOK, "localhost:9091": http.StatusOK, "evil.example:9091": http.StatusMisdirectedRequest} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.MetricsAddr()+"/metrics", nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %q: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// orderSagas registers the order demo's Go saga and compensations, as
// sagabridge's main does.
func orderSagas(t testing.TB) *registry.Registry {
	t.Helper()
	r, err := order.Sagas()
	if err != nil {
		t.Fatal(err)
	}
	return r
}
