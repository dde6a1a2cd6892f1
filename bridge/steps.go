package bridge

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/bridge/route"
	"github.com/sagabridge/sagabridge/engine"
)

// The handler's steps, in the shape of Watermill's handler middleware: each
// wraps the next and may act before it, after it, or instead of it. What
// one message's handling needs (delivery count, span, decisions) travels
// in its delivery; an error that is not nil nacks.

// handleFunc handles one delivery of a message.
type handleFunc func(d *delivery) error

// step wraps a handleFunc.
type step func(next handleFunc) handleFunc

// chain wraps h in steps, the first outermost.
func chain(h handleFunc, steps ...step) handleFunc {
	for i := len(steps) - 1; i >= 0; i-- {
		h = steps[i](h)
	}
	return h
}

// actFunc performs one route decision for a delivery.
type actFunc func(ctx context.Context, d *delivery, dec route.Decision) error

// actStep wraps an actFunc.
type actStep func(next actFunc) actFunc

// chainAct wraps a in steps, the first outermost.
func chainAct(a actFunc, steps ...actStep) actFunc {
	for i := len(steps) - 1; i >= 0; i-- {
		a = steps[i](a)
	}
	return a
}

// retryLater nacks: the broker redelivers the message after a backoff.
func retryLater(err error) error { return fmt.Errorf("%w: %w", errRetryLater, err) }

// measured counts the message and times its handling.
func (h *handler) measured(next handleFunc) handleFunc {
	return func(d *delivery) error {
		h.stats.Consumed.Add(1)
		h.metrics.EventConsumed(d.topic)
		h.metrics.InFlight(1)
		err := next(d)
		h.metrics.InFlight(-1)
		result := "ack"
		if err != nil {
			result = "nack"
		}
		h.metrics.HandlerDone(d.topic, result, h.now().Sub(d.began))
		return err
	}
}

// bounded gives the handling its own deadline, below the broker's ack
// wait. It finishes what it started even when the worker is told to stop:
// an engine call cut short is a redelivery for nothing.
func (h *handler) bounded(next handleFunc) handleFunc {
	return func(d *delivery) error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(d.ctx), h.timeout)
		defer cancel()
		d.ctx = ctx
		return next(d)
	}
}

// counted numbers the message's deliveries (the broker's count when it
// keeps one, else this worker's) and forgets them once it is settled.
// Counters are per stored message (its broker identity), never per
// payload or producer-chosen id.
func (h *handler) counted(next handleFunc) handleFunc {
	return func(d *delivery) error {
		d.refusalKey = d.topic + "\x00" + d.origin.ID
		d.attempts = max(h.tries.next(d.refusalKey), d.told.Count)
		err := next(d)
		if err == nil {
			h.tries.forget(d.refusalKey)
			h.refused.forget(d.refusalKey)
		}
		return err
	}
}

// unstalled holds the messages of a topic whose dead letters cannot be
// stored (see stalls) until one can.
func (h *handler) unstalled(next handleFunc) handleFunc {
	return func(d *delivery) error {
		if err := h.stalls.check(d.topic, d.origin.ID, h.now()); err != nil {
			return retryLater(err)
		}
		return next(d)
	}
}

// traced wraps the handling in the message's span.
func (h *handler) traced(next handleFunc) handleFunc {
	return func(d *delivery) (err error) {
		d.ctx, d.span = h.tracer.startHandle(d.ctx, d.topic, d.msg, d.event(), d.began)
		defer func() { endSpan(d.span, err) }()
		return next(d)
	}
}

// limited waits for a place among the route's concurrent actions.
func (h *handler) limited(next actFunc) actFunc {
	return func(ctx context.Context, d *delivery, dec route.Decision) error {
		rt := dec.Route
		if rt.Limit == nil {
			return next(ctx, d, dec)
		}
		select {
		case rt.Limit <- struct{}{}:
			defer func() { <-rt.Limit }()
		case <-ctx.Done():
			return retryLater(fmt.Errorf("waiting for route %s concurrency: %w", rt.Name, ctx.Err()))
		}
		return next(ctx, d, dec)
	}
}

// inputBounded dead-letters an input or payload over limits.maxInputBytes.
func (h *handler) inputBounded(next actFunc) actFunc {
	return func(ctx context.Context, d *delivery, dec route.Decision) error {
		if f, ok := h.tooLargeInput(dec); !ok {
			return deadLetter(f)
		}
		return next(ctx, d, dec)
	}
}

// engineSpan wraps the engine call in its span, and counts what the
// engine accepted.
func (h *handler) engineSpan(next actFunc) actFunc {
	return func(ctx context.Context, d *delivery, dec route.Decision) error {
		rt := dec.Route
		ctx, span := h.tracer.startEngine(ctx, d.span, rt.Name, rt.Action, dec.InstanceID, rt.Workflow)
		err := next(ctx, d, dec)
		endSpan(span, err)
		if err == nil {
			h.metrics.EventRouted(rt.Name, rt.Action)
		}
		return err
	}
}

// parking lets an event for an instance that has not started yet wait:
// the broker redelivers it with backoff until the route's park window
// (from when the broker stored it) ends; then it is dead-lettered.
func (h *handler) parking(next actFunc) actFunc {
	return func(ctx context.Context, d *delivery, dec route.Decision) error {
		err := next(ctx, d, dec)
		rt := dec.Route
		if err == nil || !errors.Is(err, engine.ErrNotFound) ||
			(rt.Action != config.ActionRaise && rt.Action != config.ActionStartOrRaise) {
			return err
		}
		if h.now().Sub(d.first) < rt.ParkWindow {
			h.stats.Parked.Add(1)
			h.metrics.Parked(rt.Name)
			h.actLog(d, dec).Debug("instance not found yet; parked", zap.Int("attempt", d.attempts))
			return retryLater(err)
		}
		return deadLetter(dlq.Failure{Kind: dlq.KindNotFound, Route: rt.Name,
			Reason: fmt.Sprintf("instance %s not found after waiting %s: %v", dec.InstanceID, rt.ParkWindow, err)})
	}
}

// dropping acks an event for a finished instance when its route says so.
func (h *handler) dropping(next actFunc) actFunc {
	return func(ctx context.Context, d *delivery, dec route.Decision) error {
		err := next(ctx, d, dec)
		if err == nil || dec.Route.OnFinished != "drop" || !errors.Is(err, engine.ErrFinished) {
			return err
		}
		h.stats.DroppedFinished.Add(1)
		h.metrics.DroppedFinished(dec.Route.Name)
		h.actLog(d, dec).Info("event for a finished instance dropped by route policy")
		return nil
	}
}

// outage retries, without limit, while the engine is unavailable: waiting
// is the right answer to an outage.
func (h *handler) outage(next actFunc) actFunc {
	return func(ctx context.Context, d *delivery, dec route.Decision) error {
		err := next(ctx, d, dec)
		if err == nil || !errors.Is(err, engine.ErrUnavailable) {
			return err
		}
		h.stats.EngineErrors.Add(1)
		h.metrics.EngineError(dec.Route.Action)
		h.actLog(d, dec).Warn("engine unavailable; will retry", zap.Error(err), zap.Int("attempt", d.attempts))
		return retryLater(err)
	}
}

// judged turns what the steps inside left undecided into a verdict: a
// refusal the engine may reconsider is retried up to maxEngineAttempts
// times, anything else is dead-lettered.
func (h *handler) judged(next actFunc) actFunc {
	return func(ctx context.Context, d *delivery, dec route.Decision) error {
		err := next(ctx, d, dec)
		var f *failure
		if err == nil || errors.Is(err, errRetryLater) || errors.As(err, &f) {
			return err
		}
		return h.judge(d, dec, err)
	}
}

func (h *handler) judge(d *delivery, dec route.Decision, err error) error {
	fail := dlq.Failure{Route: dec.Route.Name, Reason: err.Error()}
	switch {
	case errors.Is(err, errDenied):
		fail.Kind = dlq.KindDenied
		h.actLog(d, dec).Warn("action denied by the access policy", zap.String("reason", fail.Reason))
	case errors.Is(err, errUnknownWorkflow), errors.Is(err, engine.ErrUnknownWorkflow):
		fail.Kind = dlq.KindUnknownWorkflow
	case errors.Is(err, engine.ErrNotFound):
		fail.Kind = dlq.KindNotFound
	case errors.Is(err, engine.ErrFinished):
		fail.Kind = dlq.KindFinished
	default:
		h.stats.EngineErrors.Add(1)
		h.metrics.EngineError(dec.Route.Action)
		refusals := h.refused.next(d.refusalKey)
		if refusals < maxEngineAttempts {
			h.actLog(d, dec).Warn("engine refused; will retry", zap.Error(err), zap.Int("attempt", d.attempts), zap.Int("refusals", refusals))
			return retryLater(err)
		}
		fail.Kind = dlq.KindEngine
		fail.Reason = fmt.Sprintf("engine refused %d times: %v", refusals, err)
	}
	return deadLetter(fail)
}

// tooLargeInput refuses a start input or raise payload over
// limits.maxInputBytes before it reaches the engine: there it would end
// in a saga history the engine cannot hand over (see sagas.
// DefaultMaxHistoryBytes), a saga that never ends.
func (h *handler) tooLargeInput(dec route.Decision) (dlq.Failure, bool) {
	var what string
	var n int
	switch rt := dec.Route; {
	case h.maxInput <= 0: // handlers built without a config
		return dlq.Failure{}, true
	case (rt.Action == config.ActionStart || rt.Action == config.ActionStartOrRaise) && len(dec.Input) > h.maxInput:
		what, n = "workflow input", len(dec.Input)
	case (rt.Action == config.ActionRaise || rt.Action == config.ActionStartOrRaise) && len(dec.Payload) > h.maxInput:
		what, n = "event payload for "+dec.EventName, len(dec.Payload)
	default:
		return dlq.Failure{}, true
	}
	return dlq.Failure{Kind: dlq.KindTooLarge, Route: dec.Route.Name, Reason: fmt.Sprintf(
		"%s of %d bytes exceeds limits.maxInputBytes %d: a saga keeps its input and events in its history, which the engine hands over in messages of at most 4 MiB",
		what, n, h.maxInput)}, false
}

// actLog is the handler's logger with what identifies an action. WithLazy:
// the fields are encoded only if something is logged, which on the happy
// path at info level is never.
func (h *handler) actLog(d *delivery, dec route.Decision) *zap.Logger {
	return h.log.WithLazy(zap.String("route", dec.Route.Name), zap.String("topic", d.topic),
		zap.String("event_id", d.eventID), zap.String("instance_id", dec.InstanceID))
}
