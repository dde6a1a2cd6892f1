package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/sagas/trip"
	tripsim "github.com/sagabridge/sagabridge/sagas/trip/simulated"
)

// TestTripWorkerSIGKILL kills the worker process while TripSagas (the
// YAML-only example, whose participants speak their own messages) are
// between steps, then starts it again on the same data, on NATS and on
// Kafka: every trip ends in exactly one outcome, each room is held and
// each flight booked at most once (the services dedupe on the idempotency
// key the saga puts in their messages), and no compensated trip keeps a
// room.
func TestTripWorkerSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	for _, newBroker := range []func(*testing.T, string) crashBroker{natsCrashBroker, kafkaCrashBroker} {
		dir := t.TempDir()
		br := newBroker(t, dir)
		t.Run(br.name, func(t *testing.T) { tripSIGKILL(t, dir, br) })
	}
}

func tripSIGKILL(t *testing.T, dir string, br crashBroker) {
	const n = 40
	var cfg map[string]any
	if err := yaml.Unmarshal(trip.ConfigYAML(), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["broker"], cfg["engine"] = br.yaml, embeddedEngine(dir)
	cfg["admin"] = map[string]any{"listen": "127.0.0.1:0"}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "trip.yaml"), trip.YAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "worker.log")

	legacy := br.connect(t, "hotel-and-airline")
	svc := tripsim.New(tripsim.Config{ReplyDelay: 15 * time.Millisecond}, legacy.Publisher(), legacy.Subscriber())
	watch := br.connect(t, "test-watcher")
	watcher := simulated.NewWatcher(nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Add(2)
	go func() { defer wg.Done(); _ = svc.Run(ctx) }()
	go func() { defer wg.Done(); _ = watcher.Run(ctx, watch.Subscriber(), "trips.outcomes") }()

	w := startWorker(t, cfgPath, logPath)
	client := br.connect(t, "travel-desk")
	trips := map[string]tripsim.Trip{}
	for i := 1; i <= n; i++ {
		tr := tripsim.Trip{TripID: fmt.Sprintf("crash-%03d", i), Traveller: "Ada", Flight: "LH123", Nights: 2}
		if i%4 == 0 {
			tr.Flight = tripsim.FullFlight
		}
		trips["trip-"+tr.TripID] = tr
		if err := tripsim.PublishTrip(client.Publisher(), "evt-"+tr.TripID, tr); err != nil {
			t.Fatal(err)
		}
	}
	killAfter(t, w, watcher, 5, n)
	started := time.Now()
	startWorker(t, cfgPath, logPath)
	testkit.WaitUntil(t, 3*time.Minute, "every trip's outcome after the restart", func() bool { return watcher.Count() >= n })
	t.Logf("%s: all %d trips had their outcome %s after the restart", br.name, n, time.Since(started).Round(time.Millisecond))
	time.Sleep(time.Second) // a duplicate would arrive now

	led := svc.Ledger()
	outcomes := watcher.Outcomes()
	for id, tr := range trips {
		got := outcomes[id]
		if len(got) != 1 {
			t.Errorf("%s: %d distinct outcomes, want 1", id, len(got))
			continue
		}
		status, compensated := tripsim.Expected(tr)
		if o := got[0].Outcome; o.Status != status || !slices.Equal(o.Compensated, compensated) {
			t.Errorf("%s: %s compensated %v (%s), want %s", id, o.Status, o.Compensated, o.Error, status)
		}
		if led.Holds[tr.TripID] != 1 {
			t.Errorf("%s: the room was held %d times", id, led.Holds[tr.TripID])
		}
		booked := 1
		if tr.Flight == tripsim.FullFlight {
			booked = 0
			if led.Held[tr.TripID] {
				t.Errorf("%s: compensated but still holds the room", id)
			}
		}
		if led.Bookings[tr.TripID] != booked {
			t.Errorf("%s: %d flights booked, want %d", id, led.Bookings[tr.TripID], booked)
		}
	}
	if t.Failed() {
		b, _ := os.ReadFile(logPath)
		t.Logf("worker log:\n%s", strings.TrimSpace(string(b)))
	}
}
