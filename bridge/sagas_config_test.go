package bridge_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics"
)

// TestDeclarativeSagaFromConfig: a saga definition file named in
// bridge.yaml's `sagas` runs without any Go code, beside the built-in Go
// OrderSaga, under its own name; the route names it and pins the version
// it starts.
func TestDeclarativeSagaFromConfig(t *testing.T) {
	kit := natsKit(t)
	dir := t.TempDir()
	v2 := strings.Replace(string(order.YAML()), "version: 1", "version: 2", 1)
	v2 = strings.Replace(v2, "name: OrderSaga", "name: OrderFlow", 1)
	if err := os.WriteFile(filepath.Join(dir, "order-v2.yaml"), []byte(v2), 0o600); err != nil {
		t.Fatal(err)
	}
	routes := strings.Replace(string(order.BridgeYAML()), `    start:
      workflow: OrderSaga
      instanceId: '"order-" + event.data.orderId'`, `    start:
      workflow: OrderFlow
      version: 2
      instanceId: '"order-" + event.data.orderId'`, 1)
	path := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(path, []byte(routes+"\nsagas: [\"*.yaml\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// bridge.yaml itself matches *.yaml: a file that is not a saga
	// definition must be reported, so name the definitions precisely.
	if err := os.WriteFile(path, []byte(routes+"\nsagas: [order-v2.yaml]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	kit.configure(cfg)
	cfg.Engine.Embedded.DBPath = filepath.Join(dir, "wf.db")
	s := startStack(t, kit, cfg, stackOptions{participants: true})
	publishOrder(t, s, "evt-yaml-1", simulated.Order{OrderID: "yaml-1", Amount: 3})
	publishOrder(t, s, "evt-yaml-2", simulated.Order{OrderID: "yaml-2", Amount: 4, FailPayment: true})
	testkit.WaitUntil(t, time.Minute, "two outcomes", func() bool { return s.watcher.Count() == 2 })
	out := s.watcher.Outcomes()
	if got := out["order-yaml-1"]; len(got) != 1 || got[0].Outcome.Status != topics.StatusCompleted || got[0].Outcome.Saga != "OrderFlow" {
		t.Fatalf("yaml-1: %+v", got)
	}
	if st, err := s.bridge.Engine().Get(t.Context(), "order-yaml-1"); err != nil || st.Workflow != "OrderFlow" {
		t.Fatalf("yaml-1 runs as workflow %q (%v), want OrderFlow", st.Workflow, err)
	}
	if got := out["order-yaml-2"]; len(got) != 1 || got[0].Outcome.Status != topics.StatusCompensated ||
		strings.Join(got[0].Outcome.Compensated, ",") != "reserve-inventory" {
		t.Fatalf("yaml-2: %+v", got)
	}
}

// TestDeclarativeSagaNamedLikeAGoWorkflow: Go workflows and declarative
// sagas share one name space; a saga file that declares OrderSaga beside
// the Go OrderSaga is refused when the config is checked, and a route may
// pin a version only of a declarative saga, and only one that is loaded.
func TestDeclarativeSagaNamedLikeAGoWorkflow(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "order.yaml"), order.YAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "bridge.yaml")
	cfg, err := config.Parse(path, append(order.BridgeYAML(), "\nsagas: [order.yaml]\n"...))
	if err != nil {
		t.Fatal(err)
	}
	err = bridge.Validate(cfg, bridge.Options{Sagas: orderSagas(t)})
	if err == nil || !strings.Contains(err.Error(), "OrderSaga is declared in a saga file and is also a Go workflow") {
		t.Fatalf("clash: %v", err)
	}

	flow := strings.Replace(string(order.YAML()), "name: OrderSaga", "name: OrderFlow", 1)
	if err := os.WriteFile(filepath.Join(dir, "order.yaml"), []byte(flow), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ start, want string }{
		{"workflow: OrderFlow\n      version: 3", `saga "OrderFlow" has no version 3 (loaded: [1])`},
		{"workflow: OrderSaga\n      version: 1", `workflow "OrderSaga" is a Go workflow; only declarative sagas have versions`},
		{"workflow: OrderFlow\n      version: 1", ""},
	} {
		doc := strings.Replace(string(order.BridgeYAML()), "workflow: OrderSaga", c.start, 1) + "\nsagas: [order.yaml]\n"
		cfg, err := config.Parse(path, []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		err = bridge.Validate(cfg, bridge.Options{Sagas: orderSagas(t)})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.start, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want %q", c.start, err, c.want)
		}
	}
}
