package dlqstore

import (
	"encoding/base64"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// View is one dead-letter message as `sagabridge dlq` prints it and the
// admin API (GET /v1/dlq) answers it.
type View struct {
	Seq          uint64            `json:"seq"`
	Ref          string            `json:"ref"`
	ID           string            `json:"id"`
	StoredAt     time.Time         `json:"storedAt"`
	Kind         string            `json:"kind"`
	Reason       string            `json:"reason"`
	Route        string            `json:"route,omitempty"`
	OriginTopic  string            `json:"originTopic"`
	EventType    string            `json:"eventType,omitempty"`
	EventID      string            `json:"eventId,omitempty"`
	Attempts     int               `json:"attempts"`
	FirstFailure time.Time         `json:"firstFailure,omitzero"`
	FailedAt     time.Time         `json:"failedAt,omitzero"`
	PayloadBytes int               `json:"payloadBytes"`
	Headers      map[string]string `json:"headers,omitempty"`
	// Payload is set when the payload is JSON, PayloadText when it is other
	// UTF-8 text, PayloadBase64 otherwise: each payload comes back whole,
	// byte for byte, whatever it holds.
	Payload       json.RawMessage `json:"payload,omitempty"`
	PayloadText   string          `json:"payloadText,omitempty"`
	PayloadBase64 string          `json:"payloadBase64,omitempty"`
	// Error says what metadata could not be read (Item.Err).
	Error string `json:"error,omitempty"`
}

// NewView is the view of an item; full adds the headers and the payload,
// which a list leaves out.
func NewView(it Item, full bool) View {
	e := it.Entry
	v := View{
		Seq: it.Seq, Ref: it.Ref, ID: e.ID, StoredAt: it.StoredAt,
		Kind: e.Failure.Kind, Reason: e.Failure.Reason, Route: e.Failure.Route,
		OriginTopic: e.Failure.OriginTopic, EventType: e.Failure.EventType, EventID: e.Failure.EventID,
		Attempts: e.Failure.Attempts, FirstFailure: e.Failure.FirstFailure, FailedAt: e.Failure.FailedAt,
		PayloadBytes: len(e.Payload),
	}
	if it.Err != nil {
		v.Error = it.Err.Error()
	}
	if full {
		v.Headers = e.Metadata
		switch {
		case json.Valid(e.Payload):
			v.Payload = e.Payload
		case utf8.Valid(e.Payload):
			v.PayloadText = string(e.Payload)
		default:
			v.PayloadBase64 = base64.StdEncoding.EncodeToString(e.Payload)
		}
	}
	return v
}
