package admin

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sagabridge/sagabridge/bridge/dlq"
)

// Namespace prefixes every metric name.
const Namespace = "sagabridge"

// Metrics implements bridge.Metrics with Prometheus collectors registered on
// a registry of its own (never the global default one), so two bridges in
// one process, or a test, do not share counters.
type Metrics struct {
	reg *prometheus.Registry

	consumed        *prometheus.CounterVec
	routed          *prometheus.CounterVec
	unmatched       *prometheus.CounterVec
	duplicateStarts *prometheus.CounterVec
	parked          *prometheus.CounterVec
	droppedFinished *prometheus.CounterVec
	deadLettered    *prometheus.CounterVec
	engineErrors    *prometheus.CounterVec
	outcomes        *prometheus.CounterVec
	assigned        *prometheus.CounterVec
	divergences     *prometheus.CounterVec
	handlerSeconds  *prometheus.HistogramVec
	sagaSeconds     *prometheus.HistogramVec
	inFlight        prometheus.Gauge
}

// Histogram buckets, in seconds. A handler is one engine call or a few:
// milliseconds, up to the handler timeout. A saga waits for participants:
// tens of milliseconds up to an hour.
var (
	handlerBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	sagaBuckets    = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}
)

// MetricsOptions add to the registry.
type MetricsOptions struct {
	// Version, when set, is exported as sagabridge_build_info{version}.
	Version string
	// NoRuntime leaves out the Go runtime and process collectors.
	NoRuntime bool
}

// NewMetrics builds the collectors on a new registry.
func NewMetrics(opts MetricsOptions) *Metrics {
	reg := prometheus.NewRegistry()
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	m := &Metrics{
		reg: reg,
		consumed: counter("events_consumed_total",
			"Messages delivered to the bridge, redeliveries included.", "topic"),
		routed: counter("events_routed_total",
			"Route actions the engine accepted.", "route", "action"),
		unmatched: counter("events_unmatched_total",
			"Decoded events no route matched (acked: the topic carries events nobody routes).", "topic"),
		duplicateStarts: counter("duplicate_starts_total",
			"Starts ignored because the workflow instance already existed.", "route"),
		parked: counter("events_parked_total",
			"Raises on an instance that does not exist yet, handed back to the broker to retry.", "route"),
		droppedFinished: counter("events_dropped_finished_total",
			"Raises on a finished instance dropped by the route's onFinished policy.", "route"),
		deadLettered: counter("events_dead_lettered_total",
			"Messages stored on the dead-letter topic, by kind of failure.", "kind"),
		engineErrors: counter("engine_errors_total",
			"Workflow engine calls that failed, by operation.", "op"),
		outcomes: counter("saga_outcomes_total",
			"Saga outcomes published, by saga and status (completed, compensated, failed).", "saga", "status"),
		assigned: counter("migration_instances_total",
			"Instances of migrating sagas started, by saga and mode (shadow or active).", "saga", "mode"),
		divergences: counter("migration_divergences_total",
			"Differences between a shadow saga and the legacy flow it followed, by saga and kind.", "saga", "kind"),
		handlerSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "handler_duration_seconds",
			Help:    "Time to handle one message, by topic and result (ack or nack).",
			Buckets: handlerBuckets,
		}, []string{"topic", "result"}),
		sagaSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "saga_duration_seconds",
			Help:    "Time from a saga's start to its outcome, by saga and status.",
			Buckets: sagaBuckets,
		}, []string{"saga", "status"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "handlers_in_flight",
			Help: "Messages being handled now.",
		}),
	}
	reg.MustRegister(m.handlerSeconds, m.sagaSeconds, m.inFlight)
	// Every kind of dead letter exists from the start, so a rate() alert
	// sees the first one.
	for _, k := range dlq.Kinds {
		m.deadLettered.WithLabelValues(k)
	}
	if opts.Version != "" {
		info := prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "build_info",
			Help:        "Always 1; the version label says which build runs.",
			ConstLabels: prometheus.Labels{"version": opts.Version},
		})
		info.Set(1)
		reg.MustRegister(info)
	}
	if !opts.NoRuntime {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Registry is where the collectors live; register more on it if needed.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// EventConsumed implements bridge.Metrics.
func (m *Metrics) EventConsumed(topic string) { m.consumed.WithLabelValues(topic).Inc() }

// EventRouted implements bridge.Metrics.
func (m *Metrics) EventRouted(route, action string) { m.routed.WithLabelValues(route, action).Inc() }

// Unmatched implements bridge.Metrics.
func (m *Metrics) Unmatched(topic string) { m.unmatched.WithLabelValues(topic).Inc() }

// DuplicateStart implements bridge.Metrics.
func (m *Metrics) DuplicateStart(route string) { m.duplicateStarts.WithLabelValues(route).Inc() }

// Parked implements bridge.Metrics.
func (m *Metrics) Parked(route string) { m.parked.WithLabelValues(route).Inc() }

// DroppedFinished implements bridge.Metrics.
func (m *Metrics) DroppedFinished(route string) { m.droppedFinished.WithLabelValues(route).Inc() }

// DeadLettered implements bridge.Metrics.
func (m *Metrics) DeadLettered(kind string) { m.deadLettered.WithLabelValues(kind).Inc() }

// EngineError implements bridge.Metrics.
func (m *Metrics) EngineError(op string) { m.engineErrors.WithLabelValues(op).Inc() }

// HandlerDone implements bridge.Metrics.
func (m *Metrics) HandlerDone(topic, result string, d time.Duration) {
	m.handlerSeconds.WithLabelValues(topic, result).Observe(d.Seconds())
}

// InFlight implements bridge.Metrics.
func (m *Metrics) InFlight(delta int) { m.inFlight.Add(float64(delta)) }

// SagaOutcome implements bridge.Metrics.
// MigrationAssigned counts a new instance of a migrating saga.
func (m *Metrics) MigrationAssigned(saga, mode string) {
	m.assigned.WithLabelValues(saga, mode).Inc()
}

// Divergence counts one divergence a shadow saga reported.
func (m *Metrics) Divergence(saga, kind string) { m.divergences.WithLabelValues(saga, kind).Inc() }

func (m *Metrics) SagaOutcome(saga, status string, e2e time.Duration) {
	m.outcomes.WithLabelValues(saga, status).Inc()
	if e2e >= 0 {
		m.sagaSeconds.WithLabelValues(saga, status).Observe(e2e.Seconds())
	}
}

// InitSeries creates, at zero, the series whose label values are known
// when the worker starts: every metric is in the first scrape, and a
// rate() or increase() alert sees the first event.
func (m *Metrics) InitSeries(k KnownLabels) {
	for route, action := range k.Routes {
		m.routed.WithLabelValues(route, action)
		m.duplicateStarts.WithLabelValues(route)
		m.parked.WithLabelValues(route)
		m.droppedFinished.WithLabelValues(route)
	}
	for _, topic := range k.Topics {
		m.consumed.WithLabelValues(topic)
		m.unmatched.WithLabelValues(topic)
		for _, result := range []string{"ack", "nack"} {
			m.handlerSeconds.WithLabelValues(topic, result)
		}
	}
	for _, op := range k.EngineOps {
		m.engineErrors.WithLabelValues(op)
	}
	for _, saga := range k.Sagas {
		for _, status := range []string{"completed", "compensated", "failed"} {
			m.outcomes.WithLabelValues(saga, status)
			m.sagaSeconds.WithLabelValues(saga, status)
		}
	}
	for _, saga := range k.Migrating {
		for _, mode := range []string{"shadow", "active"} {
			m.assigned.WithLabelValues(saga, mode)
		}
		for _, kind := range k.DivergenceKinds {
			m.divergences.WithLabelValues(saga, kind)
		}
	}
}

// KnownLabels are the label values a worker knows when it starts.
type KnownLabels struct {
	// Routes maps each route to its action.
	Routes          map[string]string
	Topics          []string
	EngineOps       []string
	Sagas           []string
	Migrating       []string
	DivergenceKinds []string
}
