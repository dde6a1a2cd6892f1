// Package dlq writes and reads dead-letter messages. A dead-letter message
// is the original message, payload and headers untouched, plus metadata that
// says why it failed and where it came from, so a replay republishes exactly
// what the producer sent.
package dlq

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Metadata keys of a dead-letter message.
const (
	MetaReason       = "Sagabridge-Dlq-Reason"
	MetaKind         = "Sagabridge-Dlq-Kind"
	MetaRoute        = "Sagabridge-Dlq-Route"
	MetaOriginTopic  = "Sagabridge-Dlq-Origin-Topic"
	MetaAttempts     = "Sagabridge-Dlq-Attempts"
	MetaFirstFailure = "Sagabridge-Dlq-First-Failure"
	MetaFailedAt     = "Sagabridge-Dlq-Failed-At"
	MetaOriginalID   = "Sagabridge-Dlq-Original-Id"
	MetaEventType    = "Sagabridge-Dlq-Event-Type"
	MetaEventID      = "Sagabridge-Dlq-Event-Id"
)

// Kinds of failure, for metrics and filters.
const (
	KindDecode   = "decode"
	KindTooLarge = "too-large"
	KindEval     = "route-eval"
	KindNotFound = "instance-not-found"
	KindFinished = "instance-finished"
	KindEngine   = "engine-error"
	// KindUnknownWorkflow: a start names a workflow, or a declarative saga
	// definition, that this worker does not run.
	KindUnknownWorkflow = "unknown-workflow"
	// KindDenied: the access policy does not let the route perform the
	// action on the instance's workflow.
	KindDenied = "denied"
)

// Kinds lists every kind, for metrics that should exist before the first.
var Kinds = []string{KindDecode, KindTooLarge, KindEval, KindNotFound, KindFinished, KindEngine, KindUnknownWorkflow, KindDenied}

// Failure describes why a message is dead-lettered.
type Failure struct {
	Kind         string
	Reason       string
	Route        string
	OriginTopic  string
	EventType    string
	EventID      string
	Attempts     int
	FirstFailure time.Time
	FailedAt     time.Time
}

// Validate reports every missing field at once.
func (f Failure) Validate() error {
	var errs []error
	if f.Kind == "" {
		errs = append(errs, errors.New("dlq: kind is required"))
	}
	if f.Reason == "" {
		errs = append(errs, errors.New("dlq: reason is required"))
	}
	if f.OriginTopic == "" {
		errs = append(errs, errors.New("dlq: origin topic is required"))
	}
	return errors.Join(errs...)
}

// internal lists metadata prefixes that describe a delivery, not the
// event; they are not copied into the dead-letter message.
var internal = []string{"Sagabridge-Deliveries", "Sagabridge-Stored-At", "kafka_"}

// NewMessage builds the dead-letter message for msg. Its UUID is derived
// from the original, so publishing it twice (a crash between publish and
// ack) is dropped by a broker that dedupes on message id.
func NewMessage(msg *message.Message, f Failure) (*message.Message, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	orig := OriginalID(msg)
	out := message.NewMessage("dlq-"+orig, msg.Payload)
	for k, v := range msg.Metadata {
		if IsDeliveryMetadata(k) {
			continue
		}
		out.Metadata.Set(k, v)
	}
	if f.FailedAt.IsZero() {
		f.FailedAt = time.Now()
	}
	if f.FirstFailure.IsZero() {
		f.FirstFailure = f.FailedAt
	}
	out.Metadata.Set(MetaKind, f.Kind)
	out.Metadata.Set(MetaReason, f.Reason)
	out.Metadata.Set(MetaRoute, f.Route)
	out.Metadata.Set(MetaOriginTopic, f.OriginTopic)
	out.Metadata.Set(MetaAttempts, strconv.Itoa(max(f.Attempts, 1)))
	out.Metadata.Set(MetaFirstFailure, f.FirstFailure.UTC().Format(time.RFC3339Nano))
	out.Metadata.Set(MetaFailedAt, f.FailedAt.UTC().Format(time.RFC3339Nano))
	out.Metadata.Set(MetaOriginalID, orig)
	out.Metadata.Set(MetaEventType, f.EventType)
	out.Metadata.Set(MetaEventID, f.EventID)
	return out, nil
}

// IsDeliveryMetadata reports whether a metadata key describes one delivery
// (counts, broker timestamps) rather than the event, so a copy of the
// message must not carry it.
func IsDeliveryMetadata(k string) bool {
	for _, p := range internal {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// OriginalID identifies a message: its Watermill UUID, or a hash of its
// payload when the producer set none.
func OriginalID(msg *message.Message) string {
	if msg.UUID != "" {
		return msg.UUID
	}
	h := sha256.Sum256(msg.Payload)
	return "sha256-" + hex.EncodeToString(h[:12])
}

// Entry is a dead-letter message as read back.
type Entry struct {
	ID       string
	Failure  Failure
	Payload  []byte
	Metadata map[string]string // the original headers
}

// Parse reads a dead-letter message.
func Parse(msg *message.Message) (Entry, error) {
	md := msg.Metadata
	e := Entry{ID: msg.UUID, Payload: msg.Payload, Metadata: map[string]string{}}
	e.Failure = Failure{
		Kind:        md.Get(MetaKind),
		Reason:      md.Get(MetaReason),
		Route:       md.Get(MetaRoute),
		OriginTopic: md.Get(MetaOriginTopic),
		EventType:   md.Get(MetaEventType),
		EventID:     md.Get(MetaEventID),
	}
	var errs []error
	if n, err := strconv.Atoi(md.Get(MetaAttempts)); err == nil {
		e.Failure.Attempts = n
	} else {
		errs = append(errs, fmt.Errorf("dlq %s: attempts: %w", msg.UUID, err))
	}
	for _, t := range []struct {
		key string
		dst *time.Time
	}{{MetaFirstFailure, &e.Failure.FirstFailure}, {MetaFailedAt, &e.Failure.FailedAt}} {
		if v, err := time.Parse(time.RFC3339Nano, md.Get(t.key)); err == nil {
			*t.dst = v
		} else {
			errs = append(errs, fmt.Errorf("dlq %s: %s: %w", msg.UUID, t.key, err))
		}
	}
	for k, v := range md {
		if !strings.HasPrefix(k, "Sagabridge-Dlq-") && !IsDeliveryMetadata(k) {
			e.Metadata[k] = v
		}
	}
	if e.Failure.OriginTopic == "" {
		errs = append(errs, fmt.Errorf("dlq %s: no origin topic", msg.UUID))
	}
	return e, errors.Join(errs...)
}

// Replay builds the message to republish on the origin topic: the original
// payload and headers. Its UUID is derived from the dead-letter entry, so a
// replay interrupted between publish and ack and run again is dropped by a
// deduplicating broker, while a second dead-lettering of the same event
// replays under a new id.
func (e Entry) Replay() *message.Message {
	id := strings.TrimPrefix(e.ID, "dlq-") + "/replay/" + strconv.FormatInt(e.Failure.FailedAt.UnixNano(), 10)
	msg := message.NewMessage(id, e.Payload)
	for k, v := range e.Metadata {
		msg.Metadata.Set(k, v)
	}
	return msg
}
