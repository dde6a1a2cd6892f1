package bridge

import "time"

// Metrics receives what the bridge does, one call per fact. bridge/admin
// implements it with Prometheus; the default discards everything.
type Metrics interface {
	// EventConsumed: a message arrived on topic.
	EventConsumed(topic string)
	// EventRouted: a route's action was accepted by the engine.
	EventRouted(route, action string)
	// Unmatched: a decoded event on topic matched no route (acked).
	Unmatched(topic string)
	// DuplicateStart: a start found the instance already there.
	DuplicateStart(route string)
	// Parked: a raise found no instance yet and will be retried.
	Parked(route string)
	// DroppedFinished: a raise on a finished instance was dropped by policy.
	DroppedFinished(route string)
	// DeadLettered: a message went to the dead-letter topic; kind is one of
	// the dlq.Kind* values.
	DeadLettered(kind string)
	// EngineError: an engine call failed (op is the action).
	EngineError(op string)
	// HandlerDone: one message was handled; result is "ack" or "nack".
	HandlerDone(topic, result string, d time.Duration)
	// InFlight: handlers running now changed by delta.
	InFlight(delta int)
	// SagaOutcome: a saga published its outcome; e2e is the time from the
	// workflow's start to its outcome.
	SagaOutcome(saga, status string, e2e time.Duration)
	// MigrationAssigned: an instance of a migrating saga started in
	// mode (shadow or active).
	MigrationAssigned(saga, mode string)
	// Divergence: a shadow saga found the legacy flow differing (kind is
	// one of the topics.Divergence* values).
	Divergence(saga, kind string)
}

// NopMetrics discards everything.
type NopMetrics struct{}

func (NopMetrics) EventConsumed(string)                      {}
func (NopMetrics) EventRouted(string, string)                {}
func (NopMetrics) Unmatched(string)                          {}
func (NopMetrics) DuplicateStart(string)                     {}
func (NopMetrics) Parked(string)                             {}
func (NopMetrics) DroppedFinished(string)                    {}
func (NopMetrics) DeadLettered(string)                       {}
func (NopMetrics) EngineError(string)                        {}
func (NopMetrics) HandlerDone(string, string, time.Duration) {}
func (NopMetrics) InFlight(int)                              {}
func (NopMetrics) SagaOutcome(string, string, time.Duration) {}
func (NopMetrics) MigrationAssigned(string, string)          {}
func (NopMetrics) Divergence(string, string)                 {}
