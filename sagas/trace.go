package sagas

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/dapr/durabletask-go/workflow"
)

// TracedInput is a start input that carries the W3C trace context of what
// started the saga. The engine's start request has no field for it, so the
// bridge wraps the input when tracing is on; Run unwraps it and stamps the
// traceparent on every command, progress event, activity request, child
// saga and the outcome. Being part of the input, it is the same on every
// replay.
type TracedInput struct {
	// TraceParent must stay the first field: readTraced recognises a
	// wrapped input by the key its encoding starts with.
	TraceParent string          `json:"sagabridge.traceparent"`
	TraceState  string          `json:"sagabridge.tracestate,omitempty"`
	Input       json.RawMessage `json:"sagabridge.input,omitempty"`
}

var tracedPrefix = []byte(`{"sagabridge.traceparent":`)

// WrapTraced wraps a start input (JSON, or nil) with a trace context.
func WrapTraced(input []byte, traceParent, traceState string) ([]byte, error) {
	b, err := json.Marshal(TracedInput{TraceParent: traceParent, TraceState: traceState, Input: input})
	if err != nil {
		return nil, fmt.Errorf("sagas: wrap traced input: %w", err)
	}
	return b, nil
}

// readTraced splits a workflow input into the saga's own input and the
// trace context around it; an input WrapTraced did not make comes back
// unchanged with no traceparent.
func readTraced(raw json.RawMessage) (json.RawMessage, TracedInput) {
	if !bytes.HasPrefix(raw, tracedPrefix) {
		return raw, TracedInput{}
	}
	var in TracedInput
	if err := json.Unmarshal(raw, &in); err != nil {
		return raw, TracedInput{}
	}
	return in.Input, in
}

// workflowInput reads the raw input of the running workflow, unwrapped.
func workflowInput(ctx *workflow.WorkflowContext) (json.RawMessage, TracedInput, error) {
	var raw json.RawMessage
	if err := ctx.GetInput(&raw); err != nil {
		return nil, TracedInput{}, err
	}
	input, tr := readTraced(raw)
	return input, tr, nil
}

// traceOf is the trace context the running workflow was started with.
func traceOf(ctx *workflow.WorkflowContext) TracedInput {
	_, tr, err := workflowInput(ctx)
	if err != nil {
		return TracedInput{}
	}
	return tr
}

// traced wraps an input for a child saga with this run's trace context.
func (r *run) traced(input []byte) []byte {
	if r.trace.TraceParent == "" {
		return input
	}
	b, err := WrapTraced(input, r.trace.TraceParent, r.trace.TraceState)
	if err != nil {
		return input
	}
	return b
}

// unmarshalInput decodes an unwrapped input; an empty one leaves v as is,
// as the engine's GetInput does.
func unmarshalInput(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, v)
}
