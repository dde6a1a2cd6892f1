package sagas_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/declarative"
	"github.com/sagabridge/sagabridge/sagas/progress"
	"github.com/sagabridge/sagabridge/topics"
)

// pinnedV1 waits for a "go" event between its two steps, so a test can
// change the loaded definitions while an instance is in flight.
const pinnedV1 = `
name: Pinned
version: 1
steps:
  - name: x
    command: {topic: test.commands, type: x.do, replyEvent: x.do.reply}
    timeout: 10s
  - name: gate
    wait: {event: go}
    timeout: 1m
  - name: y
    command: {topic: test.commands, type: y.do, replyEvent: y.do.reply}
    timeout: 10s
`

// pinnedV2 adds a step.
const pinnedV2 = `
name: Pinned
version: 2
steps:
  - name: x
    command: {topic: test.commands, type: x.do, replyEvent: x.do.reply}
    timeout: 10s
  - name: gate
    wait: {event: go}
    timeout: 1m
  - name: y
    command: {topic: test.commands, type: y.do, replyEvent: y.do.reply}
    timeout: 10s
  - name: w
    command: {topic: test.commands, type: w.do, replyEvent: w.do.reply}
    timeout: 10s
`

func loadDefs(t *testing.T, docs ...string) *declarative.Definitions {
	t.Helper()
	var all []declarative.Definition
	for i, doc := range docs {
		defs, err := declarative.ParseDefinitions("doc"+string(rune('1'+i))+".yaml", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, defs...)
	}
	d, err := declarative.NewDefinitions(nil, all...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDeclarativeVersionPinning rolls out Pinned v2 while a v1 instance is
// in flight: after a restart with both versions loaded, the v1 instance
// finishes as v1, and new starts get v2. A v1 edited in place fails the
// instances that started on the old text instead of replaying them wrongly.
func TestDeclarativeVersionPinning(t *testing.T) {
	db := filepath.Join(t.TempDir(), "wf.db")
	v1 := loadDefs(t, pinnedV1)
	k := newKit(t, kitOptions{db: db, workflows: v1.Workflows()})
	start := func(k *kit, d *declarative.Definitions, id string, version int) {
		st, err := d.Start("Pinned", version, []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		in, err := st.Encode()
		if err != nil {
			t.Fatal(err)
		}
		k.StartRaw("Pinned", id, in)
	}
	start(k, v1, "old-1", 0) // latest = 1
	start(k, v1, "old-2", 1)
	testkit.WaitUntil(t, 10*time.Second, "both v1 instances at the gate", func() bool {
		at := 0
		for _, ev := range k.Published(progress.DefaultTopic) {
			if p, err := progress.Decode(ev); err == nil && p.Step == "gate" {
				at++
			}
		}
		return at == 2
	})
	k.Close()

	// Deploy v2 next to v1.
	both := loadDefs(t, pinnedV1, pinnedV2)
	if v, _ := both.Latest("Pinned"); v != 2 {
		t.Fatalf("latest %d", v)
	}
	k2 := newKit(t, kitOptions{db: db, workflows: both.Workflows()})
	k2.Raise("old-1", "go", nil)
	if out := k2.Outcome("old-1"); out.Status != topics.StatusCompleted || len(out.Steps) != 3 {
		t.Errorf("v1 instance after the roll-out: %+v", out)
	}
	start(k2, both, "new-1", 0)
	k2.Raise("new-1", "go", nil)
	if out := k2.Outcome("new-1"); len(out.Steps) != 4 || out.Steps[3].Name != "w" {
		t.Errorf("new instance did not run v2: %+v", out)
	}
	k2.Close()

	// Someone edits v1 in place (a longer timeout): the instance that
	// started on the old text fails loudly instead of running other steps.
	// The saga refuses to replay (ErrDefinitionChanged); durabletask-go
	// v0.11 then reports the history the refusal left unmatched, so the
	// failure names the step the old text had scheduled.
	edited := loadDefs(t, strings.Replace(pinnedV1, "timeout: 1m", "timeout: 2m", 1), pinnedV2)
	k3 := newKit(t, kitOptions{db: db, workflows: edited.Workflows()})
	k3.Raise("old-2", "go", nil)
	st := k3.Wait("old-2", 30*time.Second)
	if !failedWith(st, declarative.ErrDefinitionChanged) && !failedWith(st, errors.New("a previous execution called CallActivity for 'sagabridge.publish'")) {
		t.Errorf("edited v1: status %s, failure %q", st.RuntimeStatus, st.Failure)
	}

	// Unpinned and unknown starts fail at once, in the envelope and in the
	// start input of releases before it.
	unpinned, _ := sagas.Start{Input: json.RawMessage(`{}`)}.Encode()
	unknown, _ := sagas.Start{Version: 9}.Encode()
	k3.StartRaw("Pinned", "unpinned", unpinned)
	k3.StartRaw("Pinned", "unknown", unknown)
	k3.StartRaw("Pinned", "unpinned-legacy", []byte(`{"input":{}}`))
	k3.StartRaw("Pinned", "unknown-legacy", []byte(`{"version":9}`))
	for id, want := range map[string]error{
		"unpinned": declarative.ErrVersionNotPinned, "unknown": declarative.ErrUnknownDefinition,
		"unpinned-legacy": declarative.ErrVersionNotPinned, "unknown-legacy": declarative.ErrUnknownDefinition,
	} {
		st := k3.Wait(id, 10*time.Second)
		if !failedWith(st, want) {
			t.Errorf("%s: status %s, failure %q", id, st.RuntimeStatus, st.Failure)
		}
	}
	if _, err := edited.Start("Nope", 0, nil); !errors.Is(err, declarative.ErrUnknownDefinition) {
		t.Errorf("Start of an unknown saga: %v", err)
	}
	in, err := edited.Start("Pinned", 1, []byte(`{"a":1}`))
	if err != nil || in.Version != 1 || in.Digest == "" || string(in.Input) != `{"a":1}` {
		t.Errorf("start %+v %v", in, err)
	}
}

// failedWith checks a FAILED instance's error. durabletask-go v0.5.0's
// client drops an instance's failure details when it fetches its metadata
// (client_grpc.go, makeOrchestrationMetadata), so engine.Status.Failure is
// empty on both engines; the message is checked only when there is one.
func failedWith(st engine.Status, want error) bool {
	return st.RuntimeStatus == "FAILED" && (st.Failure == "" || strings.Contains(st.Failure, want.Error()))
}
