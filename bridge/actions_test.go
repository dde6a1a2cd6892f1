package bridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/cmd/sagabridge/brokers"
	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/registry"
	"github.com/sagabridge/sagabridge/topics"
)

// Waiter starts with an input, waits for the event "go" and returns both.
func Waiter(ctx *workflow.WorkflowContext) (any, error) {
	var in any
	if err := ctx.GetInput(&in); err != nil {
		return nil, err
	}
	var got any
	if err := ctx.WaitForExternalEvent("go", time.Hour).Await(&got); err != nil {
		return nil, err
	}
	return map[string]any{"input": in, "event": got}, nil
}

const actionsYAML = `
limits:
  maxPayloadBytes: 4096
routes:
  - name: begin
    topics: [ctl]
    match: event.type == "begin"
    start:
      workflow: Waiter
      instanceId: event.data.id
      input: '{"who": event.data.who}'
  - name: go
    topics: [ctl]
    match: event.type == "go"
    raise:
      instanceId: event.data.id
      eventName: go
      payload: event.data.value
    onFinished: drop
    parkWindow: 30s
  - name: go-strict
    topics: [ctl]
    match: event.type == "go-strict"
    raise:
      instanceId: event.data.id
      eventName: '"g" + "o"'
    parkWindow: 1s
  - name: signal
    topics: [ctl]
    match: event.type == "signal"
    startOrRaise:
      workflow: Waiter
      instanceId: event.data.id
      eventName: go
      payload: event.data.value
  - name: pause
    topics: [ctl]
    match: event.type == "pause"
    suspend: {instanceId: event.data.id, reason: paused by test}
  - name: unpause
    topics: [ctl]
    match: event.type == "unpause"
    resume: {instanceId: event.data.id, reason: resumed by test}
  - name: stop
    topics: [ctl]
    match: event.type == "stop"
    terminate: {instanceId: event.data.id, reason: stopped by test}
  - name: forget
    topics: [ctl]
    match: event.type == "forget"
    purge: {instanceId: event.data.id}
  - name: legacy-begin
    topics: [legacy]
    plain: {typeField: kind, idField: eventId}
    match: event.type == "begin"
    start:
      workflow: Waiter
      instanceId: '"legacy-" + event.data.ref'
`

// TestRouteActions drives every action and every semantic of the routing
// language through a real NATS server into the embedded engine.
func TestRouteActions(t *testing.T) {
	for _, newKit := range brokerKits(t) {
		kit := newKit(t)
		t.Run(kit.name, func(t *testing.T) { routeActions(t, kit) })
	}
}

func routeActions(t *testing.T, kit brokerKit) {
	cfg, err := config.Parse("actions.yaml", []byte(actionsYAML))
	if err != nil {
		t.Fatal(err)
	}
	kit.configure(cfg)
	cfg.Engine.Embedded.DBPath = filepath.Join(t.TempDir(), "wf.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := registry.New()
	if err := reg.RegisterWorkflow("Waiter", Waiter); err != nil {
		t.Fatal(err)
	}
	b, err := bridge.New(ctx, cfg, bridge.Options{Connect: brokers.Connect, Sagas: reg})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = b.Run(ctx) }()
	defer func() { cancel(); wg.Wait(); _ = b.Close(context.Background()) }()
	client := kit.pubsub(t, "actions-client")
	dead := collectDeadLetters(t, ctx, client, cfg.DLQ.Topic)
	eng := b.Engine()
	seq := 0
	send := func(topic, typ string, data any) {
		t.Helper()
		seq++
		ev, err := topics.NewCloudEvent("ev-"+typ+"-"+itoa(seq), "test", typ, "", time.Now(), data)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := ev.Marshal()
		if err := client.Publisher().Publish(topic, message.NewMessage(ev.ID, body)); err != nil {
			t.Fatal(err)
		}
	}
	status := func(id string) string {
		st, err := eng.Get(context.Background(), id)
		if errors.Is(err, engine.ErrNotFound) {
			return "NOT_FOUND"
		}
		if err != nil {
			return "ERROR " + err.Error()
		}
		return st.RuntimeStatus
	}
	waitStatus := func(id, want string) {
		t.Helper()
		testkit.WaitUntil(t, 20*time.Second, id+" "+want, func() bool { return status(id) == want })
	}
	stats := b.Stats()

	t.Run("start with CEL input", func(t *testing.T) {
		send("ctl", "begin", map[string]any{"id": "a", "who": "ann"})
		waitStatus("a", "RUNNING")
		if st, _ := eng.Get(ctx, "a"); st.Input != `{"who":"ann"}` {
			t.Fatalf("input %s", st.Input)
		}
	})
	t.Run("duplicate start is success", func(t *testing.T) {
		send("ctl", "begin", map[string]any{"id": "a", "who": "ann"})
		testkit.WaitUntil(t, 10*time.Second, "duplicate counted", func() bool { return stats.DuplicateStarts.Load() == 1 })
	})
	t.Run("raise", func(t *testing.T) {
		send("ctl", "go", map[string]any{"id": "a", "value": 42})
		waitStatus("a", "COMPLETED")
		if st, _ := eng.Get(ctx, "a"); st.Output != `{"event":42,"input":{"who":"ann"}}` {
			t.Fatalf("output %s", st.Output)
		}
	})
	t.Run("raise on finished instance, drop policy", func(t *testing.T) {
		send("ctl", "go", map[string]any{"id": "a", "value": 1})
		testkit.WaitUntil(t, 10*time.Second, "dropped", func() bool { return stats.DroppedFinished.Load() == 1 })
	})
	t.Run("raise on finished instance, dead-letter policy", func(t *testing.T) {
		send("ctl", "go-strict", map[string]any{"id": "a"})
		e := dead.wait(t, dlq.KindFinished)
		if e.Failure.Route != "go-strict" || e.Failure.OriginTopic != "ctl" {
			t.Fatalf("dead letter %+v", e.Failure)
		}
	})
	t.Run("raise on missing instance is parked, then dead-lettered after the window", func(t *testing.T) {
		send("ctl", "go-strict", map[string]any{"id": "never"})
		e := dead.wait(t, dlq.KindNotFound)
		if stats.Parked.Load() < 1 || e.Failure.Attempts < 2 || !strings.Contains(e.Failure.Reason, "after waiting 1s") {
			t.Fatalf("parked %d, dead letter %+v", stats.Parked.Load(), e.Failure)
		}
	})
	t.Run("startOrRaise starts then raises", func(t *testing.T) {
		send("ctl", "signal", map[string]any{"id": "b", "value": 7})
		waitStatus("b", "COMPLETED")
		if st, _ := eng.Get(ctx, "b"); !strings.Contains(st.Output, `"event":7`) {
			t.Fatalf("output %s", st.Output)
		}
	})
	t.Run("suspend, resume, terminate, purge", func(t *testing.T) {
		send("ctl", "begin", map[string]any{"id": "c", "who": "cy"})
		waitStatus("c", "RUNNING")
		send("ctl", "pause", map[string]any{"id": "c"})
		waitStatus("c", "SUSPENDED")
		send("ctl", "unpause", map[string]any{"id": "c"})
		waitStatus("c", "RUNNING")
		send("ctl", "stop", map[string]any{"id": "c"})
		waitStatus("c", "TERMINATED")
		send("ctl", "forget", map[string]any{"id": "c"})
		waitStatus("c", "NOT_FOUND")
	})
	t.Run("plain legacy JSON", func(t *testing.T) {
		body := []byte(`{"kind":"begin","eventId":"legacy-1","ref":"x"}`)
		if err := client.Publisher().Publish("legacy", message.NewMessage("legacy-1", body)); err != nil {
			t.Fatal(err)
		}
		waitStatus("legacy-x", "RUNNING")
	})
	t.Run("CEL error at run time is dead-lettered", func(t *testing.T) {
		send("ctl", "begin", map[string]any{"who": "nobody"})
		e := dead.wait(t, dlq.KindEval)
		if !strings.Contains(e.Failure.Reason, "route begin: instanceId event.data.id: no such key: id") {
			t.Fatalf("dead letter %+v", e.Failure)
		}
	})
	t.Run("illegal instance ID is dead-lettered", func(t *testing.T) {
		send("ctl", "begin", map[string]any{"id": "a b/c", "who": "x"})
		e := dead.wait(t, dlq.KindEval)
		if !strings.Contains(e.Failure.Reason, "characters") {
			t.Fatalf("dead letter %+v", e.Failure)
		}
	})
	t.Run("payload over the limit is dead-lettered", func(t *testing.T) {
		send("ctl", "begin", map[string]any{"id": "big", "who": strings.Repeat("x", 5000)})
		e := dead.wait(t, dlq.KindTooLarge)
		if len(e.Payload) < 5000 {
			t.Fatalf("original payload not kept: %d bytes", len(e.Payload))
		}
		if status("big") != "NOT_FOUND" {
			t.Fatal("oversized event started a workflow")
		}
	})
}

// deadLetters collects dead-letter entries as they arrive.
type deadLetters struct {
	mu      sync.Mutex
	entries []dlq.Entry
}

func collectDeadLetters(t *testing.T, ctx context.Context, client bridge.Broker, topic string) *deadLetters {
	t.Helper()
	ch, err := client.Subscriber().Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	d := &deadLetters{}
	go func() {
		for msg := range ch {
			e, err := dlq.Parse(msg)
			if err != nil {
				t.Errorf("unreadable dead letter: %v", err)
			}
			d.mu.Lock()
			d.entries = append(d.entries, e)
			d.mu.Unlock()
			msg.Ack()
		}
	}()
	return d
}

// wait returns (and removes) the first entry of a kind.
func (d *deadLetters) wait(t *testing.T, kind string) dlq.Entry {
	t.Helper()
	var found dlq.Entry
	testkit.WaitUntil(t, 20*time.Second, "a dead letter of kind "+kind, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		for i, e := range d.entries {
			if e.Failure.Kind == kind {
				found = e
				d.entries = append(d.entries[:i], d.entries[i+1:]...)
				return true
			}
		}
		return false
	})
	return found
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
