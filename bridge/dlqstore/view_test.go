package dlqstore_test

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/bridge/dlqstore"
)

// TestViewKeepsEveryPayloadWhole: JSON stays JSON, other text stays
// text, anything else comes back byte for byte in base64; a list's view
// carries neither payload nor headers.
func TestViewKeepsEveryPayloadWhole(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	item := func(payload []byte) dlqstore.Item {
		return dlqstore.Item{Seq: 7, Ref: "7", StoredAt: at, Err: errors.New("bad attempts header"), Entry: dlq.Entry{
			ID: "m1", Payload: payload, Metadata: map[string]string{"ce_type": "order.created"},
			Failure: dlq.Failure{Kind: dlq.KindDecode, Reason: "not a CloudEvent", Route: "r", OriginTopic: "orders", Attempts: 3, FailedAt: at},
		}}
	}
	binary := []byte{0xff, 0x00, 0xfe}
	for _, c := range []struct {
		payload             []byte
		json, text, base64_ string
	}{
		{[]byte(`{"a":1}`), `{"a":1}`, "", ""},
		{[]byte("plain words"), "", "plain words", ""},
		{binary, "", "", base64.StdEncoding.EncodeToString(binary)},
	} {
		v := dlqstore.NewView(item(c.payload), true)
		if string(v.Payload) != c.json || v.PayloadText != c.text || v.PayloadBase64 != c.base64_ {
			t.Errorf("payload %q: view %q %q %q", c.payload, v.Payload, v.PayloadText, v.PayloadBase64)
		}
		if v.Seq != 7 || v.Ref != "7" || v.ID != "m1" || v.Kind != dlq.KindDecode || v.Attempts != 3 || v.PayloadBytes != len(c.payload) ||
			v.Headers["ce_type"] != "order.created" || v.Error != "bad attempts header" || !v.FailedAt.Equal(at) {
			t.Errorf("view %+v", v)
		}
	}
	if v := dlqstore.NewView(item([]byte(`{"a":1}`)), false); v.Payload != nil || v.Headers != nil || v.PayloadBytes != 7 {
		t.Errorf("list view %+v: no payload or headers, only their size", v)
	}
}
