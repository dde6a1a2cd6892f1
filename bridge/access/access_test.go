package access_test

import (
	"strings"
	"testing"

	"github.com/sagabridge/sagabridge/bridge/access"
	"github.com/sagabridge/sagabridge/bridge/config"
)

var registered = map[string]bool{"OrderSaga": true, "TicketSaga": true}

const routes = `routes:
  - name: order-placed
    topics: [orders.placed]
    start: {workflow: OrderSaga, instanceId: x}
  - name: payment-replies
    topics: [payment.replies]
    raise: {instanceId: x, eventName: e}
  - name: order-cancelled
    topics: [orders.cancelled, legacy.cancels]
    terminate: {instanceId: x}
  - name: ticket-closed
    topics: [tickets.closed]
    terminate: {instanceId: x}
`

func load(t *testing.T, access string) (*access.Policy, error) {
	t.Helper()
	cfg, err := config.Parse("bridge.yaml", []byte(routes+access))
	if err != nil {
		return nil, err
	}
	return accessNew(cfg)
}

var accessNew = func(cfg *config.Config) (*access.Policy, error) { return access.New(cfg, registered) }

func TestNoAccessBlockAllowsEverything(t *testing.T) {
	p, err := load(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Enabled() || !p.Allowed("OrderSaga", config.ActionPurge, "anything", "any.topic") {
		t.Fatal("a config without an access block must keep every route working")
	}
}

const policy = `access:
  workflows:
    OrderSaga:
      start: {routes: [order-placed]}
      raise: {topics: [payment.replies]}
      terminate: {routes: [order-cancelled], topics: [orders.cancelled]}
    TicketSaga:
      terminate: {routes: [ticket-closed, order-cancelled]}
`

func TestPolicyAllowsOnlyWhatItGrants(t *testing.T) {
	p, err := load(t, policy)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		wf, op, route, topic string
		want                 bool
	}{
		{"OrderSaga", "start", "order-placed", "orders.placed", true},
		{"OrderSaga", "start", "payment-replies", "orders.placed", false},
		{"OrderSaga", "raise", "payment-replies", "payment.replies", true},
		{"OrderSaga", "raise", "any-route", "payment.replies", true}, // topics only: any route on it
		{"OrderSaga", "raise", "payment-replies", "orders.placed", false},
		{"OrderSaga", "terminate", "order-cancelled", "orders.cancelled", true},
		{"OrderSaga", "terminate", "order-cancelled", "legacy.cancels", false}, // both lists must hold
		{"OrderSaga", "terminate", "ticket-closed", "tickets.closed", false},
		{"OrderSaga", "purge", "order-cancelled", "orders.cancelled", false}, // not granted at all
		{"TicketSaga", "terminate", "ticket-closed", "tickets.closed", true},
		{"UnlistedSaga", "start", "order-placed", "orders.placed", false}, // default deny
	} {
		if got := p.Allowed(c.wf, c.op, c.route, c.topic); got != c.want {
			t.Errorf("%s %s by %s on %s: %v, want %v", c.op, c.wf, c.route, c.topic, got, c.want)
		}
	}
	if why := p.Denial("OrderSaga", "terminate", "ticket-closed", "tickets.closed"); !strings.Contains(why, "access.workflows.OrderSaga.terminate does not grant it") {
		t.Errorf("denial: %s", why)
	}
	if why := p.Denial("Other", "start", "r", "t"); !strings.Contains(why, "access.default is deny") {
		t.Errorf("denial of an unlisted workflow: %s", why)
	}
}

func TestDefaultAllowOpensUnlistedWorkflows(t *testing.T) {
	p, err := load(t, policy+"  default: allow\n")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Allowed("UnlistedSaga", "purge", "x", "y") || p.Allowed("OrderSaga", "purge", "order-cancelled", "orders.cancelled") {
		t.Fatal("default allow opens unlisted workflows only")
	}
}

// TestLoadRefusesRoutesThePolicyForbids: what can be decided at load is,
// with file:line, as `sagabridge validate` prints it.
func TestLoadRefusesRoutesThePolicyForbids(t *testing.T) {
	for _, c := range []struct {
		name, access string
		want         []string
	}{
		{"start not granted", `access:
  workflows:
    OrderSaga:
      raise: {topics: [payment.replies]}
      terminate: {routes: [order-cancelled]}
    TicketSaga:
      terminate: {routes: [ticket-closed]}
`, []string{`bridge.yaml:4: route "order-placed": access: route "order-placed" on topic "orders.placed" may not start workflow OrderSaga: access.workflows.OrderSaga.start does not grant it`}},
		{"terminate granted on one topic of two", `access:
  workflows:
    OrderSaga:
      start: {routes: [order-placed]}
      raise: {topics: [payment.replies]}
      terminate: {topics: [orders.cancelled]}
    TicketSaga:
      terminate: {routes: [ticket-closed]}
`, []string{`bridge.yaml:10: route "order-cancelled": access: no workflow allows terminate from route "order-cancelled" on topic "legacy.cancels"`}},
		{"unknown workflow, route and topic", `access:
  default: maybe
  workflows:
    OrderSagaV9:
      start: {routes: [order-placd], topics: [orders.placd]}
    OrderSaga:
      purge: {}
`, []string{
			`bridge.yaml:15: access default "maybe" is not deny or allow`,
			`bridge.yaml:18: access: workflow "OrderSagaV9": start: no route is named "order-placd"`,
			`bridge.yaml:18: access: workflow "OrderSagaV9": start: no route consumes topic "orders.placd"`,
			`bridge.yaml:20: access: workflow "OrderSaga": purge grant names no routes or topics`,
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.access)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
		})
	}
	// A workflow that is not registered is refused by New (config does
	// not know the registry).
	cfg, err := config.Parse("bridge.yaml", []byte(routes+policy+"    Nope:\n      start: {routes: [order-placed]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := access.New(cfg, registered); err == nil || !strings.Contains(err.Error(), `bridge.yaml:22: access: workflow "Nope" is not registered`) {
		t.Errorf("unregistered workflow: %v", err)
	}
}
