package bridge

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/topics"
)

// failure is a message the handler gives up on: the dead-lettering step
// stores it on the dead-letter topic, and only then is it acked.
type failure struct{ f dlq.Failure }

func (e *failure) Error() string { return "dead letter (" + e.f.Kind + "): " + e.f.Reason }

// deadLetter gives the message up for the reason f says.
func deadLetter(f dlq.Failure) error { return &failure{f} }

// deadLettering stores what the steps inside give up on in the dead-letter
// topic; whether that worked is the message's acknowledgement.
func (h *handler) deadLettering(next handleFunc) handleFunc {
	return func(d *delivery) error {
		err := next(d)
		var f *failure
		if err != nil && errors.As(err, &f) {
			return h.dead(d, f.f)
		}
		return err
	}
}

// dead stores the message on the dead-letter topic; only then is the
// original acked. A copy that does not fit the broker's limits (a payload
// near max_payload, headers over JetStream's 64 KiB) is replaced by a
// truncated one that points at the original. When even that cannot be
// stored, the original is nacked and its topic stopped (see stalls):
// nothing is acked silently, and the worker says it is stuck.
func (h *handler) dead(d *delivery, f dlq.Failure) error {
	msg := d.msg
	f.OriginTopic = d.topic
	f.Attempts = d.attempts
	f.FirstFailure = d.first
	f.FailedAt = h.now()
	f.EventType, f.EventID = d.eventType, d.eventID
	f.Origin = d.origin
	if f.Origin.Pointer == "" && msg.UUID == "" && d.eventID != "" {
		f.Origin = dlq.Identify(d.topic, msg, d.eventSource, d.eventID)
	}
	if f.Reason == "" {
		f.Reason = "(no reason given)"
	}
	deadLettered(d.span, f.Kind, f.Reason)
	out, err := dlq.NewMessage(msg, f)
	if err != nil {
		return fmt.Errorf("build dead-letter message: %w", err)
	}
	var lim topics.MessageLimits
	if h.limits != nil {
		lim = h.limits()
	}
	var truncated string
	if !dlq.Fits(out, lim) {
		total, headers := dlq.Size(out)
		truncated = fmt.Sprintf("the full copy (%d bytes, %d of them headers) exceeds the broker's limit (%d bytes, %d of headers)",
			total, headers, lim.MaxBytes, lim.MaxHeaderBytes)
	} else if err = h.pub.Publish(h.dlqTopic, out); errors.Is(err, topics.ErrTooLarge) {
		truncated = "the broker refused the full copy: " + err.Error()
	}
	if truncated != "" {
		if out, err = dlq.Truncated(msg, f, truncated); err == nil {
			err = h.pub.Publish(h.dlqTopic, out)
		}
	}
	if err != nil {
		h.stall(d, f, err)
		// The reason stays out of the error: Watermill logs it on every
		// redelivery, and a reason can be as long as the payload.
		return fmt.Errorf("%w: dead letter (%s) not stored: %w", errRetryLater, f.Kind, err)
	}
	h.stalls.clear(d.topic, d.origin.ID)
	h.stats.DeadLettered.Add(1)
	h.metrics.DeadLettered(f.Kind)
	// The reason can quote the payload: it is in the dead letter, and in
	// the log only at debug level.
	h.log.Warn("event dead-lettered", zap.String("kind", f.Kind), zap.String("route", f.Route),
		zap.String("topic", d.topic), zap.String("event_id", dlq.Clip(d.eventID, 128)),
		zap.String("original", f.Origin.Pointer), zap.Bool("truncated", truncated != ""))
	h.log.Debug("dead-letter reason", zap.String("topic", d.topic), zap.String("event_id", dlq.Clip(d.eventID, 128)),
		zap.String("reason", dlq.Clip(f.Reason, 512)))
	return nil
}

// stall stops the message's topic after its dead letter could not be
// stored, and says so at error level, at most every stallLogEvery per
// topic.
func (h *handler) stall(d *delivery, f dlq.Failure, err error) {
	if !h.stalls.block(d.topic, d.origin.ID, h.now(), err) {
		return
	}
	h.log.Error("dead letter cannot be stored: topic stopped until it is; /readyz is not ready",
		zap.String("topic", d.topic), zap.String("kind", f.Kind), zap.String("route", f.Route),
		zap.String("event_id", dlq.Clip(d.eventID, 128)), zap.String("original", d.origin.Pointer), zap.Error(err))
}
