package bridge

import (
	"context"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sagabridge/sagabridge/bridge/envelope"
	"github.com/sagabridge/sagabridge/bridge/tracing"
)

// Span attribute keys. Messaging keys follow the OpenTelemetry semantic
// conventions; the rest are sagabridge's own.
const (
	attrDestination = attribute.Key("messaging.destination.name")
	attrMessageID   = attribute.Key("messaging.message.id")
	attrEventID     = attribute.Key("cloudevents.event_id")
	attrEventType   = attribute.Key("cloudevents.event_type")
	attrRoute       = attribute.Key("sagabridge.route")
	attrAction      = attribute.Key("sagabridge.action")
	attrInstanceID  = attribute.Key("sagabridge.instance_id")
	attrWorkflow    = attribute.Key("sagabridge.workflow")
	attrDLQKind     = attribute.Key("sagabridge.dlq.kind")
)

const tracerName = "github.com/sagabridge/sagabridge/bridge"

// tracer makes the worker's spans. Off (the default), it is a no-op and
// changes nothing on the wire.
type tracer struct {
	on   bool
	t    trace.Tracer
	prop propagation.TextMapPropagator
	// sagaWorkflows are the workflows run by the saga runtime, which reads
	// a trace context in its start envelope (sagas.Start).
	// Other workflows get their input untouched.
	sagaWorkflows map[string]bool
}

func newTracer(tp trace.TracerProvider, sagaWorkflows map[string]bool) tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	_, off := tp.(noop.TracerProvider)
	return tracer{on: !off, t: tp.Tracer(tracerName), prop: tracing.Propagator(), sagaWorkflows: sagaWorkflows}
}

// carrier reads the trace context of an incoming message: the traceparent
// and tracestate headers, else the CloudEvent's distributed-tracing
// extension (binary ce_/ce- headers or the structured event's attribute).
type carrier struct {
	headers map[string]string
	ev      *envelope.Event
}

func (c carrier) Get(key string) string {
	if v := header(c.headers, key); v != "" {
		return v
	}
	if c.ev != nil && key == "traceparent" && c.ev.TraceParent != "" {
		return c.ev.TraceParent
	}
	if v := header(c.headers, "ce_"+key); v != "" {
		return v
	}
	if v := header(c.headers, "ce-"+key); v != "" {
		return v
	}
	if c.ev == nil {
		return ""
	}
	s, _ := c.ev.Extensions[key].(string)
	return s
}

func (c carrier) Set(string, string) {}
func (c carrier) Keys() []string     { return []string{"traceparent", "tracestate"} }

func header(h map[string]string, key string) string {
	if v, ok := h[key]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// startHandle opens the span of one message's decoding and routing, as a
// child of the message's trace context. It starts at began, before the
// decoding that found a structured event's traceparent.
func (t tracer) startHandle(ctx context.Context, topic string, msg *message.Message, ev *envelope.Event, began time.Time) (context.Context, trace.Span) {
	if !t.on {
		return ctx, noop.Span{}
	}
	ctx = t.prop.Extract(ctx, carrier{headers: msg.Metadata, ev: ev})
	attrs := []attribute.KeyValue{attrDestination.String(topic), attrMessageID.String(msg.UUID)}
	if ev != nil {
		attrs = append(attrs, attrEventID.String(ev.ID), attrEventType.String(ev.Type))
	}
	return t.t.Start(ctx, "process "+topic, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithTimestamp(began), trace.WithAttributes(attrs...))
}

// endSpan records how a span's work ended; an error nacked the message.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// deadLettered marks the handling span: the message went to the DLQ.
func deadLettered(span trace.Span, kind, reason string) {
	if span == nil {
		return
	}
	span.SetAttributes(attrDLQKind.String(kind))
	span.SetStatus(codes.Error, "dead-lettered ("+kind+"): "+reason)
}

// startEngine opens the span of one engine call for a route's decision.
func (t tracer) startEngine(ctx context.Context, parent trace.Span, route, action, instanceID, workflow string) (context.Context, trace.Span) {
	if !t.on {
		return ctx, noop.Span{}
	}
	attrs := []attribute.KeyValue{attrRoute.String(route), attrAction.String(action), attrInstanceID.String(instanceID)}
	if parent != nil {
		parent.SetAttributes(attrs...)
	}
	if workflow != "" {
		attrs = append(attrs, attrWorkflow.String(workflow))
	}
	return t.t.Start(ctx, "engine "+action, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// traceContext is the W3C trace context of ctx for a saga's start, so the
// saga's commands, progress and outcome carry the trace on; empty when
// tracing is off.
func (t tracer) traceContext(ctx context.Context) (traceParent, traceState string) {
	if !t.on {
		return "", ""
	}
	m := propagation.MapCarrier{}
	t.prop.Inject(ctx, m)
	return m["traceparent"], m["tracestate"]
}

// startPublish opens the span of an activity's publish, as a child of the
// trace context the event carries, and returns the traceparent to send on.
func (t tracer) startPublish(ctx context.Context, topic, key, traceParent, id, typ string) (context.Context, trace.Span, string) {
	if !t.on || traceParent == "" {
		return ctx, noop.Span{}, traceParent
	}
	ctx = t.prop.Extract(ctx, propagation.MapCarrier{"traceparent": traceParent})
	ctx, span := t.t.Start(ctx, "publish "+topic, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attrDestination.String(topic), attrEventID.String(id), attrEventType.String(typ), attrInstanceID.String(key)))
	m := propagation.MapCarrier{}
	t.prop.Inject(ctx, m)
	if tp := m["traceparent"]; tp != "" {
		traceParent = tp
	}
	return ctx, span, traceParent
}
