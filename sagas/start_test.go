package sagas_test

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/declarative"
	"github.com/sagabridge/sagabridge/sagas/migration"
	"github.com/sagabridge/sagabridge/sagas/progress"
	"github.com/sagabridge/sagabridge/topics"
)

// The start inputs of releases before the envelope, as they wrote them:
// a trace context around a migration assignment around a declarative
// saga's pinned version, each optional.
func legacyTraced(traceParent, traceState string, input []byte) []byte {
	b, _ := json.Marshal(struct {
		TraceParent string          `json:"sagabridge.traceparent"`
		TraceState  string          `json:"sagabridge.tracestate,omitempty"`
		Input       json.RawMessage `json:"sagabridge.input,omitempty"`
	}{traceParent, traceState, input})
	return b
}

func legacyMigration(a migration.Assignment, input []byte) []byte {
	b, _ := json.Marshal(struct {
		Migration *migration.Assignment `json:"sagabridgeMigration"`
		Input     json.RawMessage       `json:"input"`
	}{&a, input})
	return b
}

func legacyPinned(version int, digest string, input []byte) []byte {
	b, _ := json.Marshal(struct {
		Version int             `json:"version"`
		Digest  string          `json:"digest,omitempty"`
		Input   json.RawMessage `json:"input,omitempty"`
	}{version, digest, input})
	return b
}

func TestStartRoundTrips(t *testing.T) {
	a := &migration.Assignment{Mode: topics.ModeShadow, Stage: "canary", Percent: 30, Bucket: 77}
	want := sagas.Start{Version: 2, Digest: "d1", Migration: a, TraceParent: "tp", TraceState: "ts", Input: json.RawMessage(`{"orderId":"o-1"}`)}
	raw, err := want.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := sagas.DecodeStart(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 2 || got.Digest != "d1" || *got.Migration != *a || got.TraceParent != "tp" || got.TraceState != "ts" || string(got.Input) != `{"orderId":"o-1"}` {
		t.Fatalf("decoded %+v from %s", got, raw)
	}
	if pinned, err := got.Pinned(); err != nil || pinned.Version != 2 || string(pinned.Input) != `{"orderId":"o-1"}` {
		t.Errorf("pinned %+v %v", pinned, err)
	}
	// Plain data is the saga's input, whatever keys it has.
	for _, plain := range []string{`{"orderId":"o-2","sagabridgeMigration":{}}`, `{"orderId":"o-3","sagabridge.start":{}}`, `[1]`, `"x"`, ``} {
		st, err := sagas.DecodeStart([]byte(plain))
		if err != nil || st.Migration != nil || st.TraceParent != "" || string(st.Input) != plain {
			t.Errorf("plain input %q read as %+v %v", plain, st, err)
		}
	}
	if _, err := sagas.DecodeStart([]byte(`{"sagabridge.start":7}`)); err == nil {
		t.Error("a broken envelope was read")
	}
}

// TestStartOfEarlierRelease reads every nesting of the wrappers earlier
// releases wrote.
func TestStartOfEarlierRelease(t *testing.T) {
	a := migration.Assignment{Mode: topics.ModeActive, Stage: "canary", Percent: 30, Bucket: 7}
	in := []byte(`{"orderId":"o-1"}`)
	for _, tc := range []struct {
		name    string
		raw     []byte
		trace   string
		migrate bool
		version int
	}{
		{"traced", legacyTraced("tp", "", in), "tp", false, 0},
		{"migrating", legacyMigration(a, in), "", true, 0},
		{"traced migrating", legacyTraced("tp", "", legacyMigration(a, in)), "tp", true, 0},
		{"pinned", legacyPinned(3, "d", in), "", false, 3},
		{"traced migrating pinned", legacyTraced("tp", "", legacyMigration(a, legacyPinned(3, "d", in))), "tp", true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := sagas.DecodeStart(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			if tc.version > 0 {
				if st, err = st.Pinned(); err != nil || st.Version != tc.version || st.Digest != "d" {
					t.Fatalf("pinned %+v %v", st, err)
				}
			}
			if st.TraceParent != tc.trace || (st.Migration != nil) != tc.migrate || string(st.Input) != string(in) {
				t.Errorf("read %+v (input %s)", st, st.Input)
			}
			if tc.migrate && *st.Migration != a {
				t.Errorf("assignment %+v", *st.Migration)
			}
		})
	}
	if _, err := sagas.DecodeStart(legacyTraced("tp", "", []byte(`{"sagabridgeMigration":7}`))); err == nil {
		t.Error("a broken migration wrapper was read")
	}
}

// TestStartOfEarlierReleaseReplays upgrades a worker under an instance in
// flight that an earlier release started (its history holds the nested
// wrappers): the new worker replays it and finishes it with its trace
// context and migration assignment.
func TestStartOfEarlierReleaseReplays(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	db := filepath.Join(t.TempDir(), "wf.db")
	defs := loadDefs(t, pinnedV1)
	digest, _ := defs.Digest("Pinned", 1)
	a := migration.Assignment{Mode: topics.ModeActive, Stage: "canary", Percent: 100, Bucket: 3}
	raw := legacyTraced(tp, "", legacyMigration(a, legacyPinned(1, digest, []byte(`{}`))))

	k := newKit(t, kitOptions{db: db, workflows: defs.Workflows()})
	k.StartRaw("Pinned", "earlier-1", raw)
	testkit.WaitUntil(t, 10*time.Second, "the instance at the gate", func() bool {
		for _, ev := range k.Published(progress.DefaultTopic) {
			if p, err := progress.Decode(ev); err == nil && p.InstanceID == "earlier-1" && p.Step == "gate" {
				return true
			}
		}
		return false
	})
	k.Close()

	k2 := newKit(t, kitOptions{db: db, workflows: loadDefs(t, pinnedV1).Workflows()})
	k2.Raise("earlier-1", "go", nil)
	out := k2.Outcome("earlier-1")
	if out.Status != topics.StatusCompleted || len(out.Steps) != 3 || out.TraceParent != tp {
		t.Fatalf("outcome after the upgrade %+v", out)
	}
	if out.Migration == nil || out.Migration.Mode != topics.ModeActive || out.Migration.Bucket != 3 {
		t.Errorf("migration %+v", out.Migration)
	}
}

// startInput is the encoded start of declarative saga name.
func startInput(d *declarative.Definitions, name string, version int, input []byte) ([]byte, error) {
	st, err := d.Start(name, version, input)
	if err != nil {
		return nil, err
	}
	return st.Encode()
}
