package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/cmd/sagabridge/brokers"
	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/sagas/trip"
	tripsim "github.com/sagabridge/sagabridge/sagas/trip/simulated"
)

// TestTripSagaEndToEnd runs the second example saga, declared in YAML
// only, against participants that own their message schemas: the hotel
// reads plain JSON with a client header, the airline CloudEvents of its
// own type; neither sees a topics.Command. Replies are judged and their
// results extracted by the saga's CEL, and a later step's message carries
// an earlier step's result. Outcomes go to the config's outcome topic.
func TestTripSagaEndToEnd(t *testing.T) {
	for _, newKit := range brokerKits(t) {
		kit := newKit(t)
		t.Run(kit.name, func(t *testing.T) { tripSagaEndToEnd(t, kit) })
	}
}

func tripSagaEndToEnd(t *testing.T, kit brokerKit) {
	const n = 12
	dir := t.TempDir()
	for name, data := range map[string][]byte{"trip.yaml": trip.YAML(), "bridge.yaml": trip.ConfigYAML()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "bridge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kit.configure(cfg)
	cfg.Engine.Embedded.DBPath = filepath.Join(dir, "wf.db")
	if warnings, err := bridge.CheckConfig(cfg, bridge.Options{Sagas: orderSagas(t)}); err != nil || len(warnings) > 0 {
		t.Fatalf("the example config: %v %v", warnings, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	b, err := bridge.New(ctx, cfg, bridge.Options{Connect: brokers.Connect, Logger: zaptest.NewLogger(t).Named("bridge"), Sagas: orderSagas(t)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = b.Close(context.Background())
	})
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && ctx.Err() == nil {
				t.Errorf("component: %v", err)
			}
		}()
	}
	run(func() error { return b.Run(ctx) })
	watcher := simulated.NewWatcher(nil)
	watch := kit.pubsub(t, "test-watcher")
	run(func() error { return watcher.Run(ctx, watch.Subscriber(), cfg.Outcomes.Topic) })
	legacy := kit.pubsub(t, "legacy-services")
	svc := tripsim.New(tripsim.Config{}, legacy.Publisher(), legacy.Subscriber())
	run(func() error { return svc.Run(ctx) })
	client := kit.pubsub(t, "test-client")

	trips := map[string]tripsim.Trip{}
	start := time.Now()
	for i := 1; i <= n; i++ {
		tr := tripsim.Trip{TripID: fmt.Sprintf("t-%03d", i), Traveller: "Ada", Flight: "LH123", Nights: 3}
		switch {
		case i%4 == 0:
			tr.Flight = tripsim.FullFlight
		case i%5 == 0:
			tr.Nights = tripsim.MaxNights + 1
		}
		trips["trip-"+tr.TripID] = tr
		if err := tripsim.PublishTrip(client.Publisher(), "evt-"+tr.TripID, tr); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitUntil(t, 2*time.Minute, "every trip's outcome", func() bool { return watcher.Count() >= n })
	t.Logf("%s: %d trips ended in %s", kit.name, n, time.Since(start).Round(time.Millisecond))

	led := svc.Ledger()
	outcomes := watcher.Outcomes()
	for id, tr := range trips {
		got := outcomes[id]
		if len(got) != 1 {
			t.Errorf("%s: %d outcomes", id, len(got))
			continue
		}
		o := got[0].Outcome
		status, compensated := tripsim.Expected(tr)
		if o.Status != status || !slices.Equal(o.Compensated, compensated) || o.Saga != "TripSaga" {
			t.Errorf("%s: %s compensated %v (%s), want %s compensated %v", id, o.Status, o.Compensated, o.Error, status, compensated)
		}
		switch {
		case tr.Nights > tripsim.MaxNights:
			// The hotel's own reason, read by the reply's CEL.
			if !strings.Contains(o.Error, "no room for 15 nights") || led.Holds[tr.TripID] != 0 {
				t.Errorf("%s: error %q, holds %d", id, o.Error, led.Holds[tr.TripID])
			}
		case tr.Flight == tripsim.FullFlight:
			if !strings.Contains(o.Error, "flight FULL is full") || led.Held[tr.TripID] || led.Bookings[tr.TripID] != 0 {
				t.Errorf("%s: error %q, held %v, bookings %d", id, o.Error, led.Held[tr.TripID], led.Bookings[tr.TripID])
			}
		default:
			// The flight's request carried the hotel's hold id: the
			// result of hold-room, extracted by its reply's CEL.
			if led.Holds[tr.TripID] != 1 || led.Bookings[tr.TripID] != 1 || led.BookedWithHold[tr.TripID] != "H-"+tr.TripID {
				t.Errorf("%s: holds %d bookings %d with hold %q", id, led.Holds[tr.TripID], led.Bookings[tr.TripID], led.BookedWithHold[tr.TripID])
			}
			// The outcome goes out just before the workflow finishes.
			var st engine.Status
			testkit.WaitUntil(t, 30*time.Second, id+" to finish in the engine", func() bool {
				var err error
				st, err = b.Engine().Get(t.Context(), id)
				return err == nil && st.Finished()
			})
			var out struct {
				Steps []struct{ Name, Status string }
			}
			if err := json.Unmarshal([]byte(st.Output), &out); err != nil || len(out.Steps) != 2 {
				t.Errorf("%s: output %s (%v)", id, st.Output, err)
			}
		}
	}
	if led.Refused != 0 {
		t.Errorf("the services refused %d messages for their shape", led.Refused)
	}
}
