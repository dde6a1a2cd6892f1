package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
	"github.com/sagabridge/sagabridge/topics"
)

// counts keeps a number per unsettled message (deliveries for brokers that
// do not count them, engine refusals), keyed by the message's identity on
// the broker (dlq.Origin), and forgets it when the message is settled. It
// holds at most max messages, forgetting the oldest first: a message
// another replica settled is never forgotten here otherwise. A restart or
// an eviction forgets a count; that only means a few more retries.
type counts struct {
	mu    sync.Mutex
	max   int
	n     map[string]int
	order []string // keys in the order they were first counted
}

// defaultCountsMax bounds each counts map: a few times what a worker holds
// unsettled at once.
const defaultCountsMax = 1 << 16

func (c *counts) next(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	if _, ok := c.n[key]; !ok {
		limit := c.max
		if limit <= 0 {
			limit = defaultCountsMax
		}
		for len(c.n) >= limit && len(c.order) > 0 {
			delete(c.n, c.order[0])
			c.order = c.order[1:]
		}
		c.order = append(c.order, key)
	}
	c.n[key]++
	return c.n[key]
}

func (c *counts) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.n[key]; !ok {
		return
	}
	delete(c.n, key)
	// Forgotten keys leave the order list lazily; compact it once it is
	// mostly stale, so it stays proportional to the map.
	if len(c.order) > 2*len(c.n)+64 {
		live := c.order[:0]
		for _, k := range c.order {
			if _, ok := c.n[k]; ok {
				live = append(live, k)
			}
		}
		c.order = live
	}
}

func (c *counts) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.n)
}

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
type handler struct {
	router *route.Router
	engine Engine
	// migration decides how new instances of migrating workflows run; nil
	// when nothing migrates.
	migration *migrate.Planner
	// prepared holds what the ordering key function already decoded and
	// routed; nil or a miss means the handler does it.
	prepared *preparedCache
	// pub publishes dead letters and hand-offs to the legacy flow.
	pub        message.Publisher
	dlqTopic   string
	maxPayload int
	maxInput   int
	// access is the route-level allow-list; nil allows everything.
	access *access.Policy
	// startInput turns a route's input into the workflow's start input: a
	// declarative saga's is pinned to a version, and refused when that
	// version is not loaded. nil passes inputs unchanged.
	startInput func(workflow string, version int, input []byte) ([]byte, error)
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
}

func (h *handler) Handle(msg *message.Message) (err error) {
	topic := message.SubscribeTopicFromCtx(msg.Context())
	// The handler finishes what it started even when the worker is told to
	// stop: an engine call cut short is a redelivery for nothing. Its own
	// deadline, below the broker's ack wait, bounds it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(msg.Context()), h.timeout)
	defer cancel()
	h.stats.Consumed.Add(1)
	h.metrics.EventConsumed(topic)
	h.metrics.InFlight(1)
	began := h.now()
	defer func() {
		h.metrics.InFlight(-1)
		result := "ack"
		if err != nil {
			result = "nack"
		}
		h.metrics.HandlerDone(topic, result, h.now().Sub(began))
	}()
	d := delivery{topic: topic, attempts: 1, first: h.now(), origin: dlq.Identify(topic, msg, "", "")}
	// Counters are per stored message (its broker identity), never per
	// payload or producer-chosen id; settled messages are forgotten.
	key := topic + "\x00" + d.origin.ID
	defer func() {
		if err == nil {
			h.tries.forget(key)
			h.refused.forget(key)
		}
	}()
	// Deliveries: the broker's count when it keeps one, else this
	// worker's.
	d.attempts = h.tries.next(key)
	told, _ := topics.DeliveryOf(msg)
	d.attempts = max(d.attempts, told.Count)
	d.refusalKey = key
	if err := h.stalls.check(topic, d.origin.ID, h.now()); err != nil {
		h.prepared.take(msg) // not handled now; a redelivery is a new message
		return fmt.Errorf("%w: %w", errRetryLater, err)
	}
	// The time the broker stored the event starts the park window.
	if !told.StoredAt.IsZero() {
		d.first = told.StoredAt
	}

	headers := map[string]string(msg.Metadata)
	tooLarge := len(msg.Payload) > h.maxPayload
	var ev envelope.Event
	var decodeErr error
	pre, isPrepared := h.prepared.take(msg)
	switch {
	case tooLarge:
	case isPrepared:
		ev, decodeErr = pre.ev, pre.decodeErr
	default:
		ev, decodeErr = envelope.Decode(msg.Payload, headers)
	}
	var decoded *envelope.Event
	if !tooLarge && decodeErr == nil {
		decoded = &ev
	}
	ctx, d.span = h.tracer.startHandle(ctx, topic, msg, decoded, began)
	defer func() { endSpan(d.span, err) }()
	if tooLarge {
		return h.dead(msg, d, dlq.Failure{Kind: dlq.KindTooLarge,
			Reason: fmt.Sprintf("payload of %d bytes exceeds the %d byte limit", len(msg.Payload), h.maxPayload)})
	}
	if told.ReadError != "" {
		return h.dead(msg, d, dlq.Failure{Kind: dlq.KindDecode, Reason: told.ReadError})
	}
	if decodeErr != nil {
		return h.dead(msg, d, dlq.Failure{Kind: dlq.KindDecode, Reason: decodeErr.Error()})
	}
	d.eventType, d.eventID, d.eventSource = ev.Type, ev.ID, ev.Source
	decisions, err := pre.decisions, pre.routeErr
	if !isPrepared {
		decisions, err = h.router.Route(topic, ev, headers)
	}
	if err != nil {
		kind := dlq.KindEval
		if errors.Is(err, envelope.ErrDecode) {
			kind = dlq.KindDecode
		}
		f := dlq.Failure{Kind: kind, Reason: err.Error()}
		var re *route.Error
		if errors.As(err, &re) {
			f.Route = re.Route
		}
		return h.dead(msg, d, f)
	}
	if len(decisions) == 0 {
		h.stats.Unmatched.Add(1)
		h.metrics.Unmatched(topic)
		h.log.Debug("no route matched", zap.String("topic", topic), zap.String("event_id", ev.ID), zap.String("event_type", ev.Type))
		return nil
	}
	// Decisions run in route order. A retry runs them all again: starts are
	// idempotent, and a raise may then be delivered twice (see docs/guarantees.md).
	for _, dec := range decisions {
		if err := h.act(ctx, msg, d, dec); err != nil {
			return err
		}
	}
	return nil
}

// delivery is what the handler knows about this delivery of a message.
type delivery struct {
	topic              string
	attempts           int
	first              time.Time
	eventType, eventID string
	eventSource        string
	// origin identifies the message on the broker; refusalKey keys its
	// engine refusals.
	origin     dlq.Origin
	refusalKey string
	// span is the message's decode-and-route span (a no-op when tracing
	// is off).
	span trace.Span
}

func (h *handler) act(ctx context.Context, msg *message.Message, d delivery, dec route.Decision) error {
	rt := dec.Route
	if rt.Limit != nil {
		select {
		case rt.Limit <- struct{}{}:
			defer func() { <-rt.Limit }()
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for route %s concurrency: %w", errRetryLater, rt.Name, ctx.Err())
		}
	}
	// WithLazy: the fields are encoded only if something is logged, which
	// on the happy path at info level is never.
	log := h.log.WithLazy(zap.String("route", rt.Name), zap.String("topic", d.topic),
		zap.String("event_id", d.eventID), zap.String("instance_id", dec.InstanceID))
	if f, ok := h.tooLargeInput(dec); !ok {
		return h.dead(msg, d, f)
	}
	ctx, span := h.tracer.startEngine(ctx, d.span, rt.Name, rt.Action, dec.InstanceID, rt.Workflow)
	var err error
	defer func() { endSpan(span, err) }()
	// allowed checks the access policy on the instance the action
	// addresses; its workflow is known only by asking the engine.
	allowed := func(op string) error { return h.authorize(ctx, dec, d.topic, op) }
	switch rt.Action {
	case config.ActionStart:
		err = h.start(ctx, log, msg, rt, d.topic, dec.InstanceID, dec.Input)
	case config.ActionRaise:
		if err = allowed(config.ActionRaise); err == nil {
			err = h.raise(ctx, dec)
		}
	case config.ActionStartOrRaise:
		if err = h.start(ctx, log, msg, rt, d.topic, dec.InstanceID, dec.Input); err == nil {
			// The instance may run another workflow than the route starts.
			if err = allowed(config.ActionRaise); err == nil {
				err = h.raise(ctx, dec)
			}
		}
	case config.ActionTerminate:
		if err = allowed(rt.Action); err == nil {
			err = h.control(h.engine.Terminate(ctx, dec.InstanceID, rt.Reason))
		}
	case config.ActionSuspend:
		if err = allowed(rt.Action); err == nil {
			err = h.control(h.engine.Suspend(ctx, dec.InstanceID, rt.Reason))
		}
	case config.ActionResume:
		if err = allowed(rt.Action); err == nil {
			err = h.control(h.engine.Resume(ctx, dec.InstanceID, rt.Reason))
		}
	case config.ActionPurge:
		if err = allowed(rt.Action); err == nil {
			err = h.control(h.engine.Purge(ctx, dec.InstanceID))
		}
	default:
		return h.dead(msg, d, dlq.Failure{Kind: dlq.KindEval, Route: rt.Name, Reason: "route has no action " + rt.Action})
	}
	if err == nil {
		h.metrics.EventRouted(rt.Name, rt.Action)
		return nil
	}

	fail := dlq.Failure{Route: rt.Name, Reason: err.Error()}
	switch {
	case errors.Is(err, errDenied):
		fail.Kind = dlq.KindDenied
		log.Warn("action denied by the access policy", zap.String("reason", fail.Reason))
	case errors.Is(err, errUnknownWorkflow), errors.Is(err, engine.ErrUnknownWorkflow):
		fail.Kind = dlq.KindUnknownWorkflow
	case errors.Is(err, engine.ErrNotFound) && (rt.Action == config.ActionRaise || rt.Action == config.ActionStartOrRaise):
		// The saga may not have started yet: park the event by letting the
		// broker redeliver it with backoff, until the route's window ends.
		if h.now().Sub(d.first) < rt.ParkWindow {
			h.stats.Parked.Add(1)
			h.metrics.Parked(rt.Name)
			log.Debug("instance not found yet; parked", zap.Int("attempt", d.attempts))
			return fmt.Errorf("%w: %w", errRetryLater, err)
		}
		fail.Kind = dlq.KindNotFound
		fail.Reason = fmt.Sprintf("instance %s not found after waiting %s: %v", dec.InstanceID, rt.ParkWindow, err)
	case errors.Is(err, engine.ErrNotFound):
		fail.Kind = dlq.KindNotFound
	case errors.Is(err, engine.ErrFinished):
		if rt.OnFinished == "drop" {
			h.stats.DroppedFinished.Add(1)
			h.metrics.DroppedFinished(rt.Name)
			log.Info("event for a finished instance dropped by route policy")
			return nil
		}
		fail.Kind = dlq.KindFinished
	case errors.Is(err, engine.ErrUnavailable):
		h.stats.EngineErrors.Add(1)
		h.metrics.EngineError(rt.Action)
		log.Warn("engine unavailable; will retry", zap.Error(err), zap.Int("attempt", d.attempts))
		return fmt.Errorf("%w: %w", errRetryLater, err)
	default:
		h.stats.EngineErrors.Add(1)
		h.metrics.EngineError(rt.Action)
		refusals := h.refused.next(d.refusalKey)
		if refusals < maxEngineAttempts {
			log.Warn("engine refused; will retry", zap.Error(err), zap.Int("attempt", d.attempts), zap.Int("refusals", refusals))
			return fmt.Errorf("%w: %w", errRetryLater, err)
		}
		fail.Kind = dlq.KindEngine
		fail.Reason = fmt.Sprintf("engine refused %d times: %v", refusals, err)
	}
	return h.dead(msg, d, fail)
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

func (h *handler) start(ctx context.Context, log *zap.Logger, msg *message.Message, rt *route.Route, topic, id string, input []byte) error {
	wf := rt.Workflow
	// Load-time validation already refused a start route the policy
	// does not allow; this keeps the rule where the action happens.
	if !h.access.Allowed(wf, config.ActionStart, rt.Name, topic) {
		return fmt.Errorf("%w: instance %s: %s", errDenied, id, h.access.Denial(wf, config.ActionStart, rt.Name, topic))
	}
	if h.startInput != nil {
		var err error
		if input, err = h.startInput(wf, rt.Version, input); err != nil {
			return fmt.Errorf("%w: start %s %s: %w", errUnknownWorkflow, wf, id, err)
		}
	}
	plan, migrating := h.migration.For(wf)
	var a sagas.Assignment
	if migrating {
		a = plan.Assign(id)
		var err error
		if input, err = sagas.WrapInput(a, input); err != nil {
			return err
		}
	}
	input, err := h.tracer.startInput(ctx, wf, input)
	if err != nil {
		return err
	}
	before := time.Now()
	started, err := h.engine.Start(ctx, wf, id, input)
	if err != nil {
		return err
	}
	if migrating {
		// A start of a finished instance is ignored by the engine, which
		// does not say so; a migrating saga must know, or an instance run
		// by the legacy flow would be handed off again. Its status tells:
		// one created before this start was already there. Only migrating
		// sagas pay this look-up.
		var st engine.Status
		if st, err = h.engine.Get(ctx, id); err != nil {
			return err
		}
		if started && st.CreatedAt.Before(before) {
			started = false
		}
		if started {
			h.metrics.MigrationAssigned(wf, a.Mode)
		}
		if err := h.handoff(log, msg, plan, st, started, a); err != nil {
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

// handoff passes the start event of an instance the saga does not drive to
// the legacy flow. A repeated start reads the mode the instance was started
// with, never today's percentage, so an instance is handed off exactly when
// its first start said so; st is the instance's status after the start.
func (h *handler) handoff(log *zap.Logger, msg *message.Message, plan migrate.Plan, st engine.Status, started bool, a sagas.Assignment) error {
	if plan.HandoffTopic == "" {
		return nil
	}
	if !started {
		pinned, err := sagas.AssignmentOf([]byte(st.Input))
		if err != nil || pinned == nil {
			// Started before it was migrating: the saga drives it.
			return nil
		}
		a = *pinned
	}
	if a.Mode != topics.ModeShadow {
		return nil
	}
	if err := h.pub.Publish(plan.HandoffTopic, migrate.HandoffMessage(msg)); err != nil {
		return fmt.Errorf("%w: hand-off to %s: %w", errRetryLater, plan.HandoffTopic, err)
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

func (h *handler) control(err error) error {
	if err == nil {
		h.stats.Controlled.Add(1)
	}
	return err
}

// dead stores the message on the dead-letter topic; only then is the
// original acked. A copy that does not fit the broker's limits (a payload
// near max_payload, headers over JetStream's 64 KiB) is replaced by a
// truncated one that points at the original. When even that cannot be
// stored, the original is nacked and its topic stopped (see stalls):
// nothing is acked silently, and the worker says it is stuck.
func (h *handler) dead(msg *message.Message, d delivery, f dlq.Failure) error {
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
func (h *handler) stall(d delivery, f dlq.Failure, err error) {
	if !h.stalls.block(d.topic, d.origin.ID, h.now(), err) {
		return
	}
	h.log.Error("dead letter cannot be stored: topic stopped until it is; /readyz is not ready",
		zap.String("topic", d.topic), zap.String("kind", f.Kind), zap.String("route", f.Route),
		zap.String("event_id", dlq.Clip(d.eventID, 128)), zap.String("original", d.origin.Pointer), zap.Error(err))
}
