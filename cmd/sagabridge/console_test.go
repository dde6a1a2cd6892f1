package main

import (
	"context"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"gopkg.in/yaml.v3"

	"github.com/sagabridge/sagabridge/bridge/admin"
	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/bridge/sagaview"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// screenshots, when set, is where TestConsole saves a PNG of each page
// (make screenshots: docs/console).
var screenshots = flag.String("console-screenshots", "", "directory to save the console's screenshots in")

// chromiumPath is the browser the console tests drive: $CHROMIUM, else
// Debian's chromium.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		if testing.Short() {
			t.Skipf("no browser at %s (-short)", p)
		}
		t.Fatalf("the console tests need a headless Chromium at %s (Debian: apt-get install chromium; .ci/run installs it), or $CHROMIUM: %v", p, err)
	}
	return p
}

// approvalSaga waits for an approval event; the console test starts it
// and raises the event through routes.
const approvalSaga = `name: Approval
version: 2
steps:
  - name: wait-approval
    wait: {event: approved}
    timeout: 1h
`

// fragileSaga fails and cannot undo: its second step times out, and the
// compensation of its first goes to a topic nobody answers.
const fragileSaga = `name: Fragile
version: 1
steps:
  - name: hold
    wait: {event: go}
    timeout: 1h
    compensation:
      name: release-hold
      command: {topic: nobody.commands, type: hold.release, replyEvent: hold.released}
      timeout: 200ms
      retry: {maxAttempts: 1}
  - name: never
    wait: {event: never}
    timeout: 300ms
`

// writeConsoleConfig is the dev config plus the Approval saga, its routes
// (a raise on an approval that does not exist yet is dead-lettered after
// a second), and a known admin address.
func writeConsoleConfig(t *testing.T, dir, natsURL, adminAddr string) string {
	t.Helper()
	for name, def := range map[string]string{"approval.yaml": approvalSaga, "fragile.yaml": fragileSaga} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(def), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(order.BridgeYAML(), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["broker"] = map[string]any{"kind": "nats", "nats": map[string]any{"url": natsURL}}
	cfg["engine"] = map[string]any{"kind": "embedded", "embedded": map[string]any{"dbPath": filepath.Join(dir, "workflows.db")}}
	cfg["admin"] = map[string]any{"listen": adminAddr}
	cfg["sagas"] = []any{"approval.yaml", "fragile.yaml"}
	cfg["routes"] = append(cfg["routes"].([]any),
		map[string]any{"name": "approval-requested", "topics": []any{"approvals.requested"}, "match": `event.type == "approval.requested"`,
			"start": map[string]any{"workflow": "Approval", "instanceId": `"approval-" + event.data.id`}},
		map[string]any{"name": "approval-given", "topics": []any{"approvals.given"}, "match": `event.type == "approval.given"`,
			"raise": map[string]any{"instanceId": `"approval-" + event.data.id`, "eventName": "approved"}, "parkWindow": "1s"},
		map[string]any{"name": "fragile-requested", "topics": []any{"fragile.requested"}, "match": `event.type == "fragile.requested"`,
			"start": map[string]any{"workflow": "Fragile", "instanceId": `"fragile-" + event.data.id`}},
		map[string]any{"name": "fragile-go", "topics": []any{"fragile.go"}, "match": `event.type == "fragile.go"`,
			"raise": map[string]any{"instanceId": `"fragile-" + event.data.id`, "eventName": "go"}},
	)
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

// TestConsole starts a worker process (real NATS, embedded engine, the
// simulated order services) whose admin API needs a token, makes sagas
// that complete, compensate, wait and get terminated, and dead letters,
// then checks `workflow list` / `workflow history` and drives the console
// in headless Chromium: the login refuses a wrong token, the counts and
// rows, a compensated saga's timeline in order, a waiting saga's
// highlighted step, terminate from the page, and a dead letter replayed
// from the page that leaves the DLQ and finishes its saga.
func TestConsole(t *testing.T) {
	browser := chromiumPath(t)
	dir := t.TempDir()
	srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	const token = "console-test-token"
	t.Setenv(admin.TokenEnv, token) // the worker process inherits it; the CLI reads it
	adminAddr := freeAddr(t)
	cfgPath := writeConsoleConfig(t, dir, srv.ClientURL(), adminAddr)

	ctx := t.Context()
	_, watcher := runLegacyServices(t, natsConnect(srv.ClientURL()), simulated.Config{})

	logPath := filepath.Join(dir, "worker.log")
	adm := startReadyWorker(t, cfgPath, logPath, adminAddr, token, 30*time.Second)
	c := cli{t: t, cfg: cfgPath}
	pub := func(topic, typ, id, data string) {
		c.must("publish", "--topic", topic, "--type", typ, "--id", id, "--data", data)
	}

	pub(order.OrdersPlaced, "order.placed", "evt-c-1", `{"orderId":"c-1","amount":5}`)
	pub(order.OrdersPlaced, "order.placed", "evt-c-2", `{"orderId":"c-2","amount":6,"failShipping":true}`)
	pub("approvals.given", "approval.given", "evt-a-1-given", `{"id":"a-1"}`) // before its saga: dead-lettered
	pub(order.OrdersPlaced, "order.placed", "evt-bad", `{"orderId":7}`)       // route-eval dead letter
	pub("fragile.requested", "fragile.requested", "evt-f-1", `{"id":"f-1"}`)
	pub("fragile.go", "fragile.go", "evt-f-1-go", `{"id":"f-1"}`)
	testkit.WaitUntil(t, 30*time.Second, "three outcomes", func() bool { return watcher.Count() >= 3 })
	if got := watcher.Outcomes()["fragile-f-1"]; len(got) != 1 || got[0].Outcome.Status != topics.StatusFailed {
		t.Errorf("fragile-f-1: %+v, want a failed outcome", got)
	}
	var letters admin.DeadLetterList
	testkit.WaitUntil(t, 30*time.Second, "two dead letters", func() bool {
		letters, err = adm.DeadLetters(ctx, nil)
		return err == nil && len(letters.Items) == 2
	})
	notFound := ""
	for _, it := range letters.Items {
		if it.Kind == dlq.KindNotFound {
			notFound = it.Ref
		}
	}
	if notFound == "" {
		t.Fatalf("no %s dead letter: %+v", dlq.KindNotFound, letters.Items)
	}
	pub("approvals.requested", "approval.requested", "evt-a-1", `{"id":"a-1"}`)
	pub("approvals.requested", "approval.requested", "evt-a-2", `{"id":"a-2"}`)
	var waiting admin.WorkflowList
	testkit.WaitUntil(t, 30*time.Second, "two waiting approvals", func() bool {
		waiting, err = adm.List(ctx, sagaview.Filter{Statuses: []string{sagaview.Waiting}}, false)
		return err == nil && len(waiting.Instances) == 2
	})
	for _, in := range waiting.Instances {
		if in.Saga != "Approval" || in.Version != 2 || in.Step != "wait-approval" {
			t.Errorf("waiting instance: %+v", in)
		}
	}
	testkit.WaitUntil(t, 10*time.Second, "order-c-2 and fragile-f-1 to complete in the engine", func() bool {
		l, err := adm.List(ctx, sagaview.Filter{Statuses: []string{sagaview.Compensated, sagaview.Failed}}, false)
		return err == nil && len(l.Instances) == 2
	})

	// The CLI: list with filters and formats, history of the compensated saga.
	all := decodeJSON[admin.WorkflowList](t, c.must("workflow", "list", "--counts", "-o", "json"))
	if ids := instanceIDs(all.Instances); !slices.Equal(ids, []string{"approval-a-2", "approval-a-1", "fragile-f-1", "order-c-2", "order-c-1"}) ||
		all.Source != "engine" || all.Counts == nil || all.Counts.Counts[sagaview.Completed] != 1 ||
		all.Counts.Counts[sagaview.Compensated] != 1 || all.Counts.Counts[sagaview.Waiting] != 2 || all.Counts.Counts[sagaview.Failed] != 1 || !all.Counts.Complete {
		t.Errorf("workflow list -o json: %v %+v", ids, all.Counts)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--saga", "OrderSaga"}, []string{"order-c-2", "order-c-1"}},
		{[]string{"--status", "compensated,completed"}, []string{"order-c-2", "order-c-1"}},
		{[]string{"--saga", "Approval", "--version", "2", "--step", "wait-approval"}, []string{"approval-a-2", "approval-a-1"}},
		{[]string{"--version", "1"}, []string{"fragile-f-1"}},
		{[]string{"--status", "failed"}, []string{"fragile-f-1"}},
		{[]string{"-q", "A-1"}, []string{"approval-a-1"}},
		{[]string{"--id-prefix", "order-"}, []string{"order-c-2", "order-c-1"}},
		{[]string{"--started-from", "1h", "--finished-to", "1h"}, nil},
		{[]string{"--finished-from", "1h"}, []string{"fragile-f-1", "order-c-2", "order-c-1"}},
	} {
		got := decodeJSON[admin.WorkflowList](t, c.must(append([]string{"workflow", "list", "-o", "json"}, tc.args...)...))
		if ids := instanceIDs(got.Instances); !slices.Equal(ids, tc.want) {
			t.Errorf("workflow list %v: %v, want %v", tc.args, ids, tc.want)
		}
	}
	page1 := decodeJSON[admin.WorkflowList](t, c.must("workflow", "list", "--limit", "3", "-o", "json"))
	page2 := decodeJSON[admin.WorkflowList](t, c.must("workflow", "list", "--limit", "3", "--page-token", page1.NextPageToken, "-o", "json"))
	if got := append(instanceIDs(page1.Instances), instanceIDs(page2.Instances)...); page1.NextPageToken == "" || !slices.Equal(got, instanceIDs(all.Instances)) {
		t.Errorf("paging: %v then %v", instanceIDs(page1.Instances), instanceIDs(page2.Instances))
	}
	var asYAML map[string]any
	if err := yaml.Unmarshal([]byte(c.must("workflow", "list", "-o", "yaml")), &asYAML); err != nil || len(asYAML["instances"].([]any)) != 5 {
		t.Errorf("workflow list -o yaml: %v %v", err, asYAML)
	}
	if table := c.must("workflow", "list", "--counts"); !strings.Contains(table, "approval-a-1") || !strings.Contains(table, "event approved") ||
		!strings.Contains(table, "counts: waiting 2, completed 1, compensated 1, failed 1") {
		t.Errorf("workflow list table:\n%s", table)
	}
	c.code(exitUsage, "workflow", "list", "--status", "sleeping")
	c.code(exitUsage, "workflow", "list", "--started-from", "yesterday-ish")

	h := decodeJSON[sagaview.History](t, c.must("workflow", "history", "order-c-2", "-o", "json"))
	var steps []string
	for _, e := range h.Entries {
		switch e.Kind {
		case sagaview.EntryCommand, sagaview.EntryCompensate:
			steps = append(steps, e.Kind+" "+e.Step+" "+e.Key)
		case sagaview.EntryStarted, sagaview.EntryOutcome:
			steps = append(steps, e.Kind+" "+e.Status)
		}
	}
	want := []string{"started ", "command reserve-inventory order-c-2/reserve-inventory/1", "command charge-payment order-c-2/charge-payment/1",
		"command create-shipment order-c-2/create-shipment/1", "compensation charge-payment order-c-2/charge-payment/undo/1",
		"compensation reserve-inventory order-c-2/reserve-inventory/undo/1", "outcome compensated"}
	if !slices.Equal(steps, want) || h.Source != sagaview.HistoryFromEngine || h.Outcome == nil || h.Outcome.Status != topics.StatusCompensated {
		t.Errorf("history of order-c-2:\n%s\nwant\n%s", strings.Join(steps, "\n"), strings.Join(want, "\n"))
	}
	threeSteps := []string{"reserve-inventory done", "charge-payment done", "create-shipment failed",
		"undo charge-payment compensated", "undo reserve-inventory compensated"}
	if got := barsOf(h.Bars); !slices.Equal(got, threeSteps) {
		t.Errorf("bars: %v", got)
	}
	if table := c.must("workflow", "history", "order-c-2"); !strings.Contains(table, "order-c-2/reserve-inventory/undo/1") || !strings.Contains(table, "outcome   compensated") {
		t.Errorf("workflow history table:\n%s", table)
	}
	c.code(exitNotFound, "workflow", "history", "order-nobody")

	// The browser.
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1400, 1000))...)
	defer cancelAlloc()
	bctx, cancelB := chromedp.NewContext(alloc)
	defer cancelB()
	bctx, cancelT := context.WithTimeout(bctx, 2*time.Minute)
	defer cancelT()
	base := "http://" + adminAddr
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
	}
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if *screenshots == "" {
				return nil
			}
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(*screenshots, name), png, 0o644)
		})
	}
	strs := func(js string) []string { t.Helper(); return evalJS[[]string](t, bctx, js) }
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	// Without the token the console refuses: the page is the login, the API 401.
	do("the console without a token", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(css("#token")), shot("login.png"))
	if loc := evalJS[string](t, bctx, "location.pathname"); loc != "/ui/login" {
		t.Errorf("without a token the console shows %s", loc)
	}
	if status := evalJS[int](t, bctx, `fetch("/v1/workflows").then(r => r.status)`); status != http.StatusUnauthorized {
		t.Errorf("without a token the API answered %d", status)
	}
	do("a wrong token", chromedp.SendKeys(css("#token"), "wrong"), chromedp.Click(css("#login")), chromedp.WaitVisible(css("#failed")))
	do("the right token", chromedp.SendKeys(css("#token"), token), chromedp.Click(css("#login")),
		chromedp.WaitVisible(css(`#instances tr[data-id="approval-a-1"]`)))

	// The sagas page: counts and rows.
	do("the sagas page", chromedp.WaitVisible(css(`#counts .count[data-status="waiting"]`)), shot("sagas.png"))
	counts := evalJS[map[string]string](t, bctx, `Object.fromEntries([...document.querySelectorAll("#counts .count")].map(c => [c.dataset.status, c.querySelector("b").textContent]))`)
	if counts["completed"] != "1" || counts["compensated"] != "1" || counts["waiting"] != "2" || counts["failed"] != "1" {
		t.Errorf("counts on the page: %v", counts)
	}
	rows := strs(`[...document.querySelectorAll("#instances tbody tr")].map(r => r.dataset.id + " " + r.querySelector(".status").textContent)`)
	if want := []string{"approval-a-2 waiting", "approval-a-1 waiting", "fragile-f-1 failed", "order-c-2 compensated", "order-c-1 completed"}; !slices.Equal(rows, want) {
		t.Errorf("rows: %v, want %v", rows, want)
	}
	do("a status filter", chromedp.Click(css(`#counts .count[data-status="compensated"]`)), chromedp.WaitNotPresent(css(`#instances tr[data-id="order-c-1"]`)))
	if rows := strs(`[...document.querySelectorAll("#instances tbody tr")].map(r => r.dataset.id)`); !slices.Equal(rows, []string{"order-c-2"}) {
		t.Errorf("rows filtered by compensated: %v", rows)
	}

	// The compensated saga's timeline: steps in order, then the compensation.
	do("the compensated saga", chromedp.Click(css(`#instances tr[data-id="order-c-2"] a`)), chromedp.WaitVisible(css("rect.bar")),
		chromedp.WaitVisible(css("#entries tbody tr")), shot("saga-compensated.png"))
	bars := strs(`[...document.querySelectorAll("rect.bar")].map(r => (r.dataset.compensation === "true" ? "undo " : "") + r.dataset.step + " " + r.dataset.status)`)
	if !slices.Equal(bars, threeSteps) {
		t.Errorf("bars of order-c-2: %v, want %v", bars, threeSteps)
	}
	if kinds := strs(`[...document.querySelectorAll("#entries tbody tr")].map(r => r.dataset.kind)`); len(kinds) == 0 || kinds[0] != "started" ||
		!slices.Contains(kinds, "compensation") || !slices.Contains(kinds, "outcome") {
		t.Errorf("entries of order-c-2: %v", kinds)
	}

	// The saga that could not undo.
	do("the failed saga", chromedp.Navigate(base+"/ui/saga.html?id=fragile-f-1"), chromedp.WaitVisible(css("rect.bar")), shot("saga-failed.png"))
	if bars := strs(`[...document.querySelectorAll("rect.bar")].map(r => (r.dataset.compensation === "true" ? "undo " : "") + r.dataset.step + " " + r.dataset.status)`); !slices.Equal(bars,
		[]string{"hold done", "never timed-out", "undo hold compensation-failed"}) {
		t.Errorf("bars of fragile-f-1: %v", bars)
	}

	// A waiting saga: its step highlighted; terminate the other from the page.
	do("the waiting saga", chromedp.Navigate(base+"/ui/saga.html?id=approval-a-1"), chromedp.WaitVisible(css("rect.bar")), shot("saga-waiting.png"))
	if bars := strs(`[...document.querySelectorAll("rect.bar")].map(r => r.dataset.step + " " + r.dataset.status)`); !slices.Equal(bars, []string{"wait-approval waiting"}) {
		t.Errorf("bars of approval-a-1: %v", bars)
	}
	do("terminate approval-a-2", chromedp.Navigate(base+"/ui/saga.html?id=approval-a-2"), chromedp.WaitVisible(css("rect.bar")),
		chromedp.WaitEnabled(css("#terminate")), chromedp.Click(css("#terminate")), chromedp.WaitVisible(css("#confirm-ok")),
		chromedp.Click(css("#confirm-ok")), chromedp.WaitVisible(css("#status .s-terminated")))

	// Dead letters: replay the approval that came too early; it leaves
	// the list and its saga completes.
	row := `tr[data-ref="` + notFound + `"]`
	do("the dead letters", chromedp.Navigate(base+"/ui/dlq.html"), chromedp.WaitVisible(css(row)),
		chromedp.Click(css(row+" td:nth-child(3)")), chromedp.WaitVisible(css("#detail-payload")),
		chromedp.Click(css(row+" input")), shot("dlq.png"),
		chromedp.Click(css("#replay")), chromedp.WaitVisible(css("#confirm-ok")),
		chromedp.Click(css("#confirm-ok")), chromedp.WaitNotPresent(css(row)))
	testkit.WaitUntil(t, 30*time.Second, "approval-a-1's outcome", func() bool {
		got := watcher.Outcomes()["approval-a-1"]
		return len(got) == 1 && got[0].Outcome.Status == topics.StatusCompleted
	})
	if l, err := adm.DeadLetters(ctx, nil); err != nil || len(l.Items) != 1 || l.Items[0].Kind != dlq.KindEval {
		t.Errorf("dead letters after the replay: %+v %v", l, err)
	}
	do("the migration page", chromedp.Navigate(base+"/ui/migration.html"), chromedp.WaitVisible(css("#report tbody tr")), shot("migration.png"))

	// The statuses the API reports now.
	final := decodeJSON[admin.WorkflowList](t, c.must("workflow", "list", "--counts", "-o", "json"))
	if cnt := final.Counts.Counts; cnt[sagaview.Completed] != 2 || cnt[sagaview.Terminated] != 1 || cnt[sagaview.Waiting] != 0 {
		t.Errorf("counts at the end: %v", cnt)
	}
}

func instanceIDs(ins []sagaview.Instance) []string {
	var out []string
	for _, in := range ins {
		out = append(out, in.InstanceID)
	}
	return out
}

func barsOf(bars []sagaview.Bar) []string {
	var out []string
	for _, b := range bars {
		s := b.Step + " " + b.Status
		if b.Compensation {
			s = "undo " + s
		}
		out = append(out, s)
	}
	return out
}

// evalJS evaluates a JavaScript expression in the page (awaiting a
// promise) and returns its value.
func evalJS[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("browser: %s: %v", js, err)
	}
	return v
}
