package sagaview

import (
	"testing"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/migration"
)

// TestStartInputShowsTheSagasOwn: the history shows a saga's own input,
// without the envelope it started with or the wrappers of earlier
// releases.
func TestStartInputShowsTheSagasOwn(t *testing.T) {
	env, err := sagas.Start{Version: 1, Digest: "d", TraceParent: "tp", Migration: &migration.Assignment{Mode: "active"},
		Input: []byte(`{"orderId":"o-1"}`)}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, raw, want string }{
		{"envelope", string(env), `{"orderId":"o-1"}`},
		{"plain", `{"orderId":"o-1"}`, `{"orderId":"o-1"}`},
		{"earlier release, declarative", `{"version":1,"digest":"d","input":{"orderId":"o-1"}}`, `{"orderId":"o-1"}`},
		{"earlier release, traced and migrating",
			`{"sagabridge.traceparent":"tp","sagabridge.input":{"sagabridgeMigration":{"mode":"active"},"input":{"orderId":"o-1"}}}`, `{"orderId":"o-1"}`},
		{"not JSON", `plain text`, `"plain text"`},
	} {
		if got := string(startInput(tc.raw)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
