package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateReportsEveryProblemWithFileAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	bad := `broker:
  kind: nats
  colour: blue
routes:
  - name: order-placed
    topics: [orders.placed]
    match: event.type == "order.placed" && 10 + "x" == 1
    start:
      workflow: OrderSagaV9
      instanceId: '"order-" + event.data.orderId'
  - name: order-placed
    topics: [orders.placed]
    raise: {instanceId: event.subject, eventName: approval}
`
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	root := newRoot(mustOwnSagas())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"validate", "-c", path})
	err := root.Execute()
	var ee exitError
	if !errors.As(err, &ee) || ee.code != exitUsage {
		t.Fatalf("want exit %d, got %v", exitUsage, err)
	}
	for _, want := range []string{
		path + `:3: unknown key "colour"`,
		path + `:11: route name "order-placed" is also used by route 1`,
		path + `:7: route "order-placed": match:`,
		path + `:9: route "order-placed": workflow "OrderSagaV9" is not registered`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}

	root = newRoot(mustOwnSagas())
	root.SetOut(&out)
	root.SetArgs([]string{"validate", "-c", "../../sagas/order/bridge.yaml"})
	if err := root.Execute(); err != nil {
		t.Fatalf("dev.yaml: %v", err)
	}
	if !strings.Contains(out.String(), "ok, 6 routes") {
		t.Fatalf("output %q", out.String())
	}
}

// TestValidateReportsAccessViolations: a route the access block does not
// allow fails `sagabridge validate` at the route's line.
func TestValidateReportsAccessViolations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	cfg := `routes:
  - name: order-placed
    topics: [orders.placed]
    start: {workflow: OrderSaga, instanceId: '"order-" + event.data.orderId'}
  - name: order-cancelled
    topics: [orders.cancelled]
    terminate: {instanceId: '"order-" + event.data.orderId'}
access:
  workflows:
    OrderSaga:
      start: {routes: [order-placed]}
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	root := newRoot(mustOwnSagas())
	root.SetOut(&bytes.Buffer{})
	root.SetArgs([]string{"validate", "-c", path})
	err := root.Execute()
	want := path + `:7: route "order-cancelled": access: no workflow allows terminate from route "order-cancelled" on topic "orders.cancelled"`
	var ee exitError
	if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(err.Error(), want) {
		t.Fatalf("want exit %d with %q, got %v", exitUsage, want, err)
	}
}
