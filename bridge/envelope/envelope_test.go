package envelope_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sagabridge/sagabridge/bridge/envelope"
)

func TestDecode(t *testing.T) {
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	for _, c := range []struct {
		name    string
		body    string
		headers map[string]string
		mode    string // expected mode; "" = expect error
		errHas  string
	}{
		{"structured", `{"specversion":"1.0","id":"1","source":"s","type":"t","subject":"x","time":"2026-01-02T03:04:05Z","ext1":"v","data":{"a":1}}`, nil, envelope.ModeStructured, ""},
		{"structured without data", `{"specversion":"1.0","id":"1","source":"s","type":"t"}`, nil, envelope.ModeStructured, ""},
		{"binary, kafka headers", `{"a":1}`, map[string]string{"ce_specversion": "1.0", "ce_id": "1", "ce_source": "s", "ce_type": "t"}, envelope.ModeBinary, ""},
		{"binary, nats headers", `{"a":1}`, map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "1", "Ce-Source": "s", "Ce-Type": "t"}, envelope.ModeBinary, ""},
		{"plain legacy JSON", `{"kind":"begin"}`, nil, envelope.ModePlain, ""},
		{"malformed JSON", `{"specversion":"1.0",`, nil, "", "malformed JSON"},
		{"truncated cloudevent", `{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"a":`, nil, "", "malformed JSON"},
		{"wrong specversion", `{"specversion":"0.3","id":"1","source":"s","type":"t"}`, nil, "", `specversion "0.3" is not 1.0`},
		{"missing id and type", `{"specversion":"1.0","source":"s"}`, nil, "", "id is missing"},
		{"wrong content type", `{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"text/xml","data":"<a/>"}`, nil, "", `datacontenttype "text/xml" is not JSON`},
		{"attribute of the wrong type", `{"specversion":"1.0","id":1,"source":"s","type":"t"}`, nil, "", `attribute "id" is not a string`},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", nil, "", "not valid UTF-8"},
		{"deeply nested", deep, nil, "", "nested 100 deep"},
		{"not an object", `[1,2]`, nil, "", "not an object"},
		{"empty", ``, nil, "", "empty body"},
		{"base64 data", `{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"AA=="}`, nil, "", "data_base64"},
		{"bad time", `{"specversion":"1.0","id":"1","source":"s","type":"t","time":"yesterday"}`, nil, "", "not RFC 3339"},
		{"one attribute in two headers", `{"a":1}`, map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "ce-type": "order.placed", "Ce-Type": "order.cancelled"},
			"", `headers "Ce-Type" and "ce-type" both carry the cloudevent attribute type`},
		{"one attribute in a Kafka and a NATS header", `{"a":1}`, map[string]string{"ce_specversion": "1.0", "ce-specversion": "1.0", "ce_id": "1", "ce_source": "s", "ce_type": "t"},
			"", `headers "ce-specversion" and "ce_specversion" both carry the cloudevent attribute specversion`},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev, err := envelope.Decode([]byte(c.body), c.headers)
			if c.mode == "" {
				if !errors.Is(err, envelope.ErrDecode) || !strings.Contains(err.Error(), c.errHas) {
					t.Fatalf("error %v, want ErrDecode with %q", err, c.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.Mode != c.mode {
				t.Fatalf("mode %s, want %s", ev.Mode, c.mode)
			}
		})
	}
}

func TestStructuredKeepsDataBytes(t *testing.T) {
	ev, err := envelope.Decode([]byte(`{"specversion":"1.0","id":"1","source":"s","type":"t","ext":"x","data":{"b": 2,  "a":1}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(ev.Data) != `{"b": 2,  "a":1}` || ev.Extensions["ext"] != "x" {
		t.Fatalf("%+v", ev)
	}
}

// TestStructuredAttributesWithEscapes: an attribute with a JSON escape is
// unescaped like any other string; one without is taken as it stands.
func TestStructuredAttributesWithEscapes(t *testing.T) {
	ev, err := envelope.Decode([]byte(`{"specversion":"1.0","id":"\u00e9-1","source":"s\/x","type":"t","subject":"say \"hi\"","traceparent":"plain é"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != "é-1" || ev.Source != "s/x" || ev.Subject != `say "hi"` || ev.TraceParent != "plain é" {
		t.Fatalf("attributes %q %q %q %q", ev.ID, ev.Source, ev.Subject, ev.TraceParent)
	}
}

func TestPlainFields(t *testing.T) {
	ev, _ := envelope.Decode([]byte(`{"kind":"begin","eventId":"e-1","n":3}`), nil)
	f, _ := ev.Fields()
	got, err := ev.WithPlain("kind", "eventId", "", f)
	if err != nil || got.Type != "begin" || got.ID != "e-1" {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := ev.WithPlain("missing", "", "", f); !errors.Is(err, envelope.ErrDecode) {
		t.Fatalf("missing type field: %v", err)
	}
}

// FuzzDecode: any input decodes or fails with ErrDecode; never panics, and
// a decoded CloudEvent always has its required attributes.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"a":[1,2,{"b":null}]}}`,
		`{"kind":"x"}`, `{"specversion":"1.0"}`, `[[[[]]]]`, "\xff\xfe", `{"a":"\u0000"}`,
	} {
		f.Add([]byte(s), "", "")
		f.Add([]byte(s), "1.0", "t")
	}
	f.Fuzz(func(t *testing.T, body []byte, spec, typ string) {
		var headers map[string]string
		if spec != "" {
			headers = map[string]string{"ce_specversion": spec, "ce_id": "1", "ce_source": "s", "ce_type": typ}
		}
		ev, err := envelope.Decode(body, headers)
		if err != nil {
			if !errors.Is(err, envelope.ErrDecode) {
				t.Fatalf("unmarked error %v", err)
			}
			return
		}
		if ev.Mode != envelope.ModePlain && (ev.ID == "" || ev.Type == "" || ev.Source == "" || ev.SpecVersion != "1.0") {
			t.Fatalf("decoded an invalid cloudevent: %+v", ev)
		}
		if _, err := ev.Fields(); err != nil && !errors.Is(err, envelope.ErrDecode) {
			t.Fatalf("fields: %v", err)
		}
	})
}

// BenchmarkDecodeStructured decodes the CloudEvent every routed message is.
func BenchmarkDecodeStructured(b *testing.B) {
	body := []byte(`{"specversion":"1.0","id":"order-42/bench.order","source":"bench","type":"bench.order","subject":"order-42","time":"2026-11-24T08:00:00.123456789Z","datacontenttype":"application/json","data":{"id":"order-42","amount":12.5}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := envelope.Decode(body, nil); err != nil {
			b.Fatal(err)
		}
	}
}
