package bridge

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/envelope"
	"github.com/sagabridge/sagabridge/bridge/route"
	"github.com/sagabridge/sagabridge/engine"
)

// outageThenRefusal is an engine that is unavailable for its first calls,
// then refuses: the sequence a sidecar restart can produce.
type outageThenRefusal struct {
	slowEngine
	outage int
	calls  int
}

func (e *outageThenRefusal) Start(context.Context, string, string, []byte) (bool, error) {
	e.calls++
	if e.calls <= e.outage {
		return false, errEngineDown
	}
	return false, errors.New("actor not placed yet")
}

var errEngineDown = errors.Join(errors.New("connection refused"), engine.ErrUnavailable)

// recordingPublisher keeps what the handler dead-letters.
type recordingPublisher struct {
	mu   sync.Mutex
	msgs []*message.Message
}

func (p *recordingPublisher) Publish(_ string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, msgs...)
	return nil
}
func (p *recordingPublisher) Close() error { return nil }

// TestOutageDoesNotUseUpRefusals: deliveries during an engine outage
// (which the broker counts, 50 here) leave the full refusal budget for
// what the engine says once it is back; only maxEngineAttempts refusals
// dead-letter the event.
func TestOutageDoesNotUseUpRefusals(t *testing.T) {
	cfg, err := config.Parse("bridge.yaml", []byte(`routes:
  - name: r
    topics: [t]
    start: {workflow: W, instanceId: 'event.data.id'}
`))
	if err != nil {
		t.Fatal(err)
	}
	router, err := route.New(cfg, route.Workflows{"W": nil})
	if err != nil {
		t.Fatal(err)
	}
	const outage = 40
	eng := &outageThenRefusal{outage: outage}
	dead := &recordingPublisher{}
	h := (&handler{router: router, engine: eng, pub: dead, dlqTopic: "dlq", stats: &Stats{},
		metrics: NopMetrics{}, log: zap.NewNop(), now: time.Now}).build()
	ev, err := envelope.Decode([]byte(`{"specversion":"1.0","id":"e","source":"s","type":"x","data":{"id":"i-1"}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	decs, err := router.Route("t", ev, nil)
	if err != nil || len(decs) != 1 {
		t.Fatalf("route: %v %v", decs, err)
	}
	msg := message.NewMessage("m", nil)
	for i := 1; ; i++ {
		d := &delivery{msg: msg, topic: "t", attempts: i, first: time.Now()}
		err := h.deadLettering(func(d *delivery) error { return h.act(context.Background(), d, decs[0]) })(d)
		if err == nil {
			if refusals := i - outage; refusals != maxEngineAttempts {
				t.Fatalf("dead-lettered after %d refusals (delivery %d), want %d", refusals, i, maxEngineAttempts)
			}
			break
		}
		if !errors.Is(err, errRetryLater) {
			t.Fatalf("delivery %d: %v, want a retry", i, err)
		}
		if i > outage+maxEngineAttempts {
			t.Fatalf("not dead-lettered after %d refusals", i-outage)
		}
	}
	if len(dead.msgs) != 1 {
		t.Errorf("%d dead letters, want 1", len(dead.msgs))
	}
}
