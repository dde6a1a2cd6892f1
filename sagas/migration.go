package sagas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sagabridge/sagabridge/topics"
)

// Assignment is how the bridge decided to run one instance of a saga under
// migration. It travels in the instance's input (see WrapInput), so the
// engine records it in the history: a restart, a replay or a change of the
// canary percentage never moves an instance from one mode to the other.
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

// launchKey opens the input of an instance started under migration; the
// bridge writes it first, so recognising it costs one prefix comparison.
const launchKey = `{"sagabridgeMigration":`

type launch struct {
	Migration *Assignment     `json:"sagabridgeMigration"`
	Input     json.RawMessage `json:"input"`
}

// WrapInput is the input that starts an instance under migration: the
// assignment and the saga's own input, unchanged.
func WrapInput(a Assignment, input []byte) ([]byte, error) {
	if len(bytes.TrimSpace(input)) == 0 {
		input = []byte("null")
	}
	b, err := json.Marshal(launch{Migration: &a, Input: input})
	if err != nil {
		return nil, fmt.Errorf("wrap migration input: %w", err)
	}
	return b, nil
}

// SplitInput undoes WrapInput. Any other input comes back unchanged with a
// nil assignment: the instance is not under migration.
func SplitInput(raw []byte) (json.RawMessage, *Assignment, error) {
	if !bytes.HasPrefix(raw, []byte(launchKey)) {
		return raw, nil, nil
	}
	var l launch
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, nil, fmt.Errorf("migration input: %w", err)
	}
	return l.Input, l.Migration, nil
}

func (a *Assignment) migration() *topics.Migration {
	return &topics.Migration{Mode: a.Mode, Stage: a.Stage, Percent: a.Percent, Bucket: a.Bucket}
}

// AssignmentOf reads the assignment an instance was started with from its
// stored input, whatever else wraps it (a trace context); nil when the
// instance was not started under migration.
func AssignmentOf(storedInput []byte) (*Assignment, error) {
	inner, _ := readTraced(storedInput)
	_, a, err := SplitInput(inner)
	return a, err
}
