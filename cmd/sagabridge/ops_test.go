package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/sagas/order"

	"gopkg.in/yaml.v3"

	"github.com/sagabridge/sagabridge/bridge/admin"
	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/bridge/dlqstore"
	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// startReadyWorker starts a worker process on cfgPath (its log printed if
// the test fails) and waits up to d for its admin API, at adminAddr with
// token, to say it is ready; it returns a client of that API.
func startReadyWorker(t *testing.T, cfgPath, logPath, adminAddr, token string, d time.Duration) *admin.Client {
	t.Helper()
	startWorker(t, cfgPath, logPath)
	dumpOnFailure(t, logPath)
	adm, err := admin.NewClient(adminAddr, token)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, d, "the worker to be ready", func() bool {
		r, err := adm.Ready(t.Context())
		return err == nil && r.Ready
	})
	return adm
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(freePort(t))
}

// writeOpsConfig is writeWorkerConfig with a known admin address and the
// given broker section.
func writeOpsConfig(t *testing.T, path string, broker map[string]any, dbPath, adminAddr string) {
	t.Helper()
	var cfg map[string]any
	if err := yaml.Unmarshal(order.BridgeYAML(), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["broker"] = broker
	cfg["engine"] = map[string]any{"kind": "embedded", "embedded": map[string]any{"dbPath": dbPath}}
	cfg["admin"] = map[string]any{"listen": adminAddr}
	// The dev routes drop late replies; this test needs one dead-lettered.
	for _, r := range cfg["routes"].([]any) {
		if route := r.(map[string]any); route["name"] == "payment-charged-or-declined" {
			route["onFinished"] = "deadletter"
		}
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// cli runs the sagabridge command line in this process.
type cli struct {
	t   *testing.T
	cfg string
}

func (c cli) run(stdin string, args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := newRoot(mustOwnSagas())
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	if stdin != "" {
		root.SetIn(strings.NewReader(stdin))
	} else {
		// A file that is not a terminal: confirmations need --yes.
		null, err := os.Open(os.DevNull)
		if err != nil {
			c.t.Fatal(err)
		}
		defer null.Close()
		root.SetIn(null)
	}
	if c.cfg != "" && len(args) > 0 && args[0] != "version" {
		args = append(args, "-c", c.cfg)
	}
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	code = exitOK
	if err != nil {
		errb.WriteString(err.Error())
		code = exitFailure
		var ee exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
	}
	return out.String(), errb.String(), code
}

// must runs a command that has to succeed.
func (c cli) must(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run("", args...)
	if code != exitOK {
		c.t.Fatalf("sagabridge %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// code runs a command that has to fail with want.
func (c cli) code(want int, args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run("", args...)
	if code != want {
		c.t.Fatalf("sagabridge %s: exit %d, want %d; stdout %s; stderr %s", strings.Join(args, " "), code, want, out, errOut)
	}
	return errOut
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%v in %s", err, s)
	}
	return v
}

// TestOperationsCLI drives publish, workflow and dlq against a real worker
// process on a real nats-server: sagas started by `publish` in structured
// and binary mode, inspected and purged through the worker's admin API,
// dead letters listed, shown, replayed exactly and purged.
func TestOperationsCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a worker process")
	}
	dir := t.TempDir()
	srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	adminAddr := freeAddr(t)
	cfgPath := filepath.Join(dir, "bridge.yaml")
	db := filepath.Join(dir, "workflows.db")
	writeOpsConfig(t, cfgPath, map[string]any{"kind": "nats", "nats": map[string]any{"url": srv.ClientURL()}}, db, adminAddr)
	// The same worker seen by a CLI whose config says the broker is
	// embedded: the CLI must ask the worker where it is.
	embeddedCfg := filepath.Join(dir, "embedded.yaml")
	writeOpsConfig(t, embeddedCfg, map[string]any{"kind": "embedded"}, db, adminAddr)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	legacy := mustPubSub(t, srv.ClientURL(), "legacy-services")
	watch := mustPubSub(t, srv.ClientURL(), "test-watcher")
	parts, err := simulated.New(simulated.Config{}, legacy.Publisher(), legacy.Subscriber(), nil)
	if err != nil {
		t.Fatal(err)
	}
	watcher := simulated.NewWatcher(nil)
	partsCtx, stopParts := context.WithCancel(ctx)
	partsDone := make(chan struct{})
	wg.Add(2)
	go func() { defer wg.Done(); defer close(partsDone); _ = parts.Run(partsCtx) }()
	go func() { defer wg.Done(); _ = watcher.Run(ctx, watch.Subscriber(), topics.Outcomes) }()

	logPath := filepath.Join(dir, "worker.log")
	startReadyWorker(t, cfgPath, logPath, adminAddr, "", 30*time.Second)
	c := cli{t: t, cfg: cfgPath}

	// publish: flags (structured), --binary, and a whole event on stdin.
	c.must("publish", "--topic", order.OrdersPlaced, "--type", "order.placed", "--id", "evt-ops-1", "--subject", "ops-1",
		"--data", `{"orderId":"ops-1","amount":5}`)
	out := c.must("publish", "--topic", order.OrdersPlaced, "--type", "order.placed", "--id", "evt-ops-2", "--binary",
		"--data", `{"orderId":"ops-2","amount":6,"failPayment":true}`, "-o", "json")
	if v := decodeJSON[map[string]any](t, out); v["mode"] != "binary" || v["id"] != "evt-ops-2" {
		t.Errorf("publish -o json: %s", out)
	}
	ev3 := `{"specversion":"1.0","id":"evt-ops-3","source":"shop","type":"order.placed","data":{"orderId":"ops-3","amount":7}}`
	if _, errOut, code := c.run(ev3, "publish", "--topic", order.OrdersPlaced, "--event", "-"); code != exitOK {
		t.Fatalf("publish --event -: %d %s", code, errOut)
	}
	c.code(exitUsage, "publish", "--topic", order.OrdersPlaced, "--data", `{"orderId":"x"}`)                     // no type
	c.code(exitUsage, "publish", "--topic", order.OrdersPlaced, "--type", "order.placed", "--data", `{not json`) // bad data
	testkit.WaitUntil(t, 30*time.Second, "three outcomes", func() bool { return watcher.Count() >= 3 })
	for id, want := range map[string]string{"order-ops-1": topics.StatusCompleted, "order-ops-2": topics.StatusCompensated, "order-ops-3": topics.StatusCompleted} {
		if got := watcher.Outcomes()[id]; len(got) != 1 || got[0].Outcome.Status != want {
			t.Errorf("%s: %+v, want one %s outcome", id, got, want)
		}
	}

	// workflow get / raise / terminate / purge through the admin API. The
	// outcome is published just before the orchestration completes.
	var wv workflowView
	for _, id := range []string{"order-ops-1", "order-ops-3", "order-ops-2"} {
		testkit.WaitUntil(t, 10*time.Second, id+" to complete", func() bool {
			wv = decodeJSON[workflowView](t, c.must("workflow", "get", id, "-o", "json"))
			return wv.RuntimeStatus == "COMPLETED"
		})
	}
	if wv.RuntimeStatus != "COMPLETED" || wv.Outcome == nil || wv.Outcome.Status != topics.StatusCompensated || len(wv.Outcome.Steps) == 0 {
		t.Errorf("workflow get -o json: %+v", wv)
	}
	if table := c.must("workflow", "get", "order-ops-2"); !strings.Contains(table, "compensated") || !strings.Contains(table, "charge-payment") {
		t.Errorf("workflow get table:\n%s", table)
	}
	if errOut := c.code(exitNotFound, "workflow", "get", "order-nobody"); errOut != "workflow instance order-nobody not found" {
		t.Errorf("workflow get of a missing instance: %q, want the plain not-found line", errOut)
	}
	c.code(exitUsage, "workflow", "get")
	c.code(exitUsage, "workflow", "raise", "order-ops-3", "late", "--data", "not json")
	c.code(exitFailure, "workflow", "raise", "order-ops-3", "late", "--data", `{"a":1}`) // finished
	if errOut := c.code(exitUsage, "workflow", "terminate", "order-ops-1"); !strings.Contains(errOut, "--yes") {
		t.Errorf("terminate without --yes: %s", errOut)
	}
	if _, _, code := c.run("n\n", "workflow", "purge", "order-ops-1"); code != exitFailure {
		t.Errorf("purge answered no: exit %d", code)
	}
	c.must("workflow", "get", "order-ops-1")
	if _, errOut, code := c.run("y\n", "workflow", "purge", "order-ops-1"); code != exitOK {
		t.Fatalf("purge answered yes: %d %s", code, errOut)
	}
	c.code(exitNotFound, "workflow", "get", "order-ops-1")
	c.must("workflow", "purge", "order-ops-3", "--yes", "-o", "json")
	c.code(exitFailure, "workflow", "get", "order-ops-2", "--admin", freeAddr(t)) // nobody there

	// A saga whose participants stopped answering: `workflow get` shows
	// the step it waits at, from the worker's progress board.
	stopParts()
	<-partsDone
	c.must("publish", "--topic", order.OrdersPlaced, "--type", "order.placed", "--id", "evt-ops-4",
		"--data", `{"orderId":"ops-4","amount":8}`)
	testkit.WaitUntil(t, 30*time.Second, "order-ops-4's current step", func() bool {
		out, _, code := c.run("", "workflow", "get", "order-ops-4", "-o", "json")
		if code != exitOK {
			return false // not started yet
		}
		wv = decodeJSON[workflowView](t, out)
		return wv.Progress != nil
	})
	if p := wv.Progress; wv.RuntimeStatus != "RUNNING" || p.Step != "reserve-inventory" || p.Status != "running" ||
		len(p.WaitingFor) != 1 || p.WaitingFor[0] != "event reserve-inventory.reply" {
		t.Errorf("running saga: %+v progress %+v", wv.Status, p)
	}
	if table := c.must("workflow", "get", "order-ops-4"); !strings.Contains(table, "reserve-inventory (command)") ||
		!strings.Contains(table, "event reserve-inventory.reply") {
		t.Errorf("workflow get table of a running saga:\n%s", table)
	}

	// Dead letters: a CEL error at run time and a raise on a finished saga.
	c.must("publish", "--topic", order.OrdersPlaced, "--type", "order.placed", "--id", "evt-bad-id", "--data", `{"orderId":7}`)
	c.must("publish", "--topic", order.PaymentReplies, "--type", "payment.charged", "--id", "evt-late-pay", "--data", `{"orderId":"ops-2","status":"ok"}`)
	var views []dlqstore.View
	testkit.WaitUntil(t, 30*time.Second, "two dead letters", func() bool {
		views = decodeJSON[[]dlqstore.View](t, c.must("dlq", "list", "-o", "json"))
		return len(views) >= 2
	})
	kinds := map[string]dlqstore.View{}
	for _, v := range views {
		kinds[v.Kind] = v
	}
	evalDL, finDL := kinds[dlq.KindEval], kinds[dlq.KindFinished]
	if evalDL.EventID != "evt-bad-id" || evalDL.OriginTopic != order.OrdersPlaced || finDL.EventID != "evt-late-pay" || finDL.Route != "payment-charged-or-declined" {
		t.Fatalf("dead letters: %+v", views)
	}
	if table := c.must("dlq", "list"); !strings.Contains(table, dlq.KindEval) || !strings.Contains(table, "2 message(s)") {
		t.Errorf("dlq list table:\n%s", table)
	}
	if got := decodeJSON[[]dlqstore.View](t, c.must("dlq", "list", "--kind", dlq.KindFinished, "--since", "10m", "-o", "json")); len(got) != 1 {
		t.Errorf("dlq list --kind: %d", len(got))
	}
	// The embedded-broker config finds the broker through the worker.
	if got := decodeJSON[[]dlqstore.View](t, cli{t: t, cfg: embeddedCfg}.must("dlq", "list", "--reason", "FINISHED", "-o", "json")); len(got) != 1 {
		t.Errorf("dlq list through the admin API's broker address: %d", len(got))
	}
	shown := decodeJSON[dlqstore.View](t, c.must("dlq", "show", strconv.FormatUint(finDL.Seq, 10), "-o", "json"))
	if !strings.Contains(string(shown.Payload), `"ops-2"`) || shown.Headers["Content-Type"] == "" {
		t.Errorf("dlq show: %+v", shown)
	}
	if detail := c.must("dlq", "show", strconv.FormatUint(finDL.Seq, 10)); !strings.Contains(detail, "payload (") {
		t.Errorf("dlq show table:\n%s", detail)
	}
	c.code(exitNotFound, "dlq", "show", "999")
	var asYAML []dlqstore.View
	if err := yaml.Unmarshal([]byte(c.must("dlq", "list", "-o", "yaml")), &asYAML); err != nil || len(asYAML) != len(views) {
		t.Errorf("dlq list -o yaml: %d entries, %v; json had %d", len(asYAML), err, len(views))
	}
	c.code(exitUsage, "dlq", "list", "-o", "xml")
	c.code(exitUsage, "dlq", "list", "--bogus")
	c.code(exitUsage, "dlq", "list", "--since", "yesterday-ish")

	// Replay: a dry run changes nothing; a real one re-publishes the exact
	// message, which the bridge dead-letters again (the saga is still
	// finished) under a new failure.
	type replayOut struct {
		DryRun   bool `json:"dryRun"`
		Replayed int  `json:"replayed"`
		Skipped  int  `json:"skipped"`
		Done     bool `json:"done"`
	}
	if r := decodeJSON[replayOut](t, c.must("dlq", "replay", "--kind", dlq.KindFinished, "--dry-run", "-o", "json", "--no-progress")); !r.DryRun || r.Replayed != 1 || r.Skipped != 1 {
		t.Errorf("dry run: %+v", r)
	}
	out = c.must("dlq", "replay", "--kind", dlq.KindFinished, "--rate", "50")
	if !strings.Contains(out, "replayed 1, skipped 1") {
		t.Errorf("replay summary: %s", out)
	}
	var again dlqstore.View
	testkit.WaitUntil(t, 30*time.Second, "the replayed event to be dead-lettered again", func() bool {
		for _, v := range decodeJSON[[]dlqstore.View](t, c.must("dlq", "list", "--kind", dlq.KindFinished, "-o", "json")) {
			if v.Seq != finDL.Seq && v.EventID == "evt-late-pay" {
				again = v
				return true
			}
		}
		return false
	})
	c.code(exitNotFound, "dlq", "show", strconv.FormatUint(finDL.Seq, 10))
	replayedShown := decodeJSON[dlqstore.View](t, c.must("dlq", "show", strconv.FormatUint(again.Seq, 10), "-o", "json"))
	if string(replayedShown.Payload) != string(shown.Payload) || replayedShown.Headers["Content-Type"] != shown.Headers["Content-Type"] {
		t.Errorf("the replay changed the message:\n%s\n%s", shown.Payload, replayedShown.Payload)
	}

	// Purge needs --yes without a terminal.
	c.code(exitUsage, "dlq", "purge")
	if out := c.must("dlq", "purge", "--yes", "--kind", dlq.KindEval); !strings.Contains(out, "purged 1") {
		t.Errorf("filtered purge: %s", out)
	}
	if v := decodeJSON[map[string]any](t, c.must("dlq", "purge", "--yes", "-o", "json")); v["purged"] != float64(1) {
		t.Errorf("purge -o json: %v", v)
	}
	if got := decodeJSON[[]dlqstore.View](t, c.must("dlq", "list", "-o", "json")); len(got) != 0 {
		t.Errorf("%d left after purge", len(got))
	}
}

func TestPrintWorkflowProgress(t *testing.T) {
	d := admin.WorkflowDetail{
		Status:   engine.Status{InstanceID: "order-1", Workflow: "OrderSaga", RuntimeStatus: "RUNNING"},
		Progress: json.RawMessage(`{"status":"running","step":"charge-payment","kind":"command","attempt":2,"waitingFor":["event charge-payment.reply"],"done":["reserve-inventory"]}`),
	}
	var b bytes.Buffer
	if err := printWorkflow(&b, "table", d); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"charge-payment (command), attempt 2", "event charge-payment.reply", "reserve-inventory", "RUNNING"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := printWorkflow(&b, "json", d); err != nil {
		t.Fatal(err)
	}
	if v := decodeJSON[workflowView](t, b.String()); v.Progress == nil || v.Progress.Step != "charge-payment" || v.RuntimeStatus != "RUNNING" {
		t.Errorf("json: %s", b.String())
	}
}
