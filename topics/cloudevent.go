package topics

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SpecVersion is the only CloudEvents version sagabridge reads and writes.
const SpecVersion = "1.0"

// CloudEvent is a CloudEvents 1.0 event in structured JSON mode. Data is kept
// raw so that a payload passes through the bridge byte for byte.
type CloudEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject,omitempty"`
	Time            time.Time `json:"time,omitzero"`
	DataContentType string    `json:"datacontenttype,omitempty"`
	TraceParent     string    `json:"traceparent,omitempty"`
	// IdempotencyKey (extension attribute idempotencykey) is on commands:
	// the same for every attempt of a step; see Command.
	IdempotencyKey string          `json:"idempotencykey,omitempty"`
	Data           json.RawMessage `json:"data,omitempty"`
}

// NewCloudEvent builds a JSON CloudEvent; data is marshalled with encoding/json.
func NewCloudEvent(id, source, typ, subject string, at time.Time, data any) (CloudEvent, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return CloudEvent{}, fmt.Errorf("marshal data of %s event %s: %w", typ, id, err)
	}
	return CloudEvent{
		SpecVersion:     SpecVersion,
		ID:              id,
		Source:          source,
		Type:            typ,
		Subject:         subject,
		Time:            at.UTC(),
		DataContentType: "application/json",
		Data:            raw,
	}, nil
}

// Validate reports every missing required attribute at once.
func (e CloudEvent) Validate() error {
	var errs []error
	if e.SpecVersion != SpecVersion {
		errs = append(errs, fmt.Errorf("specversion %q is not %q", e.SpecVersion, SpecVersion))
	}
	if e.ID == "" {
		errs = append(errs, errors.New("id is missing"))
	}
	if e.Source == "" {
		errs = append(errs, errors.New("source is missing"))
	}
	if e.Type == "" {
		errs = append(errs, errors.New("type is missing"))
	}
	return errors.Join(errs...)
}

// Marshal encodes the event in structured mode.
func (e CloudEvent) Marshal() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("marshal cloudevent %s: %w", e.ID, err)
	}
	return b, nil
}
