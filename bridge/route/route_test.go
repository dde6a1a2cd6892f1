package route_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/envelope"
	"github.com/sagabridge/sagabridge/bridge/route"
)

var registered = route.Workflows{"OrderSaga": nil}

func compile(t *testing.T, yaml string) (*route.Router, error) {
	t.Helper()
	cfg, err := config.Parse("routes.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return route.New(cfg, registered)
}

func TestCompileErrorsHaveFileAndLine(t *testing.T) {
	_, err := compile(t, `routes:
  - name: bad-match
    topics: [t]
    match: event.data.total + "x" == 1 && 1 + "a"
    start: {workflow: OrderSaga, instanceId: event.id}
  - name: not-bool
    topics: [t]
    match: '"yes"'
    start: {workflow: OrderSaga, instanceId: event.id}
  - name: unknown-workflow
    topics: [t]
    start:
      workflow: PaymentSaga
      instanceId: event.id
  - name: int-id
    topics: [t]
    start:
      workflow: OrderSaga
      instanceId: 1 + 2
`)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`routes.yaml:4: route "bad-match": match:`,
		`routes.yaml:8: route "not-bool": match: match must be a bool`,
		`routes.yaml:13: route "unknown-workflow": workflow "PaymentSaga" is not registered`,
		`routes.yaml:19: route "int-id": start.instanceId: start.instanceId must be a string`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

const table = `routes:
  - name: start
    topics: [orders]
    match: event.type == "order.placed" && event.data.total > 10
    start: {workflow: OrderSaga, instanceId: '"order-" + event.data.id'}
  - name: start-custom-input
    topics: [orders]
    match: event.type == "order.placed" && "X-Tenant" in headers && headers["X-Tenant"] == "acme"
    start:
      workflow: OrderSaga
      instanceId: '"acme-" + event.data.id'
      input: '{"id": event.data.id, "tenant": headers["X-Tenant"], "source": event.source}'
  - name: raise-literal
    topics: [replies]
    match: event.type == "paid"
    raise: {instanceId: event.subject, eventName: payment.reply}
  - name: raise-cel
    topics: [replies]
    match: event.type.startsWith("stock.")
    raise: {instanceId: event.subject, eventName: 'event.type + ".reply"', payload: '{"ok": event.data.ok}'}
  - name: control
    topics: [ops]
    terminate: {instanceId: event.data.id, reason: ops asked}
`

func TestDecisions(t *testing.T) {
	r, err := compile(t, table)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		topic   string
		body    string
		headers map[string]string
		want    []string // route:instance:event:input/payload
	}{
		{"start with raw input", "orders", ce("order.placed", "", `{"id":"7","total":20}`), nil,
			[]string{`start:order-7::{"id":"7","total":20}`}},
		{"match false", "orders", ce("order.placed", "", `{"id":"7","total":5}`), nil, nil},
		{"all matching routes fire, in file order", "orders", ce("order.placed", "", `{"id":"8","total":50}`),
			map[string]string{"X-Tenant": "acme"},
			[]string{`start:order-8::{"id":"8","total":50}`, `start-custom-input:acme-8::{"id":"8","source":"shop","tenant":"acme"}`}},
		{"literal event name, raw payload", "replies", ce("paid", "order-9", `{"amount":3}`), nil,
			[]string{`raise-literal:order-9:payment.reply:{"amount":3}`}},
		{"CEL event name and payload", "replies", ce("stock.reserved", "order-9", `{"ok":true}`), nil,
			[]string{`raise-cel:order-9:stock.reserved.reply:{"ok":true}`}},
		{"unrouted topic", "elsewhere", ce("paid", "x", `{}`), nil, nil},
		{"control without match", "ops", ce("anything", "", `{"id":"z"}`), nil, []string{`control:z::`}},
		{"binary mode", "replies", `{"ok":false}`, map[string]string{
			"ce_specversion": "1.0", "ce_id": "1", "ce_source": "s", "ce_type": "stock.released", "ce_subject": "order-3"},
			[]string{`raise-cel:order-3:stock.released.reply:{"ok":false}`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev, err := envelope.Decode([]byte(c.body), c.headers)
			if err != nil {
				t.Fatal(err)
			}
			ds, err := r.Route(c.topic, ev, c.headers)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range ds {
				data := string(d.Input)
				if d.Payload != nil {
					data = string(d.Payload)
				}
				got = append(got, d.Route.Name+":"+d.InstanceID+":"+d.EventName+":"+data)
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Fatalf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestFirstMatchMode(t *testing.T) {
	r, err := compile(t, "routing: {mode: first}\n"+table)
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := envelope.Decode([]byte(ce("order.placed", "", `{"id":"8","total":50}`)), nil)
	ds, err := r.Route("orders", ev, map[string]string{"X-Tenant": "acme"})
	if err != nil || len(ds) != 1 || ds[0].Route.Name != "start" {
		t.Fatalf("decisions %+v err %v", ds, err)
	}
}

func TestEvaluationErrors(t *testing.T) {
	r, err := compile(t, table)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, topic, body, want string }{
		{"missing field", "orders", ce("order.placed", "", `{"total":50}`), "no such key: id"},
		{"wrong type", "orders", ce("order.placed", "", `{"id":"1","total":"lots"}`), "route start: match"},
		{"empty instance ID", "replies", ce("paid", "", `{}`), "instanceId evaluated to an empty string"},
		{"instance ID too long", "replies", ce("paid", strings.Repeat("x", 300), `{}`), "limit 256"},
		{"illegal characters", "replies", ce("paid", "a/b", `{}`), "characters outside"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev, err := envelope.Decode([]byte(c.body), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Route(c.topic, ev, nil)
			if !errors.Is(err, route.ErrEval) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want ErrEval containing %q", err, c.want)
			}
		})
	}
}

func ce(typ, subject, data string) string {
	s := `{"specversion":"1.0","id":"e1","source":"shop","type":"` + typ + `"`
	if subject != "" {
		s += `,"subject":"` + subject + `"`
	}
	return s + `,"data":` + data + `}`
}

// TestEvalCostIsBounded: a match that would compare every item of a large
// event with every blocked one (2.25e8 steps) stops at limits.maxEvalCost
// with an evaluation error that names the limit; the same route routes a
// small event as usual, and a tighter evalTimeout stops it by time.
func TestEvalCostIsBounded(t *testing.T) {
	const routes = `routes:
  - name: screened
    topics: [t]
    match: event.data.items.exists(x, x in event.data.blocked)
    terminate: {instanceId: '"order-" + event.data.id', reason: blocked}
`
	event := func(n int) envelope.Event {
		items, blocked := make([]string, n), make([]string, n)
		for i := range items {
			items[i], blocked[i] = fmt.Sprint(i), fmt.Sprint(-i-1)
		}
		blocked[n-1] = items[n-1]
		b, err := json.Marshal(map[string]any{"specversion": "1.0", "id": "e", "source": "s", "type": "x",
			"data": map[string]any{"id": "1", "items": items, "blocked": blocked}})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := envelope.Decode(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	r, err := compile(t, routes)
	if err != nil {
		t.Fatal(err)
	}
	if decs, err := r.Route("t", event(20), nil); err != nil || len(decs) != 1 {
		t.Fatalf("small event: %v, %v", decs, err)
	}
	began := time.Now()
	_, err = r.Route("t", event(15000), nil)
	took := time.Since(began)
	t.Logf("large event stopped after %s: %v", took, err)
	if !errors.Is(err, route.ErrEval) || !strings.Contains(err.Error(), "limits.maxEvalCost 1000000") {
		t.Fatalf("large event: %v, want an evaluation error naming the cost limit", err)
	}

	cfg, err := config.Parse("routes.yaml", []byte(routes+"limits: {maxEvalCost: 100000000000, evalTimeout: 50ms}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err = route.New(cfg, registered)
	if err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	_, err = r.Route("t", event(15000), nil)
	t.Logf("with a 50ms timeout, stopped after %s: %v", time.Since(began), err)
	if !errors.Is(err, route.ErrEval) || !strings.Contains(err.Error(), "limits.evalTimeout 50ms") {
		t.Fatalf("large event, 50ms timeout: %v, want an evaluation error naming the timeout", err)
	}
}
