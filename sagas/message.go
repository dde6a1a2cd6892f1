package sagas

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/sagabridge/sagabridge/topics"
)

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
func (m *Message) shape(s *State, ref CommandRef, ev *topics.CloudEvent) (*MessageOptions, error) {
	if m.Data != nil {
		v, err := m.Data(s, ref)
		if err != nil {
			return nil, fmt.Errorf("data of %s: %w", ref.Step, err)
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("data of %s: %w", ref.Step, err)
		}
		ev.Data = raw
	}
	headers := map[string]string{}
	if m.Headers != nil {
		h, err := m.Headers(s, ref)
		if err != nil {
			return nil, fmt.Errorf("headers of %s: %w", ref.Step, err)
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
	return &MessageOptions{Plain: m.Plain, Headers: headers}, nil
}
