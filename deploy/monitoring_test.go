package deploy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Prometheus Operator kinds, the fields these files use (monitoring.coreos.com/v1).
type (
	serviceMonitor struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        metav1.ObjectMeta `json:"metadata"`
		Spec            struct {
			Selector  metav1.LabelSelector `json:"selector"`
			Endpoints []struct {
				Port          string `json:"port"`
				Path          string `json:"path"`
				Interval      string `json:"interval"`
				ScrapeTimeout string `json:"scrapeTimeout"`
			} `json:"endpoints"`
		} `json:"spec"`
	}
	prometheusRule struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        metav1.ObjectMeta `json:"metadata"`
		Spec            ruleFile          `json:"spec"`
	}
	ruleFile struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert,omitempty"`
				Record      string            `json:"record,omitempty"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels,omitempty"`
				Annotations map[string]string `json:"annotations,omitempty"`
			} `json:"rules"`
		} `json:"groups"`
	}
	grafanaDashboard struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
)

type monitoring struct {
	sm        *serviceMonitor
	rule      *prometheusRule
	dashboard *corev1.ConfigMap
}

func renderMonitoring(t *testing.T) monitoring {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "monitoring")
	if err != nil {
		t.Fatalf("kustomize build monitoring: %v", err)
	}
	var out monitoring
	for _, r := range m.Resources() {
		b, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var obj any
		switch gvk := r.GetGvk(); gvk.ApiVersion() + " " + gvk.Kind {
		case "monitoring.coreos.com/v1 ServiceMonitor":
			out.sm = &serviceMonitor{}
			obj = out.sm
		case "monitoring.coreos.com/v1 PrometheusRule":
			out.rule = &prometheusRule{}
			obj = out.rule
		case "v1 ConfigMap":
			out.dashboard = &corev1.ConfigMap{}
			obj = out.dashboard
		default:
			t.Errorf("%s %s: no type to check it against", gvk, r.GetName())
			continue
		}
		if err := decodeStrict(b, obj); err != nil {
			t.Errorf("%s: %v", r.GetName(), err)
		}
	}
	if out.sm == nil || out.rule == nil || out.dashboard == nil {
		t.Fatalf("monitoring renders %+v", out)
	}
	return out
}

// TestServiceMonitorScrapesTheMetricsPort: the ServiceMonitor selects the
// worker's Service, in its namespace, on the port with no token.
func TestServiceMonitorScrapesTheMetricsPort(t *testing.T) {
	m := renderMonitoring(t)
	r := render(t, "overlays/nats")
	sel, err := metav1.LabelSelectorAsSelector(&m.sm.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(r.service.Labels)) {
		t.Errorf("ServiceMonitor selector %v does not select the Service (labels %v): %v", m.sm.Spec.Selector, r.service.Labels, err)
	}
	if m.sm.Metadata.Namespace != r.service.Namespace {
		t.Errorf("ServiceMonitor in %q, Service in %q", m.sm.Metadata.Namespace, r.service.Namespace)
	}
	if len(m.sm.Spec.Endpoints) != 1 || m.sm.Spec.Endpoints[0].Port != "metrics" || m.sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("endpoints %+v: want the Service port named metrics, /metrics", m.sm.Spec.Endpoints)
	}
	if m.dashboard.Labels["grafana_dashboard"] != "1" || m.dashboard.Data["dashboard.json"] == "" {
		t.Errorf("dashboard ConfigMap %s: labels %v, keys %v", m.dashboard.Name, m.dashboard.Labels, mapsKeys(m.dashboard.Data))
	}
}

// promtool finds Debian's promtool (package prometheus; .ci/run installs it).
func promtool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/promtool"); err == nil {
		return "/usr/bin/promtool"
	}
	t.Fatal("promtool not found: install Debian's prometheus package (apt-get install prometheus); .ci/run does")
	return ""
}

// TestAlertRules: promtool checks the PrometheusRule's rules and runs
// their unit tests (monitoring/rules_test.yaml).
func TestAlertRules(t *testing.T) {
	m := renderMonitoring(t)
	dir := t.TempDir()
	rules, err := yaml.Marshal(m.rule.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile("monitoring/rules_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules_test.yaml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := promtool(t)
	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "rules_test.yaml"}} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	alerts := map[string]bool{}
	for _, g := range m.rule.Spec.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: severity, summary and description are what the on-call reads", r.Alert)
			}
		}
	}
	for _, want := range []string{"SagabridgeDeadLetters", "SagabridgeSagaFailed", "SagabridgeParkedEventsPilingUp", "SagabridgeHandlerSlow",
		"SagabridgeNotReady", "SagabridgeDeadLetterBacklog", "SagabridgeOldestRunningSaga"} {
		if !alerts[want] {
			t.Errorf("no alert %s", want)
		}
	}
}

var metricName = regexp.MustCompile(`\bsagabridge_[a-z0-9_]+`)

// TestDashboardAndAlertsQueryExportedMetrics runs a worker (sagabridge dev
// with a migrating saga, so every family is there) and checks that every
// metric the dashboard and the alerts query is one it exports, and that
// every dashboard query is valid PromQL (promtool checks it as a rule).
func TestDashboardAndAlertsQueryExportedMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the worker")
	}
	exported := scrapeWorker(t)

	m := renderMonitoring(t)
	var dash grafanaDashboard
	if err := json.Unmarshal([]byte(m.dashboard.Data["dashboard.json"]), &dash); err != nil {
		t.Fatal(err)
	}
	type query struct{ where, expr string }
	var queries []query
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries = append(queries, query{"dashboard panel " + p.Title, tg.Expr})
		}
	}
	nDash := len(queries)
	for _, g := range m.rule.Spec.Groups {
		for _, r := range g.Rules {
			queries = append(queries, query{"alert " + r.Alert, r.Expr})
		}
	}
	if nDash < 15 {
		t.Fatalf("%d dashboard queries", nDash)
	}
	for _, q := range queries {
		names := metricName.FindAllString(q.expr, -1)
		if len(names) == 0 {
			t.Errorf("%s: %q queries no sagabridge metric", q.where, q.expr)
		}
		for _, n := range names {
			if !exported[family(n, exported)] {
				t.Errorf("%s queries %s, which the worker does not export", q.where, n)
			}
		}
	}

	// Every dashboard query parses: promtool checks them as recording rules.
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range queries[:nDash] {
		expr := strings.NewReplacer("$__rate_interval", "5m", "$namespace", ".*").Replace(q.expr)
		b, _ := json.Marshal(expr)
		fmt.Fprintf(&rules, "      - record: dashboard:q%d\n        expr: %s\n", i, b)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool(t), "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("dashboard queries: promtool: %v\n%s", err, out)
	}
}

// family maps a series name to its metric family (a histogram's _bucket,
// _sum and _count belong to it).
func family(name string, exported map[string]bool) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && exported[base] {
			return base
		}
	}
	return name
}

// scrapeWorker runs `sagabridge dev --legacy shadow` and returns the metric
// families its /metrics lists.
func scrapeWorker(t *testing.T) map[string]bool {
	t.Helper()
	bin := buildWorker(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "dev", "--legacy", "shadow", "--orders", "0", "--rate", "5", "--data", t.TempDir(), "--admin", addr)
	logPath := filepath.Join(t.TempDir(), "dev.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var body string
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, b, _ := get("http://"+addr+"/metrics", "")
		if code == 200 && strings.Contains(b, "sagabridge_saga_outcomes_total") && strings.Contains(b, "sagabridge_consumer_lag_messages") {
			body = b
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("no metrics from the worker after 60s (%d):\n%s", code, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	exported := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			exported[f[2]] = true
		}
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range exported {
			if !yield(n) {
				return
			}
		}
	})
	t.Logf("the worker exports %d families: %s", len(names), strings.Join(names, " "))
	return exported
}
