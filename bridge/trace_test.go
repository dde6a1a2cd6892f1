package bridge_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics"
)

// TestTraceFollowsTheSaga: an order event carrying a W3C traceparent is
// handled in a span of that trace, the engine start is its child, and the
// saga's commands and outcome carry the same trace on, each published in
// a span under the start. A bad event's span records the dead letter.
func TestTraceFollowsTheSaga(t *testing.T) {
	kit := natsKit(t)
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	cfg := devConfig(t, kit, t.TempDir())
	s := startStack(t, kit, cfg, stackOptions{participants: true, tracer: tp})
	outcomes, err := s.client.Subscriber().Subscribe(t.Context(), cfg.Outcomes.Topic)
	if err != nil {
		t.Fatal(err)
	}
	commands, err := s.client.Subscriber().Subscribe(t.Context(), order.InventoryCommands)
	if err != nil {
		t.Fatal(err)
	}

	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		spanID  = "00f067aa0ba902b7"
	)
	msg, err := simulated.OrderMessage("evt-traced", simulated.Order{OrderID: "traced", Amount: 5})
	if err != nil {
		t.Fatal(err)
	}
	msg.Metadata.Set("traceparent", "00-"+traceID+"-"+spanID+"-01")
	if err := s.client.Publisher().Publish("orders.placed", msg); err != nil {
		t.Fatal(err)
	}
	bad := message.NewMessage("bad-traced", []byte(`{"specversion":"1.0","id":"x","type":`))
	bad.Metadata.Set("traceparent", "00-"+strings.Repeat("ab", 16)+"-"+spanID+"-01")
	if err := s.client.Publisher().Publish("orders.placed", bad); err != nil {
		t.Fatal(err)
	}

	cmd := receive(t, commands, func(m *message.Message) bool { return strings.HasPrefix(m.UUID, "order-traced/") })
	if got := traceOf(t, cmd.Metadata.Get("traceparent")); got != traceID {
		t.Errorf("command traceparent %q: trace %s, want %s", cmd.Metadata.Get("traceparent"), got, traceID)
	}
	out := receive(t, outcomes, func(m *message.Message) bool { return strings.HasPrefix(m.UUID, "order-traced/") })
	var ev topics.CloudEvent
	if err := json.Unmarshal(out.Payload, &ev); err != nil {
		t.Fatal(err)
	}
	var oc topics.Outcome
	if err := json.Unmarshal(ev.Data, &oc); err != nil {
		t.Fatal(err)
	}
	if oc.Status != topics.StatusCompleted {
		t.Errorf("outcome %+v", oc)
	}
	header := out.Metadata.Get("traceparent")
	for what, tp := range map[string]string{"header": header, "cloudevent": ev.TraceParent, "outcome data": oc.TraceParent} {
		if got := traceOf(t, tp); got != traceID {
			t.Errorf("outcome %s traceparent %q: trace %s, want %s", what, tp, got, traceID)
		}
	}
	if ev.TraceParent != header {
		t.Errorf("cloudevent traceparent %q, header %q", ev.TraceParent, header)
	}

	var process, start, publish, badSpan tracetest.SpanStub
	testkit.WaitUntil(t, 10*time.Second, "the spans", func() bool {
		for _, sp := range spans.GetSpans() {
			switch {
			case sp.Name == "process orders.placed" && attr(sp, "cloudevents.event_id") == "evt-traced":
				process = sp
			case sp.Name == "engine start" && attr(sp, "sagabridge.instance_id") == "order-traced":
				start = sp
			case sp.Name == "publish "+cfg.Outcomes.Topic && attr(sp, "cloudevents.event_id") == out.UUID:
				publish = sp
			case sp.Name == "process orders.placed" && attr(sp, "messaging.message.id") == "bad-traced":
				badSpan = sp
			}
		}
		return process.Name != "" && start.Name != "" && publish.Name != "" && badSpan.Name != ""
	})
	if process.SpanContext.TraceID().String() != traceID || process.Parent.SpanID().String() != spanID || !process.Parent.IsRemote() {
		t.Errorf("process span: trace %s parent %s, want trace %s parent %s", process.SpanContext.TraceID(), process.Parent.SpanID(), traceID, spanID)
	}
	for k, want := range map[string]string{
		"messaging.destination.name": "orders.placed", "cloudevents.event_type": "order.placed",
		"sagabridge.route": "order-placed", "sagabridge.action": "start", "sagabridge.instance_id": "order-traced",
	} {
		if got := attr(process, k); got != want {
			t.Errorf("process span %s = %q, want %q", k, got, want)
		}
	}
	if process.SpanKind != trace.SpanKindConsumer || process.Status.Code == codes.Error {
		t.Errorf("process span kind %v status %+v", process.SpanKind, process.Status)
	}
	if start.Parent.SpanID() != process.SpanContext.SpanID() || start.SpanContext.TraceID() != process.SpanContext.TraceID() {
		t.Errorf("engine span's parent %s, want the process span %s", start.Parent.SpanID(), process.SpanContext.SpanID())
	}
	if attr(start, "sagabridge.workflow") != "OrderSaga" {
		t.Errorf("engine span workflow %q", attr(start, "sagabridge.workflow"))
	}
	// The saga carries the engine span's context: its outcome's publish is
	// that span's child, and the message carries the publish span on.
	if publish.Parent.SpanID() != start.SpanContext.SpanID() || publish.SpanContext.TraceID().String() != traceID {
		t.Errorf("publish span parent %s trace %s, want parent %s", publish.Parent.SpanID(), publish.SpanContext.TraceID(), start.SpanContext.SpanID())
	}
	if want := "00-" + traceID + "-" + publish.SpanContext.SpanID().String() + "-01"; header != want {
		t.Errorf("outcome traceparent %q, want the publish span's %q", header, want)
	}
	if oc.TraceParent != "00-"+traceID+"-"+start.SpanContext.SpanID().String()+"-01" {
		t.Errorf("outcome data traceparent %q, want the engine start span's", oc.TraceParent)
	}
	if badSpan.Status.Code != codes.Error || attr(badSpan, "sagabridge.dlq.kind") != "decode" ||
		badSpan.SpanContext.TraceID().String() != strings.Repeat("ab", 16) {
		t.Errorf("bad event's span: status %+v attrs %v trace %s", badSpan.Status, badSpan.Attributes, badSpan.SpanContext.TraceID())
	}
}

func receive(t *testing.T, ch <-chan *message.Message, want func(*message.Message) bool) *message.Message {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case m := <-ch:
			m.Ack()
			if want(m) {
				return m
			}
		case <-deadline:
			t.Fatal("timed out waiting for a message")
		}
	}
}

// traceOf is the trace ID of a traceparent, "" when it is malformed.
func traceOf(t *testing.T, traceParent string) string {
	t.Helper()
	parts := strings.Split(traceParent, "-")
	if len(parts) != 4 || len(parts[1]) != 32 {
		return ""
	}
	return parts[1]
}

func attr(sp tracetest.SpanStub, key string) string {
	for _, kv := range sp.Attributes {
		if kv.Key == attribute.Key(key) {
			return kv.Value.Emit()
		}
	}
	return ""
}
