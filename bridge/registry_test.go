package bridge_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/sagas/registry"
	"github.com/sagabridge/sagabridge/topics"
)

// shipOnly is a Go saga of the test's own, registered as a user's main
// registers one: it only creates the shipment.
func shipOnly() sagas.Saga {
	s := order.Saga(time.Minute)
	return sagas.Saga{Name: "ShipOnly", Steps: s.Steps[2:]}
}

// reserveOnlyYAML is a declarative saga beside it: it only reserves stock,
// and releases nothing.
const reserveOnlyYAML = `name: ReserveOnly
version: 1
steps:
  - name: reserve-inventory
    command: {topic: inventory.commands, type: inventory.reserve, replyEvent: reserve-inventory.reply}
    timeout: 1m
`

// The routes that start them, beside the order demo's reply routes.
const registryRoutes = `
sagas: [reserve-only.yaml]
`

// TestRegisteredGoSagaBesideDeclarative runs a Go saga the test
// registers (not one the framework knows) and a declarative saga from the
// config through the bridge on an embedded NATS server, side by side, each
// started by its own route and answered by the simulated services.
func TestRegisteredGoSagaBesideDeclarative(t *testing.T) {
	kit := natsKit(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "reserve-only.yaml"), []byte(reserveOnlyYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(order.BridgeYAML()), "routes:\n", `routes:
  - name: ship-requested
    topics: [ship.requested]
    match: event.type == "order.placed"
    start:
      workflow: ShipOnly
      instanceId: '"order-" + event.data.orderId'
  - name: reserve-requested
    topics: [reserve.requested]
    match: event.type == "order.placed"
    start:
      workflow: ReserveOnly
      instanceId: '"order-" + event.data.orderId'
`, 1) + registryRoutes
	cfg, err := config.Parse(filepath.Join(dir, "bridge.yaml"), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	kit.configure(cfg)
	cfg.Engine.Embedded.DBPath = filepath.Join(dir, "workflows.db")

	// The order demo's saga (its routes are in the file) and the test's own.
	reg := orderSagas(t)
	if err := reg.RegisterSaga(shipOnly()); err != nil {
		t.Fatal(err)
	}
	if warnings, err := bridge.CheckConfig(cfg, bridge.Options{Sagas: reg}); err != nil || len(warnings) > 0 {
		t.Fatalf("check: %v %v", err, warnings)
	}
	s := startStack(t, kit, cfg, stackOptions{participants: true, sagas: reg})

	for _, o := range []struct{ topic, id string }{{"ship.requested", "go-1"}, {"reserve.requested", "yaml-1"}, {"ship.requested", "go-2"}} {
		if err := simulated.PublishOrder(s.client.Publisher(), o.topic, "evt-"+o.id, simulated.Order{OrderID: o.id, Amount: 3}); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitUntil(t, time.Minute, "three outcomes", func() bool { return s.watcher.Count() >= 3 })
	outcomes := s.watcher.Outcomes()
	for id, saga := range map[string]string{"order-go-1": "ShipOnly", "order-go-2": "ShipOnly", "order-yaml-1": "ReserveOnly"} {
		got := outcomes[id]
		if len(got) != 1 || got[0].Outcome.Status != topics.StatusCompleted || got[0].Outcome.Saga != saga {
			t.Errorf("%s: outcomes %+v, want one completed %s", id, got, saga)
			continue
		}
		if steps := got[0].Outcome.Steps; len(steps) != 1 {
			t.Errorf("%s: steps %+v", id, steps)
		}
	}
}

// TestRegistryNamesClash: a name registered twice fails where it is
// registered; a declarative saga with a registered Go saga's name stops
// the worker at startup, naming both.
func TestRegistryNamesClash(t *testing.T) {
	reg := orderSagas(t)
	if err := reg.RegisterSaga(shipOnly()); err != nil {
		t.Fatal(err)
	}
	err := reg.RegisterSaga(shipOnly())
	if !errors.Is(err, registry.ErrDuplicate) || err.Error() != `registry: workflow "ShipOnly": registered twice` {
		t.Errorf("second RegisterSaga: %v", err)
	}
	if err := reg.Register("ShipOnly", order.OrderSaga); !errors.Is(err, registry.ErrDuplicate) {
		t.Errorf("Register of a taken name: %v", err)
	}

	dir := t.TempDir()
	clash := strings.Replace(reserveOnlyYAML, "name: ReserveOnly", "name: ShipOnly", 1)
	if err := os.WriteFile(filepath.Join(dir, "reserve-only.yaml"), []byte(clash), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(filepath.Join(dir, "bridge.yaml"), append(order.BridgeYAML(), registryRoutes...))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Engine.Embedded.DBPath = filepath.Join(dir, "workflows.db")
	b, err := bridge.New(t.Context(), cfg, bridge.Options{Sagas: reg})
	if b != nil {
		t.Error("a bridge despite the clash")
	}
	want := "reserve-only.yaml:1: ShipOnly is declared in a saga file and is also a Go workflow the worker's main registered"
	if !errors.Is(err, bridge.ErrConfig) || !strings.Contains(err.Error(), want) || strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("New: %v, want ErrConfig with %q", err, want)
	}
}
