// Package tracing builds the OpenTelemetry tracer provider of the worker
// from the standard OTEL_* environment variables. Tracing is off unless
// the environment asks for it; off, the provider is a no-op and nothing is
// exported or added to messages.
//
// The rule (Settings.Enabled):
//
//   - OTEL_SDK_DISABLED=true turns tracing off, whatever else is set.
//   - OTEL_TRACES_EXPORTER=otlp turns it on; =none turns it off; any other
//     exporter is an error (only OTLP is built in).
//   - With OTEL_TRACES_EXPORTER unset, tracing is on when an OTLP endpoint
//     is set: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT.
//
// The protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else
// OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf (the specification's
// default): grpc or http/protobuf. Everything else (endpoint, headers,
// timeout, TLS, OTEL_TRACES_SAMPLER[_ARG], OTEL_BSP_*, OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES) is read by the OpenTelemetry SDK itself.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Protocols of the OTLP exporter.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// DefaultServiceName names the service when OTEL_SERVICE_NAME does not.
const DefaultServiceName = "sagabridge"

// Settings is what the environment says about tracing.
type Settings struct {
	Enabled  bool
	Protocol string
}

// FromEnv reads the settings with getenv (os.Getenv in the worker). It
// fails on values it cannot honour rather than silently not tracing.
func FromEnv(getenv func(string) string) (Settings, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	var s Settings
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return s, nil
	}
	switch exp := strings.ToLower(get("OTEL_TRACES_EXPORTER")); exp {
	case "":
		s.Enabled = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || get("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
	case "otlp":
		s.Enabled = true
	case "none":
		return s, nil
	default:
		return s, fmt.Errorf("tracing: OTEL_TRACES_EXPORTER=%q: only otlp and none are supported", exp)
	}
	if !s.Enabled {
		return Settings{}, nil
	}
	s.Protocol = get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if s.Protocol == "" {
		s.Protocol = get("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch s.Protocol {
	case "":
		s.Protocol = ProtocolHTTP
	case ProtocolGRPC, ProtocolHTTP:
	default:
		return Settings{}, fmt.Errorf("tracing: OTLP protocol %q: only %s and %s are supported", s.Protocol, ProtocolGRPC, ProtocolHTTP)
	}
	return s, nil
}

// Shutdown flushes and stops a provider.
type Shutdown func(ctx context.Context) error

// Start builds the tracer provider the settings ask for: a no-op when
// tracing is off, else an SDK provider batching spans to an OTLP exporter.
// The exporter connects lazily, so an unreachable collector costs dropped
// spans, never a failed start. Call the Shutdown on exit to flush.
func Start(ctx context.Context, s Settings) (trace.TracerProvider, Shutdown, error) {
	if !s.Enabled {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch s.Protocol {
	case ProtocolGRPC:
		exp, err = otlptracegrpc.New(ctx)
	case ProtocolHTTP, "":
		exp, err = otlptracehttp.New(ctx)
	default:
		err = fmt.Errorf("protocol %q is not supported", s.Protocol)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: otlp exporter: %w", err)
	}
	// The default name goes first so that OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES, read by WithFromEnv, override it.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", DefaultServiceName)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, nil, errors.Join(fmt.Errorf("tracing: resource: %w", err), exp.Shutdown(ctx))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}

// Propagator reads and writes W3C trace context (traceparent, tracestate).
// The worker passes it explicitly instead of installing it globally.
func Propagator() propagation.TextMapPropagator { return propagation.TraceContext{} }
