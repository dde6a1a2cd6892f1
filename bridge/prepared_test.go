package bridge

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/bridge/route"
	"github.com/sagabridge/sagabridge/topics"
)

// TestHandlerUsesWhatTheKeyerPrepared: a message the broker keyed comes
// with its decoding and routing (topics.Delivery.Keyed), and the handler
// acts on that rather than decoding and routing again; a message nobody
// keyed is decoded and routed by the handler, once. Both dead letters say
// so: the first carries the Keyer's reason though its payload decodes.
func TestHandlerUsesWhatTheKeyerPrepared(t *testing.T) {
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
	dead := &recordingPublisher{}
	h := (&handler{router: router, pub: dead, dlqTopic: "dlq", stats: &Stats{}, maxPayload: 1 << 20,
		timeout: time.Minute, stalls: newStalls(time.Minute), metrics: NopMetrics{}, log: zap.NewNop(), now: time.Now}).build()

	good := message.NewMessage("keyed", []byte(`{"specversion":"1.0","id":"e","source":"s","type":"x","data":{"id":"i-1"}}`))
	p := h.prepare("t", good)
	if p.key() != "i-1" || p.decodeErr != nil || p.routeErr != nil {
		t.Fatalf("prepare: key %q, %v, %v", p.key(), p.decodeErr, p.routeErr)
	}
	p.decodeErr = errors.New("as the Keyer found it")
	good.SetContext(topics.WithDelivery(context.Background(), topics.Delivery{Count: 1, Key: p.key(), Keyed: p}))
	if err := h.handle("t", good); err != nil {
		t.Fatal(err)
	}
	unkeyed := message.NewMessage("unkeyed", []byte(`not json`))
	if err := h.handle("t", unkeyed); err != nil {
		t.Fatal(err)
	}
	if len(dead.msgs) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dead.msgs))
	}
	for i, want := range []string{"as the Keyer found it", "malformed JSON"} {
		e, err := dlq.Parse(dead.msgs[i])
		if err != nil {
			t.Fatal(err)
		}
		if e.Failure.Kind != dlq.KindDecode || !strings.Contains(e.Failure.Reason, want) {
			t.Errorf("dead letter %d: %s %q, want a decode failure saying %q", i, e.Failure.Kind, e.Failure.Reason, want)
		}
	}
}
