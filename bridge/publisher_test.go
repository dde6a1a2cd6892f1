package bridge

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sagabridge/sagabridge/topics"
)

// TestFailedOutcomeLoggedAtWarn: a saga whose compensation did not finish
// is the outcome a person must act on, so the bridge says so at warn; the
// other outcomes are routine.
func TestFailedOutcomeLoggedAtWarn(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	pub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	defer pub.Close()
	p := eventPublisher{pub: pub, metrics: NopMetrics{}, tracer: newTracer(nil, nil), log: zap.New(core)}
	now := time.Now()
	for _, status := range []string{topics.StatusCompleted, topics.StatusCompensated, topics.StatusFailed} {
		data, err := json.Marshal(topics.Outcome{Saga: "OrderSaga", InstanceID: "order-" + status, Status: status,
			Error: "refund-payment: gateway down", NotUndone: []string{"charge-payment"}, StartedAt: now, FinishedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		ev := topics.CloudEvent{ID: topics.OutcomeID("order-"+status, status), Type: topics.OutcomeType(status),
			Source: topics.Source, Subject: "order-" + status, Data: data}
		if err := p.Publish(context.Background(), topics.Outcomes, "order-"+status, ev); err != nil {
			t.Fatal(err)
		}
	}
	got := logs.All()
	if len(got) != 1 || got[0].Level != zapcore.WarnLevel {
		t.Fatalf("log: %+v, want one warning", got)
	}
	f := got[0].ContextMap()
	if f["saga"] != "OrderSaga" || f["instance"] != "order-failed" || f["error"] != "refund-payment: gateway down" {
		t.Errorf("warning fields %v", f)
	}
}
