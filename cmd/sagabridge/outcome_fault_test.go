package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/dapr/durabletask-go/workflow"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"gopkg.in/yaml.v3"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/sagas/registry"
	"github.com/sagabridge/sagabridge/topics"
)

// gateActivity is the name outcomeGate.Gate is registered under.
const gateActivity = "Gate"

// GatedSaga has one step, an activity the test holds until the broker is
// down, so that the only broker call left, the outcome, meets a dead broker.
func GatedSaga(ctx *workflow.WorkflowContext) (any, error) {
	return sagas.Run(ctx, sagas.Saga{
		Name:       "GatedSaga",
		NoProgress: true,
		Steps:      []sagas.Step{{Name: "gate", Activity: &sagas.Activity{Name: gateActivity}}},
	})
}

// outcomeGate holds every GatedSaga in its step until opened, except the
// warm-up one ("gated-warm-up"), which passes at once.
type outcomeGate struct {
	open chan struct{}
	mu   sync.Mutex
	in   map[string]bool // instances that reached the gate
}

func (g *outcomeGate) Gate(ctx workflow.ActivityContext) (any, error) {
	req, err := sagas.DecodeRequest(ctx)
	if err != nil {
		return nil, err
	}
	if req.InstanceID == "gated-warm-up" {
		return "passed", nil
	}
	g.mu.Lock()
	g.in[req.InstanceID] = true
	g.mu.Unlock()
	select {
	case <-g.open:
		return "passed", nil
	case <-ctx.Context().Done():
		return nil, ctx.Context().Err()
	}
}

func (g *outcomeGate) reached() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.in)
}

// failedOutcomes records outcome publishes the broker refused, by event id.
type failedOutcomes struct {
	mu  sync.Mutex
	ids map[string]int
	err error
}

func (f *failedOutcomes) distinct() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ids)
}

// observedBroker passes everything to a real broker and notes which
// outcome publishes failed; it changes nothing.
type observedBroker struct {
	bridge.Broker
	failed *failedOutcomes
}

func (b observedBroker) Publisher() message.Publisher {
	return observedPublisher{Publisher: b.Broker.Publisher(), failed: b.failed}
}

type observedPublisher struct {
	message.Publisher
	failed *failedOutcomes
}

func (p observedPublisher) Publish(topic string, msgs ...*message.Message) error {
	err := p.Publisher.Publish(topic, msgs...)
	if err != nil && topic == topics.Outcomes {
		p.failed.mu.Lock()
		for _, m := range msgs {
			p.failed.ids[m.UUID]++
		}
		p.failed.err = err
		p.failed.mu.Unlock()
	}
	return err
}

const gatedRoutes = `
routes:
  - name: gated
    topics: [gated.orders]
    match: event.type == "order.placed"
    start:
      workflow: GatedSaga
      instanceId: '"gated-" + event.data.orderId'
`

// TestOutcomePublishRetriedWhileBrokerDown holds sagas just before their
// outcome, stops the broker, lets them go, and checks that every outcome
// publish failed at least once, then starts the broker again on the same
// port and data (JetStream's file store; kfake's data directory): every
// outcome is delivered by the saga's durable retries, one per saga (on
// NATS also exactly once on the wire; Kafka consumers dedupe on the id).
func TestOutcomePublishRetriedWhileBrokerDown(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and restarts a broker")
	}
	for _, newBroker := range []func(*testing.T, string) *restartableBroker{natsRestartable, kafkaRestartable} {
		dir := t.TempDir()
		br := newBroker(t, dir)
		t.Run(br.name, func(t *testing.T) { outcomeRetried(t, dir, br) })
	}
}

func outcomeRetried(t *testing.T, dir string, br *restartableBroker) {
	const n = 20
	var routes struct {
		Routes any `yaml:"routes"`
	}
	if err := yaml.Unmarshal([]byte(gatedRoutes), &routes); err != nil {
		t.Fatal(err)
	}
	doc, err := yaml.Marshal(map[string]any{
		"broker":   br.yaml,
		"engine":   embeddedEngine(dir),
		"outcomes": map[string]any{"topic": topics.Outcomes},
		"dlq":      map[string]any{"topic": "sagabridge.dlq"},
		"routes":   routes.Routes,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("outcome-fault.yaml", doc)
	if err != nil {
		t.Fatal(err)
	}
	gate := &outcomeGate{open: make(chan struct{}), in: map[string]bool{}}
	failed := &failedOutcomes{ids: map[string]int{}}
	gated := registry.New()
	if err := gated.RegisterWorkflow("GatedSaga", GatedSaga); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b, err := bridge.New(ctx, cfg, bridge.Options{
		Logger:     zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		Broker:     observedBroker{Broker: br.connect(t, "sagabridge"), failed: failed},
		Sagas:      gated,
		Activities: map[string]workflow.Activity{gateActivity: gate.Gate},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(ctx) }()
	var once sync.Once
	openGate := func() { once.Do(func() { close(gate.open) }) }
	t.Cleanup(func() {
		openGate()
		cancel()
		if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("bridge run: %v", err)
		}
		if err := b.Close(context.Background()); err != nil {
			t.Logf("bridge close: %v", err)
		}
	})

	watcher := simulated.NewWatcher(nil)
	watch := br.connect(t, "test-watcher")
	client := br.connect(t, "test-client")
	wctx, wcancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = watcher.Run(wctx, watch.Subscriber(), topics.Outcomes) }()
	t.Cleanup(func() { wcancel(); wg.Wait() })

	// One saga runs through first, as in a worker that has been up a
	// while: the outcome stream exists and the bridge knows it.
	if err := simulated.PublishOrder(client.Publisher(), "gated.orders", "evt-gated-warm-up", simulated.Order{OrderID: "warm-up"}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, time.Minute, "the warm-up outcome", func() bool { return watcher.Count() == 1 })
	for i := 1; i <= n; i++ {
		o := simulated.Order{OrderID: fmt.Sprintf("%03d", i), Amount: float64(i)}
		if err := simulated.PublishOrder(client.Publisher(), "gated.orders", "evt-gated-"+o.OrderID, o); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitUntil(t, time.Minute, "every saga at the gate", func() bool { return gate.reached() >= n })
	br.Stop()
	stoppedAt := time.Now()
	openGate()
	testkit.WaitUntil(t, 2*time.Minute, "an outcome publish of every saga to fail", func() bool { return failed.distinct() >= n })
	failed.mu.Lock()
	t.Logf("every outcome publish failed at least once (%s after the broker stopped); last error: %v",
		time.Since(stoppedAt).Round(time.Millisecond), failed.err)
	failed.mu.Unlock()
	if got := watcher.Count(); got != 1 {
		t.Fatalf("%d outcomes arrived with the broker down", got-1)
	}
	br.Start(t)

	testkit.WaitUntil(t, 3*time.Minute, fmt.Sprintf("%d outcomes after the broker returned", n), func() bool { return watcher.Count() >= n+1 })
	time.Sleep(time.Second) // a duplicate would arrive now
	t.Logf("outcomes delivered %s after the broker stopped", time.Since(stoppedAt).Round(time.Millisecond))
	outcomes := watcher.Outcomes()
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("gated-%03d", i)
		got := outcomes[id]
		if len(got) != 1 || got[0].Outcome.Status != topics.StatusCompleted {
			t.Errorf("%s: %+v, want one completed outcome", id, got)
		}
	}
	t.Logf("outcome deliveries that repeated an id (dropped by the watcher): %d", watcher.Duplicates())
	if d := watcher.Duplicates(); br.dedupes && d != 0 {
		t.Errorf("%d outcome deliveries repeated an id on a broker that dedupes", d)
	}
}
