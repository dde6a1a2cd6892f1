package bridge_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/devenv"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics"
)

// TestDeclarativeSagaFromConfig: a saga definition file named in
// bridge.yaml's `sagas` runs without any Go code, beside the built-in ones;
// the route pins the version it starts.
func TestDeclarativeSagaFromConfig(t *testing.T) {
	kit := natsKit(t)
	dir := t.TempDir()
	v2 := strings.Replace(string(order.YAML()), "version: 1", "version: 2", 1)
	if err := os.WriteFile(filepath.Join(dir, "order-v2.yaml"), []byte(v2), 0o600); err != nil {
		t.Fatal(err)
	}
	routes := strings.Replace(string(devenv.ConfigYAML()), `    start:
      workflow: OrderSaga
      instanceId: '"order-" + event.data.orderId'`, `    start:
      workflow: DeclarativeSaga-fm
      instanceId: '"order-" + event.data.orderId'
      input: '{"saga": "OrderSaga", "version": 2, "input": event.data}'`, 1)
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
	waitFor(t, time.Minute, "two outcomes", func() bool { return s.watcher.Count() == 2 })
	out := s.watcher.Outcomes()
	if got := out["order-yaml-1"]; len(got) != 1 || got[0].Outcome.Status != topics.StatusCompleted {
		t.Fatalf("yaml-1: %+v", got)
	}
	if got := out["order-yaml-2"]; len(got) != 1 || got[0].Outcome.Status != topics.StatusCompensated ||
		strings.Join(got[0].Outcome.Compensated, ",") != "reserve-inventory" {
		t.Fatalf("yaml-2: %+v", got)
	}
}
