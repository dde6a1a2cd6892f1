package bridge_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/sagas/order"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sagabridge/sagabridge/bridge/admin"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/migrate"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/order/legacy"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics"
)

const handoffTopic = "legacy.orders.placed"

// migrationConfig is the dev wiring plus the OrderSaga's migration block.
// timeout is how long the shadow waits for each legacy step: long enough
// for a loaded machine, short enough that a skipped compensation shows.
func migrationConfig(t *testing.T, kit brokerKit, dir, mode string, percent int, timeout time.Duration) *config.Config {
	t.Helper()
	cfg := devConfig(t, kit, dir)
	if err := cfg.MergeMigration("migration.yaml", order.MigrationYAML(), "OrderSaga", mode, percent); err != nil {
		t.Fatal(err)
	}
	w := cfg.Migration.Workflows["OrderSaga"]
	w.Timeout = timeout
	cfg.Migration.Workflows["OrderSaga"] = w
	return cfg
}

// runLegacy starts the legacy choreography, taking orders from the
// bridge's hand-off topic.
func runLegacy(t *testing.T, kit brokerKit, group string, cfg legacy.Config) *legacy.Choreography {
	t.Helper()
	ps := kit.pubsub(t, group)
	cfg.OrdersTopic = handoffTopic
	c, err := legacy.New(cfg, ps.Publisher(), ps.Subscriber(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("legacy services: %v", err)
		}
	})
	return c
}

// watch collects the outcomes published on topic.
func watch(t *testing.T, kit brokerKit, group, topic string) *simulated.Watcher {
	t.Helper()
	w := simulated.NewWatcher(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, kit.pubsub(t, group).Subscriber(), topic) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// msgCounter counts the messages on some topics, by topic.
type msgCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func countMessages(t *testing.T, kit brokerKit, group string, topicNames ...string) *msgCounter {
	t.Helper()
	c := &msgCounter{n: map[string]int{}}
	sub := kit.pubsub(t, group).Subscriber()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, tp := range topicNames {
		ch, err := sub.Subscribe(ctx, tp)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for msg := range ch {
				c.mu.Lock()
				c.n[tp]++
				c.mu.Unlock()
				msg.Ack()
			}
		}()
	}
	return c
}

func (c *msgCounter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.n {
		n += v
	}
	return n
}

// TestShadowSagaFollowsLegacyChoreography runs the legacy order
// choreography on real NATS with the OrderSaga in shadow mode beside it:
// the saga sends no command and publishes no outcome, every order reaches
// the legacy flow once, a healthy run has no divergence, and a legacy
// inventory service that skips its compensation is caught on exactly the
// orders that needed it.
func TestShadowSagaFollowsLegacyChoreography(t *testing.T) {
	for _, tc := range []struct {
		name        string
		skipRelease bool
		// timeout must outlast the restart of the healthy case on a loaded
		// machine, and keeps the skipped compensations' case short.
		timeout time.Duration
	}{{"healthy legacy flow", false, 30 * time.Second}, {"legacy skips releasing stock", true, 5 * time.Second}} {
		t.Run(tc.name, func(t *testing.T) {
			kit := natsKit(t)
			cfg := migrationConfig(t, kit, t.TempDir(), config.MigrationShadow, 0, tc.timeout)
			metrics := admin.NewMetrics(admin.MetricsOptions{NoRuntime: true})
			commands := countMessages(t, kit, "test-commands", order.InventoryCommands, order.PaymentCommands, order.ShippingCommands)
			shadow := watch(t, kit, "test-shadow", topics.ShadowOutcomes)
			divergences := watch(t, kit, "test-divergences", topics.Divergences)
			s := startStack(t, kit, cfg, stackOptions{metrics: metrics})
			lg := runLegacy(t, kit, "legacy-choreography", legacy.Config{SkipRelease: tc.skipRelease})

			const n = 40
			failing := map[string]bool{}
			for i := 1; i <= n; i++ {
				o := simulated.Order{OrderID: orderID("shadow", i), Amount: 10, Quantity: 1, SKU: "sku-1"}
				switch {
				case i%5 == 0:
					o.FailPayment = true
				case i%7 == 0:
					o.FailShipping = true
				}
				if o.FailPayment || o.FailShipping {
					failing["order-"+o.OrderID] = true
				}
				publishOrder(t, s, "evt-"+o.OrderID, o)
			}
			if !tc.skipRelease {
				// The worker stops between steps of the shadow sagas and a
				// new one takes over the same database: each still finishes
				// once.
				testkit.WaitUntil(t, time.Minute, "some shadow outcomes", func() bool { return shadow.Count() >= n/4 })
				s.stop(t)
				s = startStack(t, kit, cfg, stackOptions{metrics: metrics})
			}
			testkit.WaitUntil(t, 2*time.Minute, "a shadow outcome per order", func() bool { return shadow.Count() >= n })
			time.Sleep(300 * time.Millisecond) // anything sent late would show now

			if got := commands.total(); got != 0 {
				t.Errorf("the shadow saga sent %d commands, want none", got)
			}
			if got := s.watcher.Count(); got != 0 {
				t.Errorf("%d outcomes on the outcome topic; a shadow saga publishes only to %s", got, topics.ShadowOutcomes)
			}
			if got := lg.Snapshot().Orders; got != n {
				t.Errorf("the legacy flow took %d orders, want each of the %d once", got, n)
			}
			missing := 0
			for id, rs := range shadow.Outcomes() {
				out := rs[0].Outcome
				if len(rs) != 1 || out.Migration == nil || out.Migration.Mode != topics.ModeShadow {
					t.Fatalf("%s: shadow outcomes %+v", id, rs)
				}
				want := topics.StatusCompleted
				if failing[id] {
					want = topics.StatusCompensated
				}
				if out.Status != want {
					t.Errorf("%s: would-be status %s, want %s (%+v)", id, out.Status, want, out.Steps)
				}
				divs := out.Migration.Divergences
				switch {
				case !tc.skipRelease && len(divs) != 0:
					t.Errorf("%s: healthy legacy flow, divergences %+v", id, divs)
				case tc.skipRelease && failing[id]:
					if len(divs) != 1 || divs[0].Kind != topics.DivergenceCompensationMissing || divs[0].Step != "reserve-inventory" {
						t.Errorf("%s: divergences %+v, want compensation-missing on reserve-inventory", id, divs)
					}
					missing++
				case tc.skipRelease && len(divs) != 0:
					t.Errorf("%s: order that needed no compensation has divergences %+v", id, divs)
				}
			}
			if tc.skipRelease && missing != len(failing) {
				t.Errorf("%d compensation-missing divergences, want %d", missing, len(failing))
			}
			testkit.WaitUntil(t, 10*time.Second, "divergence events", func() bool { return divergences.Count() == missing })
			if d := shadow.Duplicates(); d != 0 {
				t.Errorf("%d shadow outcomes published twice", d)
			}

			// The report reads both outcome topics back from the broker.
			nc, err := nats.Connect(cfg.Broker.NATS.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			var read []topics.Outcome
			for _, tp := range []string{cfg.Migration.ShadowOutcomesTopic, cfg.Outcomes.Topic} {
				got, err := migrate.ReadOutcomes(context.Background(), js, tp, time.Now().Add(-time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				read = append(read, got...)
			}
			rep := migrate.Summarize(read, time.Now().Add(-time.Hour), time.Now().Add(time.Minute), 2)
			if len(rep.Sagas) != 1 {
				t.Fatalf("report: %+v", rep)
			}
			r := rep.Sagas[0]
			if r.Instances != n || r.Shadow != n || r.Active != 0 || r.Diverging != missing || r.Agreeing != n-missing ||
				r.ByKind[topics.DivergenceCompensationMissing] != missing || r.Stuck != 0 || r.Stage != config.MigrationShadow {
				t.Errorf("report %+v, want %d shadow instances, %d diverging by compensation-missing", r, n, missing)
			}
			if missing > 0 && len(r.Examples[topics.DivergenceCompensationMissing]) != 2 {
				t.Errorf("report examples %v, want 2", r.Examples)
			}

			got := counter(t, metrics.Registry(), "sagabridge_migration_divergences_total", map[string]string{"saga": "OrderSaga", "kind": topics.DivergenceCompensationMissing})
			if int(got) != missing {
				t.Errorf("divergence metric %v, want %d", got, missing)
			}
		})
	}
}

// TestCanaryShareIsStableAndPinned drives 30 % of 1,000 orders with the
// saga and hands the rest to the legacy flow; a restart changes no
// instance's mode, and raising the share to 60 % moves no instance that
// already started.
func TestCanaryShareIsStableAndPinned(t *testing.T) {
	kit := natsKit(t)
	dir := t.TempDir()
	cfg := migrationConfig(t, kit, dir, config.MigrationCanary, 30, 30*time.Second)
	shadow := watch(t, kit, "test-shadow", topics.ShadowOutcomes)
	s := startStack(t, kit, cfg, stackOptions{participants: true})
	lg := runLegacy(t, kit, "legacy-choreography", legacy.Config{})

	const n = 1000
	for i := 1; i <= n; i++ {
		publishOrder(t, s, "evt-"+orderID("canary", i), simulated.Order{OrderID: orderID("canary", i), Amount: 1})
	}
	testkit.WaitUntil(t, 5*time.Minute, "every order finished, by the saga or in shadow", func() bool {
		return s.watcher.Count()+shadow.Count() >= n
	})
	active, shadowed := s.watcher.Outcomes(), shadow.Outcomes()
	share := 100 * float64(len(active)) / n
	t.Logf("canary at 30%%: the saga drove %d of %d orders (%.1f%%), the legacy flow %d", len(active), n, share, len(shadowed))
	if math.Abs(share-30) > 5 {
		t.Errorf("the saga drove %.1f%% of the orders, want 30%% ± 5", share)
	}
	modes := map[string]string{}
	for id, rs := range active {
		m := rs[0].Outcome.Migration
		if m == nil || m.Mode != topics.ModeActive || m.Bucket >= 30 || m.Percent != 30 {
			t.Fatalf("%s: active outcome with migration %+v", id, m)
		}
		modes[id] = topics.ModeActive
	}
	for id, rs := range shadowed {
		if _, dup := modes[id]; dup {
			t.Fatalf("%s: both an outcome and a shadow outcome", id)
		}
		if m := rs[0].Outcome.Migration; m == nil || m.Bucket < 30 || len(m.Divergences) != 0 {
			t.Fatalf("%s: shadow outcome with migration %+v", id, m)
		}
		modes[id] = topics.ModeShadow
	}
	if got := lg.Snapshot().Orders; got != len(shadowed) {
		t.Errorf("the legacy flow took %d orders, want the %d the saga did not drive", got, len(shadowed))
	}
	if got := len(s.parts.Ledger().Snapshot().Shipped); got != len(active) {
		t.Errorf("participants shipped %d orders on the saga's commands, want %d", got, len(active))
	}

	// A restart on the same database, and every order published again
	// under new message ids: no instance changes mode or starts twice, and
	// the legacy flow takes no order twice.
	s.stop(t)
	s = startStack(t, kit, cfg, stackOptions{participants: false})
	for i := 1; i <= n; i++ {
		msg, err := simulated.OrderMessage("evt-"+orderID("canary", i), simulated.Order{OrderID: orderID("canary", i), Amount: 1})
		if err != nil {
			t.Fatal(err)
		}
		msg.UUID = "again-" + msg.UUID
		if err := s.client.Publisher().Publish("orders.placed", msg); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitUntil(t, 2*time.Minute, "the repeated orders handled", func() bool {
		return s.bridge.Stats().DuplicateStarts.Load() >= n
	})
	for id, mode := range modes {
		if got := pinnedMode(t, s, id); got != mode {
			t.Errorf("%s: mode %s after restart, was %s", id, got, mode)
		}
	}
	if got := lg.Snapshot().Orders; got != len(shadowed) {
		t.Errorf("after the restart the legacy flow took %d orders, want still %d", got, len(shadowed))
	}

	// 60 %: slow legacy services keep the next orders in flight while the
	// share changes; they keep the mode they started with.
	runLegacy(t, kit, "legacy-choreography", legacy.Config{Delay: 200 * time.Millisecond})
	before := s.bridge.Stats().Started.Load()
	const m = 200
	for i := 1; i <= m; i++ {
		publishOrder(t, s, "evt-"+orderID("inflight", i), simulated.Order{OrderID: orderID("inflight", i), Amount: 1})
	}
	testkit.WaitUntil(t, time.Minute, "the in-flight orders started", func() bool { return s.bridge.Stats().Started.Load() >= before+m })
	raised := migrationConfig(t, kit, dir, config.MigrationCanary, 60, 30*time.Second)
	if err := s.bridge.UpdateMigration(raised); err != nil {
		t.Fatal(err)
	}
	moved, inflightActive := 0, 0
	for i := 1; i <= m; i++ {
		id := "order-" + orderID("inflight", i)
		want := topics.ModeShadow
		if migrate.Bucket(id) < 30 {
			want = topics.ModeActive
			inflightActive++
		}
		if got := pinnedMode(t, s, id); got != want {
			moved++
		}
	}
	if moved != 0 {
		t.Errorf("%d in-flight instances changed mode when the share went to 60%%", moved)
	}
	// New orders start at 60 %.
	newActive := 0
	for i := 1; i <= m; i++ {
		id := orderID("after", i)
		publishOrder(t, s, "evt-"+id, simulated.Order{OrderID: id, Amount: 1})
		if migrate.Bucket("order-"+id) < 60 {
			newActive++
		}
	}
	testkit.WaitUntil(t, time.Minute, "the new orders started", func() bool { return s.bridge.Stats().Started.Load() >= before+2*m })
	for i := 1; i <= m; i++ {
		id := "order-" + orderID("after", i)
		want := topics.ModeShadow
		if migrate.Bucket(id) < 60 {
			want = topics.ModeActive
		}
		if got := pinnedMode(t, s, id); got != want {
			t.Errorf("%s started after the change: mode %s, want %s", id, got, want)
		}
	}
	t.Logf("in flight at 30%%: %d of %d driven by the saga; started at 60%%: %d of %d", inflightActive, m, newActive, m)
}

// pinnedMode reads the mode an instance was started with from its input.
func pinnedMode(t *testing.T, s *stack, id string) string {
	t.Helper()
	st, err := s.bridge.Engine().Get(context.Background(), id)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	start, err := sagas.DecodeStart([]byte(st.Input))
	if err != nil || start.Migration == nil {
		t.Fatalf("%s: input %q has no assignment (%v)", id, st.Input, err)
	}
	return start.Migration.Mode
}
