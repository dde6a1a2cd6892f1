package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/bridge/access"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/bridge/envelope"
	"github.com/sagabridge/sagabridge/bridge/migrate"
	"github.com/sagabridge/sagabridge/bridge/route"
	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/migration"
	"github.com/sagabridge/sagabridge/topics"
)

// Engine is what the handler needs from the workflow engine.
type Engine interface {
	Start(ctx context.Context, workflow, instanceID string, input []byte) (started bool, err error)
	Raise(ctx context.Context, instanceID, eventName string, payload []byte, o engine.RaiseOptions) error
	Terminate(ctx context.Context, instanceID, reason string) error
	Suspend(ctx context.Context, instanceID, reason string) error
	Resume(ctx context.Context, instanceID, reason string) error
	Purge(ctx context.Context, instanceID string) error
	// Workflow names the workflow an instance runs (for access checks).
	Workflow(ctx context.Context, instanceID string) (string, error)
	// Get reads an instance, input included (a migrating instance's
	// pinned assignment).
	Get(ctx context.Context, instanceID string) (engine.Status, error)
}

// errDenied marks an action the access policy refuses: dead-lettered at
// once, never retried.
var errDenied = errors.New("access denied")

// errUnknownWorkflow marks a start the worker cannot run (a workflow or a
// declarative saga definition it does not have): dead-lettered at once.
var errUnknownWorkflow = errors.New("unknown workflow")

// errRetryLater makes the subscriber nack the message; the broker
// redelivers it after a backoff. The message is neither acked nor lost.
var errRetryLater = errors.New("retry later")

// maxEngineAttempts bounds how often the engine may refuse an event
// for a reason other than being unavailable (an outage is retried without
// limit: waiting is the right answer to it).
const maxEngineAttempts = 10

// handler decodes, routes and acts on one message. Its return value is the
// acknowledgement: nil acks (the action was accepted by the engine, or the
// message is safely in the dead-letter topic), an error nacks.
//
// A message goes through steps (steps.go), outermost first: measured,
// bounded by a timeout, counted, held while its topic is stalled, traced,
// dead-lettered when it fails for good; then, once per route decision,
// limited by the route's concurrency, checked for size, judged (parked,
// dropped, retried, refused) and acted on. Decoding and routing happen
// once, before the broker dispatches the message by its instance (see
// prepare), never again here.
type handler struct {
	router *route.Router
	engine Engine
	// migration decides how new instances of migrating workflows run; nil
	// when nothing migrates.
	migration *migrate.Planner
	// pub publishes dead letters and hand-offs to the legacy flow.
	pub        message.Publisher
	dlqTopic   string
	maxPayload int
	maxInput   int
	// access is the route-level allow-list; nil allows everything.
	access *access.Policy
	// startInput turns a route's input into the workflow's start input
	// (starter.input): a saga's is one sagas.Start, a declarative saga's
	// pinned to a version and refused when that version is not loaded.
	// nil passes inputs unchanged.
	startInput func(ctx context.Context, workflow string, version int, a *migration.Assignment, input []byte) ([]byte, error)
	// timeout bounds one message's handling, below the broker's ack wait,
	// so a slow engine call ends in a nack, not in a second delivery.
	timeout time.Duration
	tries   counts
	// refused counts, per unsettled message, the engine's refusals (not
	// its outages): the broker's delivery count also grows while the
	// engine is down, and must not use up the refusal budget.
	refused counts
	// limits, when set, says how large a message the broker stores; a dead
	// letter is made to fit before it is published.
	limits func() topics.MessageLimits
	// stalls stops a topic whose dead letters cannot be stored.
	stalls  *stalls
	stats   *Stats
	metrics Metrics
	tracer  tracer
	log     *zap.Logger
	now     func() time.Time

	// pipeline and act are the steps, composed once by build.
	pipeline handleFunc
	act      actFunc
}

// build composes the handler's steps; call it once, before Handle.
func (h *handler) build() *handler {
	h.pipeline = chain(h.decide,
		h.measured, h.bounded, h.counted, h.unstalled, h.traced, h.deadLettering)
	h.act = chainAct(h.perform,
		h.limited, h.inputBounded, h.engineSpan, h.judged, h.parking, h.dropping, h.outage)
	return h
}

// Handle is the Watermill handler of every routed topic.
func (h *handler) Handle(msg *message.Message) error {
	return h.handle(message.SubscribeTopicFromCtx(msg.Context()), msg)
}

// handle handles msg, read from topic.
func (h *handler) handle(topic string, msg *message.Message) error {
	told, _ := topics.DeliveryOf(msg)
	d := &delivery{msg: msg, ctx: msg.Context(), topic: topic, told: told, began: h.now(),
		origin: dlq.Identify(topic, msg, "", "")}
	// The time the broker stored the event starts the park window.
	d.first = d.began
	if !told.StoredAt.IsZero() {
		d.first = told.StoredAt
	}
	// The ordering key's work, or done now for a broker that did not key
	// the message: either way, once.
	var ok bool
	if d.prep, ok = told.Keyed.(*prepared); !ok {
		d.prep = h.prepare(topic, msg)
	}
	if ev := d.event(); ev != nil {
		d.eventType, d.eventID, d.eventSource = ev.Type, ev.ID, ev.Source
	}
	return h.pipeline(d)
}

// delivery is what the handler knows about this delivery of a message.
type delivery struct {
	msg   *message.Message
	ctx   context.Context
	topic string
	// told is what the broker said about this delivery.
	told     topics.Delivery
	began    time.Time
	attempts int
	// first is when the broker stored the event (else when it arrived):
	// the start of the park window.
	first time.Time
	prep  *prepared
	// eventType, eventID and eventSource come from the decoded event.
	eventType, eventID string
	eventSource        string
	// origin identifies the message on the broker; refusalKey keys its
	// counters.
	origin     dlq.Origin
	refusalKey string
	// span is the message's decode-and-route span (a no-op when tracing
	// is off).
	span trace.Span
}

// event is the decoded event; nil when the message could not be decoded.
func (d *delivery) event() *envelope.Event {
	if d.prep == nil || d.prep.tooLarge || d.prep.decodeErr != nil {
		return nil
	}
	return &d.prep.ev
}

// decide refuses what cannot be handled and runs the route decisions, in
// route order. A retry runs them all again: starts are idempotent, and a
// raise may then be delivered twice (see docs/guarantees.md).
func (h *handler) decide(d *delivery) error {
	if f, ok := d.refusal(h.maxPayload); !ok {
		return deadLetter(f)
	}
	if len(d.prep.decisions) == 0 {
		h.stats.Unmatched.Add(1)
		h.metrics.Unmatched(d.topic)
		h.log.Debug("no route matched", zap.String("topic", d.topic), zap.String("event_id", d.eventID), zap.String("event_type", d.eventType))
		return nil
	}
	for _, dec := range d.prep.decisions {
		if err := h.act(d.ctx, d, dec); err != nil {
			return err
		}
	}
	return nil
}

// refusal is why the message cannot be acted on (too large, unreadable,
// not an event, no route could evaluate it); false when it can.
func (d *delivery) refusal(maxPayload int) (dlq.Failure, bool) {
	p := d.prep
	switch {
	case p.tooLarge:
		return dlq.Failure{Kind: dlq.KindTooLarge,
			Reason: fmt.Sprintf("payload of %d bytes exceeds the %d byte limit", len(d.msg.Payload), maxPayload)}, false
	case d.told.ReadError != "":
		return dlq.Failure{Kind: dlq.KindDecode, Reason: d.told.ReadError}, false
	case p.decodeErr != nil:
		return dlq.Failure{Kind: dlq.KindDecode, Reason: p.decodeErr.Error()}, false
	case p.routeErr != nil:
		f := dlq.Failure{Kind: dlq.KindEval, Reason: p.routeErr.Error()}
		if errors.Is(p.routeErr, envelope.ErrDecode) {
			f.Kind = dlq.KindDecode
		}
		var re *route.Error
		if errors.As(p.routeErr, &re) {
			f.Route = re.Route
		}
		return f, false
	}
	return dlq.Failure{}, true
}

// perform asks the engine to do what the route says; its error is the
// engine's (or the access policy's), judged by the steps around it.
func (h *handler) perform(ctx context.Context, d *delivery, dec route.Decision) error {
	rt := dec.Route
	// allowed checks the access policy on the instance the action
	// addresses; its workflow is known only by asking the engine.
	allowed := func(op string) error { return h.authorize(ctx, dec, d.topic, op) }
	switch rt.Action {
	case config.ActionStart:
		return h.start(ctx, d, dec)
	case config.ActionRaise:
		if err := allowed(config.ActionRaise); err != nil {
			return err
		}
		return h.raise(ctx, dec)
	case config.ActionStartOrRaise:
		if err := h.start(ctx, d, dec); err != nil {
			return err
		}
		// The instance may run another workflow than the route starts.
		if err := allowed(config.ActionRaise); err != nil {
			return err
		}
		return h.raise(ctx, dec)
	case config.ActionTerminate, config.ActionSuspend, config.ActionResume, config.ActionPurge:
		if err := allowed(rt.Action); err != nil {
			return err
		}
		return h.control(ctx, dec)
	}
	return deadLetter(dlq.Failure{Kind: dlq.KindEval, Route: rt.Name, Reason: "route has no action " + rt.Action})
}

// authorize asks the access policy whether the route may perform op on
// the instance the decision addresses. Without a policy it costs nothing.
func (h *handler) authorize(ctx context.Context, dec route.Decision, topic, op string) error {
	if !h.access.Enabled() {
		return nil
	}
	wf, err := h.engine.Workflow(ctx, dec.InstanceID)
	if err != nil {
		return err
	}
	if !h.access.Allowed(wf, op, dec.Route.Name, topic) {
		return fmt.Errorf("%w: instance %s: %s", errDenied, dec.InstanceID, h.access.Denial(wf, op, dec.Route.Name, topic))
	}
	return nil
}

func (h *handler) start(ctx context.Context, d *delivery, dec route.Decision) error {
	rt, id := dec.Route, dec.InstanceID
	wf := rt.Workflow
	// Load-time validation already refused a start route the policy
	// does not allow; this keeps the rule where the action happens.
	if !h.access.Allowed(wf, config.ActionStart, rt.Name, d.topic) {
		return fmt.Errorf("%w: instance %s: %s", errDenied, id, h.access.Denial(wf, config.ActionStart, rt.Name, d.topic))
	}
	plan, migrating := h.migration.For(wf)
	var a migration.Assignment
	if migrating {
		a = plan.Assign(id)
	}
	input, err := h.wrapStart(ctx, rt, id, dec.Input, a, migrating)
	if err != nil {
		return err
	}
	before := time.Now()
	started, err := h.engine.Start(ctx, wf, id, input)
	if err != nil {
		return err
	}
	log := h.actLog(d, dec)
	if migrating {
		if started, err = h.migrated(ctx, log, d.msg, plan, id, started, before, a); err != nil {
			return err
		}
	}
	if started {
		h.stats.Started.Add(1)
		log.Debug("workflow started", zap.String("workflow", wf))
	} else {
		h.stats.DuplicateStarts.Add(1)
		h.metrics.DuplicateStart(rt.Name)
		log.Debug("workflow instance already exists; start ignored", zap.String("workflow", wf))
	}
	return nil
}

// wrapStart is the workflow's start input made of the route's
// (starter.input): for a saga, one sagas.Start with its pinned version,
// migration assignment and trace context.
func (h *handler) wrapStart(ctx context.Context, rt *route.Route, id string, input []byte, a migration.Assignment, migrating bool) ([]byte, error) {
	if h.startInput == nil {
		return input, nil
	}
	var assigned *migration.Assignment
	if migrating {
		assigned = &a
	}
	out, err := h.startInput(ctx, rt.Workflow, rt.Version, assigned, input)
	if err != nil {
		return nil, fmt.Errorf("%w: start %s %s: %w", errUnknownWorkflow, rt.Workflow, id, err)
	}
	return out, nil
}

// migrated tells whether a migrating saga's start started the instance,
// and hands the event off to the legacy flow when the saga does not drive
// it. A start of a finished instance is ignored by the engine, which does
// not say so; a migrating saga must know, or an instance run by the legacy
// flow would be handed off again. Its status tells: one created before
// this start was already there. Only migrating sagas pay this look-up.
func (h *handler) migrated(ctx context.Context, log *zap.Logger, msg *message.Message, plan migrate.Plan, id string, started bool, before time.Time, a migration.Assignment) (bool, error) {
	st, err := h.engine.Get(ctx, id)
	if err != nil {
		return started, err
	}
	if started && st.CreatedAt.Before(before) {
		started = false
	}
	if started {
		h.metrics.MigrationAssigned(plan.Workflow, a.Mode)
	}
	return started, h.handoff(log, msg, plan, st, started, a)
}

// handoff passes the start event of an instance the saga does not drive to
// the legacy flow. A repeated start reads the mode the instance was started
// with, never today's percentage, so an instance is handed off exactly when
// its first start said so; st is the instance's status after the start.
func (h *handler) handoff(log *zap.Logger, msg *message.Message, plan migrate.Plan, st engine.Status, started bool, a migration.Assignment) error {
	if plan.HandoffTopic == "" {
		return nil
	}
	if !started {
		pinned, err := sagas.DecodeStart([]byte(st.Input))
		if err != nil || pinned.Migration == nil {
			// Started before it was migrating: the saga drives it.
			return nil
		}
		a = *pinned.Migration
	}
	if a.Mode != topics.ModeShadow {
		return nil
	}
	if err := h.pub.Publish(plan.HandoffTopic, migrate.HandoffMessage(msg)); err != nil {
		// Judged as an engine refusal is: retried, up to a budget.
		return fmt.Errorf("hand-off to %s: %w", plan.HandoffTopic, err)
	}
	log.Debug("start event handed off to the legacy flow", zap.String("handoff_topic", plan.HandoffTopic), zap.Int("bucket", a.Bucket))
	return nil
}

func (h *handler) raise(ctx context.Context, dec route.Decision) error {
	// A route that drops late events need not learn that one was late.
	o := engine.RaiseOptions{ReportFinished: dec.Route.OnFinished != "drop"}
	if err := h.engine.Raise(ctx, dec.InstanceID, dec.EventName, dec.Payload, o); err != nil {
		return err
	}
	h.stats.Raised.Add(1)
	return nil
}

// control terminates, suspends, resumes or purges the instance.
func (h *handler) control(ctx context.Context, dec route.Decision) error {
	var err error
	switch rt := dec.Route; rt.Action {
	case config.ActionTerminate:
		err = h.engine.Terminate(ctx, dec.InstanceID, rt.Reason)
	case config.ActionSuspend:
		err = h.engine.Suspend(ctx, dec.InstanceID, rt.Reason)
	case config.ActionResume:
		err = h.engine.Resume(ctx, dec.InstanceID, rt.Reason)
	case config.ActionPurge:
		err = h.engine.Purge(ctx, dec.InstanceID)
	}
	if err == nil {
		h.stats.Controlled.Add(1)
	}
	return err
}
