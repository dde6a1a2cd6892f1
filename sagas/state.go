package sagas

import (
	"encoding/json"
	"fmt"
	"time"
)

// State is what a saga knows while it runs, handed to the Go functions of
// a step (Input, Decide, Func). It is rebuilt on every replay from the
// recorded history, so those functions must read only from it and from the
// workflow context: no clock, no I/O.
type State struct {
	InstanceID string
	Saga       string
	// Input is the saga's input, the data of the event that started it.
	Input json.RawMessage
	// Results holds each finished step's result, by step name: an
	// activity's output, a reply's payload, a waited-for event's payload,
	// a child's outcome, a Func's return value.
	Results map[string]json.RawMessage
	// Step and Attempt are the step running now and its attempt (1-based).
	Step    string
	Attempt int
	// Now is the workflow's clock (ctx.CurrentUTCDateTime), replay-safe.
	Now time.Time
}

// DecodeInput decodes the saga's input into v.
func (s *State) DecodeInput(v any) error {
	if len(s.Input) == 0 {
		return fmt.Errorf("saga %s: no input", s.Saga)
	}
	if err := json.Unmarshal(s.Input, v); err != nil {
		return fmt.Errorf("saga %s: decode input: %w", s.Saga, err)
	}
	return nil
}

// Decode decodes the result of a finished step into v.
func (s *State) Decode(step string, v any) error {
	raw, ok := s.Results[step]
	if !ok || len(raw) == 0 {
		return fmt.Errorf("saga %s: step %s has no result", s.Saga, step)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("saga %s: decode result of %s: %w", s.Saga, step, err)
	}
	return nil
}

// payload is what a step sends: Step.Input's value, or the saga's input.
func (s *State) payload(st *Step) (json.RawMessage, error) {
	if st.Input == nil {
		return s.Input, nil
	}
	v, err := st.Input(s)
	if err != nil {
		return nil, fmt.Errorf("input of %s: %w", st.Name, err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("input of %s: %w", st.Name, err)
	}
	return raw, nil
}
