package bridge

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/envelope"
	"github.com/sagabridge/sagabridge/bridge/route"
	"github.com/sagabridge/sagabridge/engine"
)

// slowEngine holds every Start until released and records how many ran at
// once; only the route's concurrency cap is under test here, so the
// engine is a stand-in (the end-to-end tests use the real one).
type slowEngine struct {
	release      chan struct{}
	now, maxSeen atomic.Int32
}

func (e *slowEngine) Start(ctx context.Context, _, _ string, _ []byte) (bool, error) {
	n := e.now.Add(1)
	defer e.now.Add(-1)
	for {
		m := e.maxSeen.Load()
		if n <= m || e.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-e.release:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return true, nil
}
func (*slowEngine) Raise(context.Context, string, string, []byte, engine.RaiseOptions) error {
	return nil
}
func (*slowEngine) Terminate(context.Context, string, string) error    { return nil }
func (*slowEngine) Suspend(context.Context, string, string) error      { return nil }
func (*slowEngine) Resume(context.Context, string, string) error       { return nil }
func (*slowEngine) Purge(context.Context, string) error                { return nil }
func (*slowEngine) Workflow(context.Context, string) (string, error)   { return "W", nil }
func (*slowEngine) Get(context.Context, string) (engine.Status, error) { return engine.Status{}, nil }

// TestRouteConcurrencyCapsActions: with broker.concurrency handing out more
// messages than a route's concurrency, no more than the route's cap reach
// the engine at once; the others wait (in flight, unacked) for a place.
func TestRouteConcurrencyCapsActions(t *testing.T) {
	const capacity, events = 2, 12
	cfg, err := config.Parse("bridge.yaml", []byte(`routes:
  - name: capped
    topics: [t]
    concurrency: 2
    start: {workflow: W, instanceId: 'event.data.id'}
`))
	if err != nil {
		t.Fatal(err)
	}
	router, err := route.New(cfg, route.Workflows{"W": nil})
	if err != nil {
		t.Fatal(err)
	}
	eng := &slowEngine{release: make(chan struct{})}
	h := (&handler{router: router, engine: eng, stats: &Stats{}, metrics: NopMetrics{}, log: zap.NewNop(), now: time.Now}).build()

	var wg sync.WaitGroup
	errs := make(chan error, events)
	for i := range events {
		ev, err := envelope.Decode([]byte(`{"specversion":"1.0","id":"e","source":"s","type":"x","data":{"id":"i-`+string(rune('a'+i))+`"}}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		decs, err := router.Route("t", ev, nil)
		if err != nil || len(decs) != 1 {
			t.Fatalf("route: %v %v", decs, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errs <- h.act(ctx, &delivery{msg: message.NewMessage("m", nil), topic: "t", attempts: 1, first: time.Now()}, decs[0])
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for eng.now.Load() < capacity && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // room for a third to slip through, were the cap broken
	if got := eng.maxSeen.Load(); got != capacity {
		t.Fatalf("%d starts ran at once, want the route's cap %d", got, capacity)
	}
	close(eng.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("act: %v", err)
		}
	}
	if got := eng.maxSeen.Load(); got != capacity {
		t.Errorf("%d starts ran at once, want at most %d", got, capacity)
	}
	if n := h.stats.Started.Load(); n != events {
		t.Errorf("started %d, want %d", n, events)
	}
}
