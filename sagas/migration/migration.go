// Package migration is how a saga takes over from a legacy choreography:
// the assignment that says whether an instance is driven by the saga
// (active) or only follows the legacy flow (shadow), what a shadow
// instance observes, and the comparison (Shadow) that turns the legacy
// flow's events into a would-be outcome and its divergences.
//
// The assignment travels in the instance's start envelope (sagas.Start),
// so the engine records it in the history: a restart, a replay or a
// change of the canary percentage never moves an instance from one mode
// to the other.
package migration

import (
	"time"

	"github.com/sagabridge/sagabridge/topics"
)

// Assignment is how the bridge decided to run one instance of a saga under
// migration.
type Assignment struct {
	// Mode is topics.ModeShadow (follow the legacy flow, send nothing) or
	// topics.ModeActive (drive the participants).
	Mode string `json:"mode"`
	// Stage, Percent and Bucket record why: the saga's configured mode
	// (shadow, canary, active) and canary share at start, and the
	// instance's bucket 0..99 (driven when Bucket < Percent).
	Stage   string `json:"stage"`
	Percent int    `json:"percent"`
	Bucket  int    `json:"bucket"`
	// Observe says how a shadow instance recognises the legacy flow's
	// steps. It is pinned with the assignment so that a config change
	// cannot change what a running instance expects.
	Observe *Observe `json:"observe,omitempty"`
	// ShadowOutcomes and Divergences are the topics a shadow instance
	// publishes to; empty means topics.ShadowOutcomes / Divergences.
	ShadowOutcomes string `json:"shadowOutcomes,omitempty"`
	Divergences    string `json:"divergences,omitempty"`
}

// Outcome is what the instance's outcome says about its migration.
func (a *Assignment) Outcome() *topics.Migration {
	return &topics.Migration{Mode: a.Mode, Stage: a.Stage, Percent: a.Percent, Bucket: a.Bucket}
}

// Observe maps the saga's steps to the legacy flow's events.
type Observe struct {
	// Event is the external event name the observation routes raise; its
	// payload is an Observation.
	Event string `json:"event"`
	// Timeout is how long the legacy flow may take for one step (or one
	// compensation) before it counts as stuck (or the compensation as
	// missing). Zero uses the step's Timeout × MaxAttempts: the time the
	// saga itself would give the step.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Steps maps a step name to the legacy event types that show it.
	Steps map[string]LegacyStep `json:"steps"`
}

// LegacyStep lists the legacy event types that show a step succeeded,
// failed, or was undone.
type LegacyStep struct {
	Done   []string `json:"done,omitempty" yaml:"done"`
	Failed []string `json:"failed,omitempty" yaml:"failed"`
	Undone []string `json:"undone,omitempty" yaml:"undone"`
}

// Observation is the payload of an observation event: one legacy event,
// raised on the instance by a route such as
//
//	raise:
//	  instanceId: ...
//	  eventName: legacy
//	  payload: '{"type": event.type, "id": event.id, "time": event.?time.orValue("")}'
//
// Time is the legacy event's own time: events of several topics reach the
// saga in no particular order, so order is judged on it. Without it, on
// arrival.
type Observation struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	Time string `json:"time,omitempty"` // RFC 3339
}
