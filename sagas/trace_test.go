package sagas_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics"
)

// TestTracedInput: a saga started with a traced input runs on its own
// input and stamps the traceparent on every event it and its child send
// and on its outcome; a saga started without one sends none.
func TestTracedInput(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	k := newKit(t, kitOptions{workflows: map[string]workflow.Workflow{"ParentSaga": ParentSaga, "ShippingSaga": ShippingSaga}})
	in, err := json.Marshal(plan{})
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := sagas.WrapTraced(in, tp, "vendor=1")
	if err != nil {
		t.Fatal(err)
	}
	k.startRaw("ParentSaga", "p-traced", wrapped)
	k.startSaga("ParentSaga", "p-plain", plan{})

	out := k.outcome("p-traced")
	if out.Status != "completed" || out.TraceParent != tp {
		t.Fatalf("outcome %+v", out)
	}
	if child := k.outcome("p-traced:ship:1"); child.TraceParent != tp {
		t.Errorf("child outcome traceparent %q", child.TraceParent)
	}
	if plain := k.outcome("p-plain"); plain.Status != "completed" || plain.TraceParent != "" {
		t.Errorf("untraced outcome %+v", plain)
	}
	k.pub.mu.Lock()
	defer k.pub.mu.Unlock()
	var traced int
	for _, e := range k.pub.events {
		switch {
		case strings.HasPrefix(e.ev.Subject, "p-traced"):
			traced++
			if e.ev.TraceParent != tp {
				t.Errorf("%s %s on %s: traceparent %q", e.ev.Type, e.ev.ID, e.topic, e.ev.TraceParent)
			}
		case e.ev.TraceParent != "":
			t.Errorf("untraced %s %s carries %q", e.ev.Type, e.ev.ID, e.ev.TraceParent)
		}
	}
	if traced == 0 {
		t.Error("no event of the traced saga")
	}
}

// TestTracedDeclarativeInput: a declarative saga's workflow unwraps a traced
// input before reading its pinned definition, and runs the same saga.
func TestTracedDeclarativeInput(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	defs, err := order.Declarative()
	if err != nil {
		t.Fatal(err)
	}
	k := newKit(t, kitOptions{workflows: defs.Workflows()})
	answerOrders(k)
	raw, err := json.Marshal(simulated.Order{OrderID: "t", Amount: 3})
	if err != nil {
		t.Fatal(err)
	}
	in, err := defs.StartInput("OrderSaga", 0, raw)
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := sagas.WrapTraced(in, tp, "")
	if err != nil {
		t.Fatal(err)
	}
	k.startRaw("OrderSaga", "yaml-traced", wrapped)
	k.startRaw("OrderSaga", "yaml-plain", in)
	traced, plain := k.outcome("yaml-traced"), k.outcome("yaml-plain")
	if traced.Status != topics.StatusCompleted || traced.TraceParent != tp || plain.TraceParent != "" {
		t.Fatalf("outcomes %+v / %+v", traced, plain)
	}
	eq(t, "commands", orderCommands(k, "yaml-traced"), orderCommands(k, "yaml-plain"))
}
