package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/topics"
)

// Metadata keys the bridge sets on what it publishes.
const (
	metaContentType  = "Content-Type"
	metaPartitionKey = "partition_key"
	metaTraceParent  = "traceparent"
)

// eventPublisher publishes CloudEvents in structured mode. The Watermill
// message UUID is the event id, so a broker that dedupes on message id
// (JetStream's Nats-Msg-Id) drops a re-publish by a retried activity.
type eventPublisher struct {
	pub     message.Publisher
	metrics Metrics
	tracer  tracer
	log     *zap.Logger
	// finished, when set, is told of every outcome published (retention
	// purges the instance later).
	finished func(instanceID, status string, at time.Time)
}

// Publish sends ev as a CloudEvent in structured mode.
func (p eventPublisher) Publish(ctx context.Context, topic, key string, ev topics.CloudEvent) error {
	return p.PublishMessage(ctx, topic, key, ev, sagas.MessageOptions{})
}

// PublishMessage sends ev shaped as a saga step's Message says: its data
// alone as plain JSON, or the CloudEvent, with the step's headers. The
// message id is the event id either way.
func (p eventPublisher) PublishMessage(ctx context.Context, topic, key string, ev topics.CloudEvent, o sagas.MessageOptions) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	// The saga stamped the traceparent it started with; the publish span
	// is its child, and the message carries the publish span on.
	_, span, traceParent := p.tracer.startPublish(ctx, topic, key, ev.TraceParent, ev.ID, ev.Type)
	defer func() { endSpan(span, err) }()
	ev.TraceParent = traceParent
	var msg *message.Message
	if o.Plain {
		body := []byte(ev.Data)
		if len(body) == 0 {
			body = []byte("null")
		}
		msg = message.NewMessage(ev.ID, body)
		msg.Metadata.Set(metaContentType, "application/json")
	} else {
		body, err := ev.Marshal()
		if err != nil {
			return err
		}
		msg = message.NewMessage(ev.ID, body)
		msg.Metadata.Set(metaContentType, "application/cloudevents+json")
	}
	for k, v := range o.Headers {
		msg.Metadata.Set(k, v)
	}
	if key != "" {
		msg.Metadata.Set(metaPartitionKey, key)
	}
	if ev.TraceParent != "" {
		msg.Metadata.Set(metaTraceParent, ev.TraceParent)
	}
	if err := p.pub.Publish(topic, msg); err != nil {
		return fmt.Errorf("publish %s to %s: %w", ev.ID, topic, err)
	}
	p.observeOutcome(ev)
	return nil
}

// observeOutcome counts outcome events. An activity retried after a crash
// counts its outcome again; the metric is a rate, not a ledger.
func (p eventPublisher) observeOutcome(ev topics.CloudEvent) {
	switch ev.Type {
	case topics.OutcomeCompleted, topics.OutcomeCompensated, topics.OutcomeFailed:
	default:
		return
	}
	var out topics.Outcome
	if err := json.Unmarshal(ev.Data, &out); err != nil {
		return
	}
	if p.finished != nil {
		p.finished(ev.Subject, out.Status, time.Now())
	}
	if out.Migration != nil && out.Migration.Mode == topics.ModeShadow {
		// A shadow outcome is what the saga would have done: it counts as
		// its divergences, not as an outcome.
		for _, d := range out.Migration.Divergences {
			p.metrics.Divergence(out.Saga, d.Kind)
		}
		return
	}
	p.metrics.SagaOutcome(out.Saga, out.Status, out.FinishedAt.Sub(out.StartedAt))
	if out.Status == topics.StatusFailed && p.log != nil {
		// Compensation did not finish: the one outcome a person must act
		// on. The engine logs its end at info like any other.
		p.log.Warn("saga failed: compensation did not finish, a person must look",
			zap.String("saga", out.Saga), zap.String("instance", out.InstanceID),
			zap.String("error", out.Error), zap.Strings("not_undone", out.NotUndone))
	}
}
