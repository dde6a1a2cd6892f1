package sagas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/sagas/migration"
)

// Start is the one envelope of a saga instance's start input: everything
// decided when the instance starts, recorded in its history with it, so
// that every replay, restart and config change sees the same. The engine's
// start request has only an input, so this is where it goes.
type Start struct {
	// Version and Digest pin a declarative saga's definition (the saga's
	// name is the workflow's name); zero for a Go saga.
	Version int    `json:"version,omitempty"`
	Digest  string `json:"digest,omitempty"`
	// Migration is set for an instance of a saga under migration: shadow
	// or active, and why.
	Migration *migration.Assignment `json:"migration,omitempty"`
	// TraceParent and TraceState are the W3C trace context of what started
	// the saga; Run stamps the traceparent on every command, progress
	// event, activity request, child saga and the outcome.
	TraceParent string `json:"traceparent,omitempty"`
	TraceState  string `json:"tracestate,omitempty"`
	// Input is the saga's own input, byte for byte.
	Input json.RawMessage `json:"input,omitempty"`

	// legacy marks a start input of a release before the envelope, whose
	// Input may still hold a declarative saga's pinned version.
	legacy bool
}

// startKey is the envelope's only key: a start input is an envelope when
// its one member is this, so any other input (a workflow started with
// plain data) reads as the saga's own input.
const startKey = "sagabridge.start"

type envelope struct {
	Start *Start `json:"sagabridge.start"`
}

// Encode is the workflow input that starts the instance.
func (s Start) Encode() ([]byte, error) {
	b, err := json.Marshal(envelope{Start: &s})
	if err != nil {
		return nil, fmt.Errorf("sagas: encode start: %w", err)
	}
	return b, nil
}

// DecodeStart reads a workflow's start input: an envelope, or plain data,
// which is the saga's input with nothing decided. Instances started by
// earlier releases carry their input in nested wrappers (trace context
// around migration assignment around the input); they are read too, so an
// upgrade leaves the instances in flight running.
func DecodeStart(raw []byte) (Start, error) {
	if isEnvelope(raw) {
		var e envelope
		if err := json.Unmarshal(raw, &e); err != nil {
			return Start{}, fmt.Errorf("sagas: start input: %w", err)
		}
		if e.Start == nil {
			return Start{}, errors.New("sagas: start input: empty envelope")
		}
		return *e.Start, nil
	}
	return decodeLegacy(raw)
}

// isEnvelope reports whether raw is a JSON object whose first key is
// startKey; only the first tokens are read.
func isEnvelope(raw []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	k, err := dec.Token()
	return err == nil && k == startKey
}

// Pinned is the start of a declarative saga, whose version is pinned: an
// envelope's own, or, for a start input of an earlier release, the
// {"version", "digest", "input"} its input held.
func (s Start) Pinned() (Start, error) {
	if !s.legacy {
		return s, nil
	}
	var p struct {
		Version int             `json:"version"`
		Digest  string          `json:"digest,omitempty"`
		Input   json.RawMessage `json:"input,omitempty"`
	}
	if len(s.Input) > 0 {
		if err := json.Unmarshal(s.Input, &p); err != nil {
			return Start{}, fmt.Errorf("sagas: start input: %w", err)
		}
	}
	s.Version, s.Digest, s.Input, s.legacy = p.Version, p.Digest, p.Input, false
	return s, nil
}

// The wrappers of releases before the envelope, outermost first; each was
// recognised by the key its encoding started with.
var (
	legacyTraced    = []byte(`{"sagabridge.traceparent":`)
	legacyMigration = []byte(`{"sagabridgeMigration":`)
)

// decodeLegacy reads a start input of an earlier release, or plain data.
func decodeLegacy(raw []byte) (Start, error) {
	s := Start{Input: raw, legacy: true}
	if bytes.HasPrefix(raw, legacyTraced) {
		var t struct {
			TraceParent string          `json:"sagabridge.traceparent"`
			TraceState  string          `json:"sagabridge.tracestate,omitempty"`
			Input       json.RawMessage `json:"sagabridge.input,omitempty"`
		}
		if err := json.Unmarshal(raw, &t); err == nil {
			s.TraceParent, s.TraceState, s.Input = t.TraceParent, t.TraceState, t.Input
		}
	}
	if bytes.HasPrefix(s.Input, legacyMigration) {
		var m struct {
			Migration *migration.Assignment `json:"sagabridgeMigration"`
			Input     json.RawMessage       `json:"input"`
		}
		if err := json.Unmarshal(s.Input, &m); err != nil {
			return Start{}, fmt.Errorf("sagas: migration input: %w", err)
		}
		s.Migration, s.Input = m.Migration, m.Input
	}
	return s, nil
}

// startOf reads the running workflow's start.
func startOf(ctx *workflow.WorkflowContext) (Start, error) {
	var raw json.RawMessage
	if err := ctx.GetInput(&raw); err != nil {
		return Start{}, err
	}
	return DecodeStart(raw)
}

// traceOf is the trace context the running workflow was started with.
func traceOf(ctx *workflow.WorkflowContext) Start {
	s, err := startOf(ctx)
	if err != nil {
		return Start{}
	}
	return Start{TraceParent: s.TraceParent, TraceState: s.TraceState}
}
