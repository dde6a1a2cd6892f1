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

// TestTracedInput: a saga started with a trace context runs on its own
// input and stamps the traceparent on every event it and its child send
// and on its outcome; a saga started without one sends none. The wrapper
// of releases before the start envelope is read the same.
func TestTracedInput(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	k := newKit(t, kitOptions{workflows: map[string]workflow.Workflow{"ParentSaga": ParentSaga, "ShippingSaga": ShippingSaga}})
	in, err := json.Marshal(plan{})
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := sagas.Start{TraceParent: tp, TraceState: "vendor=1", Input: in}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	k.StartRaw("ParentSaga", "p-traced", wrapped)
	k.StartRaw("ParentSaga", "p-traced-legacy", legacyTraced(tp, "vendor=1", in))
	k.Start("ParentSaga", "p-plain", plan{})

	for _, id := range []string{"p-traced", "p-traced-legacy"} {
		out := k.Outcome(id)
		if out.Status != "completed" || out.TraceParent != tp {
			t.Fatalf("%s: outcome %+v", id, out)
		}
		if child := k.Outcome(id + ":ship:1"); child.TraceParent != tp {
			t.Errorf("%s: child outcome traceparent %q", id, child.TraceParent)
		}
	}
	if plain := k.Outcome("p-plain"); plain.Status != "completed" || plain.TraceParent != "" {
		t.Errorf("untraced outcome %+v", plain)
	}
	var traced int
	for _, p := range k.Events() {
		ev := p.Event
		switch {
		case strings.HasPrefix(ev.Subject, "p-traced"):
			traced++
			if ev.TraceParent != tp {
				t.Errorf("%s %s on %s: traceparent %q", ev.Type, ev.ID, p.Topic, ev.TraceParent)
			}
		case ev.TraceParent != "":
			t.Errorf("untraced %s %s carries %q", ev.Type, ev.ID, ev.TraceParent)
		}
	}
	if traced == 0 {
		t.Error("no event of the traced saga")
	}
}

// TestTracedDeclarativeInput: a declarative saga's workflow reads the
// trace context and its pinned definition from the start envelope, or from
// the nested wrappers of earlier releases, and runs the same saga.
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
	st, err := defs.Start("OrderSaga", 0, raw)
	if err != nil {
		t.Fatal(err)
	}
	plainIn, err := st.Encode()
	if err != nil {
		t.Fatal(err)
	}
	st.TraceParent = tp
	tracedIn, err := st.Encode()
	if err != nil {
		t.Fatal(err)
	}
	k.StartRaw("OrderSaga", "yaml-traced", tracedIn)
	k.StartRaw("OrderSaga", "yaml-plain", plainIn)
	k.StartRaw("OrderSaga", "yaml-traced-legacy", legacyTraced(tp, "", legacyPinned(st.Version, st.Digest, raw)))
	traced, plain, legacy := k.Outcome("yaml-traced"), k.Outcome("yaml-plain"), k.Outcome("yaml-traced-legacy")
	if traced.Status != topics.StatusCompleted || traced.TraceParent != tp || plain.TraceParent != "" {
		t.Fatalf("outcomes %+v / %+v", traced, plain)
	}
	if legacy.Status != topics.StatusCompleted || legacy.TraceParent != tp {
		t.Fatalf("outcome of the earlier release's input %+v", legacy)
	}
	eq(t, "commands", orderCommands(k, "yaml-traced"), orderCommands(k, "yaml-plain"))
	eq(t, "commands of the earlier release's input", orderCommands(k, "yaml-traced-legacy"), orderCommands(k, "yaml-plain"))
}
