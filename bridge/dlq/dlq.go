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
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/kafka"
	"github.com/sagabridge/sagabridge/topics/natsjs"
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
	// MetaOriginal says where the broker keeps the original message
	// ("nats stream=orders_placed seq=42", "kafka topic=orders.placed
	// partition=0 offset=17"); empty when the broker did not say.
	MetaOriginal = "Sagabridge-Dlq-Original"
	// MetaTruncated, present only on a truncated copy, says what the copy
	// leaves out and why; the original is then found through MetaOriginal.
	MetaTruncated = "Sagabridge-Dlq-Truncated"
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

// Bounds on what a dead letter repeats of the event: a reason can quote
// the payload, and an id or type can be as long as the producer made it;
// a header that long would make the dead letter itself unstorable (JetStream
// stores at most 64 KiB of headers).
const (
	MaxReasonBytes    = 4 << 10
	MaxAttributeBytes = 1 << 10
)

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
	// Origin identifies the message as the broker stores it; NewMessage
	// works it out from the message when it is zero.
	Origin Origin
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

// IsDeliveryMetadata reports whether a metadata key describes one delivery
// (counts, broker positions) rather than the event, so a copy of the
// message must not carry it.
func IsDeliveryMetadata(k string) bool {
	return natsjs.IsDeliveryKey(k) || strings.HasPrefix(k, "kafka_")
}

// Origin identifies one stored message.
type Origin struct {
	// ID is stable across redeliveries of the message and distinct for
	// any other message, even one with the same payload: the dead letter's
	// message id (a broker that dedupes drops a second dead letter of the
	// same delivery, never one of another) and the key of the handler's
	// per-message counters.
	ID string
	// Pointer says where the broker keeps the message (MetaOriginal).
	Pointer string
}

// Identify works out a message's identity from what the broker said about
// it: the JetStream stream and sequence, or the Kafka topic, partition and
// offset. A message from a broker that says neither (a test double, say)
// falls back on the producer's message UUID, then on the CloudEvent's
// source and id, then on a hash of its topic, headers and payload.
func Identify(topic string, msg *message.Message, ceSource, ceID string) Origin {
	md := msg.Metadata
	if stream, seq := md.Get(natsjs.MetaStream), md.Get(natsjs.MetaStreamSeq); stream != "" && seq != "" {
		return Origin{ID: "nats-" + stream + "-" + seq, Pointer: "nats stream=" + stream + " seq=" + seq}
	}
	if t, p, o := md.Get(kafka.MetadataTopic), md.Get(kafka.MetadataPartition), md.Get(kafka.MetadataOffset); t != "" && p != "" && o != "" {
		return Origin{ID: "kafka-" + t + "-" + p + "-" + o, Pointer: "kafka topic=" + t + " partition=" + p + " offset=" + o}
	}
	if msg.UUID != "" {
		return Origin{ID: msg.UUID}
	}
	h := sha256.New()
	if ceID != "" {
		h.Write([]byte("ce\x00" + topic + "\x00" + ceSource + "\x00" + ceID))
		return Origin{ID: "ce-" + hex.EncodeToString(h.Sum(nil)[:12])}
	}
	h.Write([]byte(topic + "\x00"))
	keys := make([]string, 0, len(md))
	for k := range md {
		if !IsDeliveryMetadata(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		h.Write([]byte(k + "\x00" + md[k] + "\x00"))
	}
	h.Write(msg.Payload)
	return Origin{ID: "sha256-" + hex.EncodeToString(h.Sum(nil)[:12])}
}

// ParsePointer reads a MetaOriginal value back into its fields
// ("nats", {"stream": "orders_placed", "seq": "42"}).
func ParsePointer(p string) (broker string, fields map[string]string) {
	parts := strings.Fields(p)
	if len(parts) == 0 {
		return "", nil
	}
	fields = map[string]string{}
	for _, kv := range parts[1:] {
		if k, v, ok := strings.Cut(kv, "="); ok {
			fields[k] = v
		}
	}
	return parts[0], fields
}

// NewMessage builds the full dead-letter message for msg: its payload and
// headers untouched, plus the failure. Its UUID is derived from the
// original's identity, so publishing it twice (a crash between publish and
// ack) is dropped by a broker that dedupes on message id. Reason, event id
// and type are cut to MaxReasonBytes and MaxAttributeBytes.
func NewMessage(msg *message.Message, f Failure) (*message.Message, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	f = f.withDefaults(msg)
	out := message.NewMessage("dlq-"+f.Origin.ID, msg.Payload)
	for k, v := range msg.Metadata {
		if IsDeliveryMetadata(k) {
			continue
		}
		out.Metadata.Set(k, v)
	}
	f.annotate(out, MaxReasonBytes, MaxAttributeBytes)
	return out, nil
}

// Truncated builds the copy stored when the full one cannot be: the
// failure (shorter still), what was left out and why, and where the
// original is; no payload and none of the original headers.
func Truncated(msg *message.Message, f Failure, why string) (*message.Message, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	f = f.withDefaults(msg)
	out := message.NewMessage("dlq-"+f.Origin.ID, nil)
	f.annotate(out, MaxAttributeBytes, MaxAttributeBytes/4)
	headers := 0
	for k := range msg.Metadata {
		if !IsDeliveryMetadata(k) {
			headers++
		}
	}
	where := "the broker did not say where the original is"
	if f.Origin.Pointer != "" {
		where = "the original is at " + f.Origin.Pointer
	}
	out.Metadata.Set(MetaTruncated, Clip(fmt.Sprintf("payload (%d bytes) and %d headers not stored: %s; %s",
		len(msg.Payload), headers, why, where), MaxAttributeBytes))
	return out, nil
}

func (f Failure) withDefaults(msg *message.Message) Failure {
	if f.Origin.ID == "" {
		f.Origin = Identify(f.OriginTopic, msg, "", f.EventID)
	}
	if f.FailedAt.IsZero() {
		f.FailedAt = time.Now()
	}
	if f.FirstFailure.IsZero() {
		f.FirstFailure = f.FailedAt
	}
	return f
}

func (f Failure) annotate(out *message.Message, reasonMax, attrMax int) {
	out.Metadata.Set(MetaKind, f.Kind)
	out.Metadata.Set(MetaReason, Clip(f.Reason, reasonMax))
	out.Metadata.Set(MetaRoute, Clip(f.Route, attrMax))
	out.Metadata.Set(MetaOriginTopic, f.OriginTopic)
	out.Metadata.Set(MetaAttempts, strconv.Itoa(max(f.Attempts, 1)))
	out.Metadata.Set(MetaFirstFailure, f.FirstFailure.UTC().Format(time.RFC3339Nano))
	out.Metadata.Set(MetaFailedAt, f.FailedAt.UTC().Format(time.RFC3339Nano))
	out.Metadata.Set(MetaOriginalID, f.Origin.ID)
	out.Metadata.Set(MetaEventType, Clip(f.EventType, attrMax))
	out.Metadata.Set(MetaEventID, Clip(f.EventID, attrMax))
	if f.Origin.Pointer != "" {
		out.Metadata.Set(MetaOriginal, f.Origin.Pointer)
	}
}

// Clip cuts s to at most n bytes (on a rune boundary) and says how long
// it was.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	suffix := fmt.Sprintf("… (%d bytes)", len(s))
	cut := max(n-len(suffix), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + suffix
}

// Size estimates a message's encoded size on the broker: headers and
// payload, and the header block alone. The estimate errs large (NATS adds
// the message id header twice over; a Kafka record has a few dozen bytes
// of framing).
func Size(msg *message.Message) (total, headers int) {
	headers = len("NATS/1.0\r\n\r\n") + 2*(len("_watermill_message_uuid: \r\n")+len(msg.UUID))
	for k, v := range msg.Metadata {
		headers += len(k) + len(v) + 4
	}
	return headers + len(msg.Payload) + 256, headers
}

// Fits reports whether the broker, with these limits, stores msg.
func Fits(msg *message.Message, lim topics.MessageLimits) bool {
	total, headers := Size(msg)
	if lim.MaxBytes > 0 && total > lim.MaxBytes {
		return false
	}
	return lim.MaxHeaderBytes <= 0 || headers <= lim.MaxHeaderBytes
}

// Entry is a dead-letter message as read back.
type Entry struct {
	ID       string
	Failure  Failure
	Payload  []byte
	Metadata map[string]string // the original headers
	// Truncated, when set, says what this copy leaves out: the payload and
	// headers are then not the original's (see Failure.Origin.Pointer).
	Truncated string
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
		Origin:      Origin{ID: md.Get(MetaOriginalID), Pointer: md.Get(MetaOriginal)},
	}
	e.Truncated = md.Get(MetaTruncated)
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
