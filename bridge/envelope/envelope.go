// Package envelope decodes a broker message into an Event: a CloudEvent in
// structured mode (JSON body with specversion), in binary mode (attributes
// in ce_* / ce-* headers, body is the data), or plain legacy JSON whose type
// and id a route names by field.
package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Modes of an event on the wire.
const (
	ModeStructured = "structured"
	ModeBinary     = "binary"
	ModePlain      = "plain"
)

// Event is a decoded message. Data stays raw so it can be passed to the
// engine byte for byte; Fields decodes it once for routing.
type Event struct {
	Mode            string
	SpecVersion     string
	ID              string
	Source          string
	Type            string
	Subject         string
	Time            time.Time
	DataContentType string
	TraceParent     string
	Extensions      map[string]any
	Data            json.RawMessage
}

// ErrDecode marks a message that can never be decoded: it goes to the
// dead-letter topic, not back to the broker.
var ErrDecode = errors.New("undecodable event")

func decodeErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrDecode, fmt.Sprintf(format, args...))
}

// MaxDepth bounds JSON nesting; deeper payloads are refused before anything
// recursive touches them.
const MaxDepth = 64

// Decode reads a message body and its metadata (headers).
func Decode(body []byte, headers map[string]string) (Event, error) {
	if !utf8.Valid(body) {
		return Event{}, decodeErr("body is not valid UTF-8")
	}
	attrs, err := binaryAttrs(headers)
	if err != nil {
		return Event{}, err
	}
	if attrs != nil {
		return decodeBinary(body, attrs, contentType(headers))
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return Event{}, decodeErr("empty body")
	}
	if trimmed[0] != '{' {
		if err := checkJSON(trimmed); err != nil {
			return Event{}, err
		}
		return Event{}, decodeErr("body is JSON but not an object")
	}
	if err := checkDepth(trimmed); err != nil {
		return Event{}, err
	}
	// Unmarshal validates the whole body before it decodes anything, so an
	// object needs no separate json.Valid pass.
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &probe); err != nil {
		return Event{}, decodeErr("malformed JSON: %v", err)
	}
	if _, ok := probe["specversion"]; ok {
		return decodeStructured(probe)
	}
	return Event{Mode: ModePlain, Data: json.RawMessage(trimmed)}, nil
}

func checkJSON(b []byte) error {
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		return decodeErr("malformed JSON: %v", err)
	}
	return checkDepth(b)
}

// checkDepth refuses JSON nested deeper than MaxDepth.
func checkDepth(b []byte) error {
	depth, max := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			if depth > max {
				max = depth
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	if max > MaxDepth {
		return decodeErr("JSON nested %d deep, limit %d", max, MaxDepth)
	}
	return nil
}

var known = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true, "subject": true,
	"time": true, "datacontenttype": true, "dataschema": true, "data": true, "data_base64": true,
	"traceparent": true,
}

func decodeStructured(m map[string]json.RawMessage) (Event, error) {
	ev := Event{Mode: ModeStructured}
	str := func(k string) (string, error) {
		raw, ok := m[k]
		if !ok {
			return "", nil
		}
		// Most attributes are plain strings: without an escape the bytes
		// between the quotes are the value (the body is valid UTF-8 and
		// valid JSON by now), so they skip a json.Unmarshal each.
		if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && bytes.IndexByte(raw[1:n-1], '\\') < 0 {
			return string(raw[1 : n-1]), nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", decodeErr("cloudevent attribute %q is not a string", k)
		}
		return s, nil
	}
	var errs []error
	for _, f := range []struct {
		k   string
		dst *string
	}{
		{"specversion", &ev.SpecVersion}, {"id", &ev.ID}, {"source", &ev.Source}, {"type", &ev.Type},
		{"subject", &ev.Subject}, {"datacontenttype", &ev.DataContentType}, {"traceparent", &ev.TraceParent},
	} {
		v, err := str(f.k)
		if err != nil {
			errs = append(errs, err)
		}
		*f.dst = v
	}
	if t, err := str("time"); err != nil {
		errs = append(errs, err)
	} else if t != "" {
		parsed, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			errs = append(errs, decodeErr("cloudevent time %q is not RFC 3339", t))
		}
		ev.Time = parsed
	}
	if err := errors.Join(errs...); err != nil {
		return Event{}, err
	}
	if _, ok := m["data_base64"]; ok {
		return Event{}, decodeErr("cloudevent data_base64 is not supported; send JSON data")
	}
	ev.Data = m["data"]
	if ev.DataContentType != "" && !isJSONContentType(ev.DataContentType) {
		return Event{}, decodeErr("datacontenttype %q is not JSON", ev.DataContentType)
	}
	for k, raw := range m {
		if known[k] {
			continue
		}
		var v any
		if err := json.Unmarshal(raw, &v); err == nil {
			if ev.Extensions == nil {
				ev.Extensions = map[string]any{}
			}
			ev.Extensions[k] = v
		}
	}
	return ev, validate(ev)
}

func isJSONContentType(ct string) bool {
	ct = strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	return ct == "application/json" || ct == "text/json" || strings.HasSuffix(ct, "+json")
}

func validate(ev Event) error {
	var errs []error
	if ev.SpecVersion != "1.0" {
		errs = append(errs, decodeErr("specversion %q is not 1.0", ev.SpecVersion))
	}
	if ev.ID == "" {
		errs = append(errs, decodeErr("cloudevent id is missing"))
	}
	if ev.Source == "" {
		errs = append(errs, decodeErr("cloudevent source is missing"))
	}
	if ev.Type == "" {
		errs = append(errs, decodeErr("cloudevent type is missing"))
	}
	return errors.Join(errs...)
}

// binaryAttrs collects ce_* (Kafka) and ce-* / Ce-* (NATS, HTTP) headers,
// lower-cased without the prefix; nil when there is no ce specversion.
// Two headers that name one attribute (ce-type and Ce-Type, or ce_type and
// ce-type) make the event undecodable: which of them the producer meant
// cannot be known, and picking one would route the same bytes differently
// from run to run.
func binaryAttrs(headers map[string]string) (map[string]string, error) {
	var attrs, from map[string]string
	// The conflict reported is the same whatever the map's order.
	var conflict error
	var conflictKey string
	for k, v := range headers {
		lk := strings.ToLower(k)
		name, ok := strings.CutPrefix(lk, "ce_")
		if !ok {
			name, ok = strings.CutPrefix(lk, "ce-")
		}
		if !ok {
			continue
		}
		if attrs == nil {
			attrs, from = map[string]string{}, map[string]string{}
		}
		if other, dup := from[name]; dup {
			a, b := other, k
			if b < a {
				a, b = b, a
			}
			if conflict == nil || a+b < conflictKey {
				conflict, conflictKey = decodeErr("headers %q and %q both carry the cloudevent attribute %s", a, b, name), a+b
			}
			continue
		}
		attrs[name], from[name] = v, k
	}
	if _, ok := attrs["specversion"]; !ok && conflict == nil {
		return nil, nil
	}
	if conflict != nil {
		return nil, conflict
	}
	return attrs, nil
}

// contentType is the message's Content-Type header, which binary mode maps
// to datacontenttype.
func contentType(headers map[string]string) string {
	for k, v := range headers {
		if strings.EqualFold(k, "content-type") {
			return v
		}
	}
	return ""
}

func decodeBinary(body []byte, attrs map[string]string, ct string) (Event, error) {
	// The content type is checked before the body, so a producer sending
	// XML or Avro hears that, not a JSON syntax error.
	dct := attrs["datacontenttype"]
	if dct == "" {
		dct = ct
	}
	if dct != "" && !isJSONContentType(dct) {
		return Event{}, decodeErr("datacontenttype %q is not JSON", dct)
	}
	ev := Event{
		DataContentType: dct,
		Mode:            ModeBinary,
		SpecVersion:     attrs["specversion"],
		ID:              attrs["id"],
		Source:          attrs["source"],
		Type:            attrs["type"],
		Subject:         attrs["subject"],
		TraceParent:     attrs["traceparent"],
	}
	if t := attrs["time"]; t != "" {
		parsed, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return Event{}, decodeErr("ce time header %q is not RFC 3339", t)
		}
		ev.Time = parsed
	}
	for k, v := range attrs {
		if !known[k] {
			if ev.Extensions == nil {
				ev.Extensions = map[string]any{}
			}
			ev.Extensions[k] = v
		}
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 {
		if err := checkJSON(trimmed); err != nil {
			return Event{}, err
		}
		ev.Data = json.RawMessage(trimmed)
	}
	return ev, validate(ev)
}

// Fields decodes Data for routing: objects become map[string]any, numbers
// float64. Absent data is an empty object so `has(event.data.x)` works.
func (ev Event) Fields() (any, error) {
	if len(ev.Data) == 0 {
		return map[string]any{}, nil
	}
	var v any
	if err := json.Unmarshal(ev.Data, &v); err != nil {
		return nil, decodeErr("data: %v", err)
	}
	return v, nil
}

// WithPlain fills type and id of a plain event from its payload fields.
func (ev Event) WithPlain(typeField, idField, fixedType string, fields any) (Event, error) {
	m, _ := fields.(map[string]any)
	get := func(f string) string {
		if f == "" || m == nil {
			return ""
		}
		switch v := m[f].(type) {
		case string:
			return v
		case float64:
			return strings.TrimSuffix(fmt.Sprintf("%f", v), ".000000")
		}
		return ""
	}
	ev.Type = get(typeField)
	if ev.Type == "" {
		ev.Type = fixedType
	}
	if ev.Type == "" {
		return ev, decodeErr("plain event has no %q field", typeField)
	}
	ev.ID = get(idField)
	ev.SpecVersion = "1.0"
	return ev, nil
}
