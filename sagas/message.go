package sagas

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/sagabridge/sagabridge/topics"
)

// Message shapes a command the way its participant expects it, in place of
// the default: a CloudEvent of the step's type whose data is a
// topics.Command. Its functions run in the orchestrator, so they must be
// pure functions of their arguments (no clock, no I/O).
type Message struct {
	// Plain sends the data as the message body (Content-Type
	// application/json) with no CloudEvents envelope. The command's ids
	// then travel as headers only (HeaderIdempotencyKey, HeaderCommandID,
	// HeaderAttempt).
	Plain bool
	// Data builds the command's data (the plain body); nil sends a
	// topics.Command.
	Data func(s *State, c CommandRef) (any, error)
	// Headers builds the message's headers; nil sends none of its own.
	Headers func(s *State, c CommandRef) (map[string]string, error)
}

// CommandRef names one command: what a Message may put in the message
// beside the saga's state.
type CommandRef struct {
	// ID is the command's id, one per attempt: "<instance>/<step>/<attempt>".
	ID string
	// IdempotencyKey is the same for every attempt of the step (see
	// topics.Command): the key participants dedupe on.
	IdempotencyKey string
	InstanceID     string
	Saga           string
	Step           string
	Attempt        int
	Compensate     bool
}

// Headers every shaped command carries, so that a participant reading
// plain JSON still finds the command's ids.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderCommandID      = "Sagabridge-Command-Id"
	HeaderAttempt        = "Sagabridge-Attempt"
)

// MessagePublisher is an optional capability of a Publisher, found by
// type assertion: it sends a command shaped by a Message (a plain body,
// headers). The bridge's publisher has it; a saga whose steps shape
// their messages needs it.
type MessagePublisher interface {
	PublishMessage(ctx context.Context, topic, key string, ev topics.CloudEvent, o MessageOptions) error
}

// MessageOptions say how to send an event: as it is (a CloudEvent in
// structured mode) or its data alone, with headers.
type MessageOptions struct {
	// Plain sends ev.Data as the body, without the envelope; ev.ID stays
	// the message id (a broker that dedupes on it still does).
	Plain   bool              `json:"plain,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

// shape applies a Message to a command event about to be sent.
func (m *Message) shape(s *State, ref CommandRef, ev *topics.CloudEvent, req *PublishRequest) error {
	if m.Data != nil {
		v, err := m.Data(s, ref)
		if err != nil {
			return fmt.Errorf("data of %s: %w", ref.Step, err)
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("data of %s: %w", ref.Step, err)
		}
		ev.Data = raw
	}
	headers := map[string]string{}
	if m.Headers != nil {
		h, err := m.Headers(s, ref)
		if err != nil {
			return fmt.Errorf("headers of %s: %w", ref.Step, err)
		}
		for k, v := range h {
			headers[k] = v
		}
	}
	for k, v := range map[string]string{
		HeaderIdempotencyKey: ref.IdempotencyKey,
		HeaderCommandID:      ref.ID,
		HeaderAttempt:        strconv.Itoa(ref.Attempt),
	} {
		if _, set := headers[k]; !set {
			headers[k] = v
		}
	}
	req.Options = &MessageOptions{Plain: m.Plain, Headers: headers}
	return nil
}
