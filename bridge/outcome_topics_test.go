package bridge_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/sagas/progress"
	"github.com/sagabridge/sagabridge/topics"
)

// TestOutcomeTopicsFromConfig: with only bridge.yaml's outcomes block
// set, a saga that names no topics (the Go OrderSaga) publishes its
// outcome to outcomes.topic and its progress to outcomes.progressTopic;
// a saga file's outcomeTopic and progressTopic override them for that
// saga. Nothing goes to the built-in default topics, and the engine's
// custom status (what `workflow get` reads) tracks both sagas.
func TestOutcomeTopicsFromConfig(t *testing.T) {
	for _, newKit := range brokerKits(t) {
		kit := newKit(t)
		t.Run(kit.name, func(t *testing.T) { outcomeTopicsFromConfig(t, kit) })
	}
}

func outcomeTopicsFromConfig(t *testing.T, kit brokerKit) {
	dir := t.TempDir()
	flow := strings.Replace(string(order.YAML()), "name: OrderSaga", "name: OrderFlow\noutcomeTopic: flow.outcomes\nprogressTopic: flow.progress", 1)
	if err := os.WriteFile(filepath.Join(dir, "flow.yaml"), []byte(flow), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := strings.Replace(string(order.BridgeYAML()), "outcomes:\n  topic: sagabridge.outcomes\n",
		"outcomes:\n  topic: shop.outcomes\n  progressTopic: shop.progress\n", 1)
	yml += `
sagas: [flow.yaml]
`
	yml = strings.Replace(yml, "routes:\n", `routes:
  - name: flow-placed
    topics: [orders.flow]
    match: event.type == "order.placed"
    start: {workflow: OrderFlow, instanceId: '"order-" + event.data.orderId'}
`, 1)
	path := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Outcomes.Topic != "shop.outcomes" {
		t.Fatalf("outcomes.topic = %q", cfg.Outcomes.Topic)
	}
	kit.configure(cfg)
	cfg.Engine.Embedded.DBPath = filepath.Join(dir, "wf.db")

	// Every topic an outcome or progress event might reach, watched from
	// before the first saga starts.
	var mu sync.Mutex
	seen := map[string][]topics.CloudEvent{}
	watch := kit.pubsub(t, "test-topics")
	for _, topic := range []string{"shop.outcomes", "shop.progress", "flow.outcomes", "flow.progress", topics.Outcomes, progress.DefaultTopic} {
		watchEvents(t, watch, topic, func(ev topics.CloudEvent) {
			mu.Lock()
			seen[topic] = append(seen[topic], ev)
			mu.Unlock()
		})
	}
	count := func(topic, subject, typ string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, ev := range seen[topic] {
			if ev.Subject == subject && (typ == "" || ev.Type == typ) {
				n++
			}
		}
		return n
	}

	s := startStack(t, kit, cfg, stackOptions{participants: true})
	publishOrder(t, s, "evt-go-1", simulated.Order{OrderID: "go-1", Amount: 3})
	if err := simulated.PublishOrder(s.client.Publisher(), "orders.flow", "evt-flow-1", simulated.Order{OrderID: "flow-1", Amount: 4, FailPayment: true}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, time.Minute, "both outcomes on their topics", func() bool {
		return count("shop.outcomes", "order-go-1", topics.OutcomeCompleted) == 1 &&
			count("flow.outcomes", "order-flow-1", topics.OutcomeCompensated) == 1
	})
	testkit.WaitUntil(t, 30*time.Second, "progress on the configured topics", func() bool {
		return count("shop.progress", "order-go-1", progress.Type) == 3 &&
			count("flow.progress", "order-flow-1", progress.Type) == 3
	})
	// The outcome goes out before the workflow finishes in the engine.
	for _, id := range []string{"order-go-1", "order-flow-1"} {
		testkit.WaitUntil(t, 30*time.Second, id+" to finish in the engine", func() bool {
			st, err := s.bridge.Engine().Get(t.Context(), id)
			return err == nil && st.RuntimeStatus == "COMPLETED"
		})
	}
	time.Sleep(500 * time.Millisecond) // anything misdirected has arrived by now
	for _, topic := range []string{topics.Outcomes, progress.DefaultTopic} {
		if n := count(topic, "order-go-1", "") + count(topic, "order-flow-1", ""); n != 0 {
			t.Errorf("%d events on %s, which the config does not name", n, topic)
		}
	}
	if n := count("shop.outcomes", "order-flow-1", "") + count("flow.outcomes", "order-go-1", ""); n != 0 {
		t.Errorf("%d outcomes on the other saga's topic", n)
	}
	for id, want := range map[string]string{"order-go-1": topics.StatusCompleted, "order-flow-1": topics.StatusCompensated} {
		st, err := s.bridge.Engine().Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		p, known := progress.Of(id, st.RuntimeStatus, st.Output, st.CustomStatus)
		if !known || p.Status != want {
			t.Errorf("%s: workflow get reads %+v (known %v), want status %s", id, p, known, want)
		}
	}
}
