// Package bridge is the worker: it consumes domain events from the broker,
// decodes them (envelope), matches routes (route), acts on the workflow
// engine (engine), dead-letters what it cannot handle (dlq), and runs the
// sagas whose outcomes go back to the broker.
//
// All wiring is in New. The broker comes in through Options: a Connect
// (cmd/sagabridge/brokers connects the configured NATS or Kafka) or a
// connected Broker; the bridge imports no broker package.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/dapr/durabletask-go/workflow"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/migrate"
	"github.com/sagabridge/sagabridge/bridge/route"
	"github.com/sagabridge/sagabridge/bridge/sagaview"
	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/engine/embedded"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/migration"
	"github.com/sagabridge/sagabridge/sagas/registry"
	"github.com/sagabridge/sagabridge/topics"
)

// Broker is a connected publisher and subscriber. What else the worker
// asks of a broker (health, a feed outside the consumer group, dead
// letters, lag, outcome reads) is in small interfaces beside their users;
// a broker that lacks one is answered for with ErrNotMeasured or not at
// all.
type Broker interface {
	Publisher() message.Publisher
	Subscriber() message.Subscriber
	Close() error
}

// BrokerParams is what a Connect is given.
type BrokerParams struct {
	Config config.Broker
	// Key orders the routed topics' messages by workflow instance: the
	// subscriber hands out messages with the same key one at a time, in
	// order. It decodes and routes each message on the way, and the
	// handler gets that work back in topics.Delivery.Keyed.
	Key topics.Keyer
	// Log is for what the connection has to say; Watermill is for the
	// adapters.
	Log       *zap.Logger
	Watermill watermill.LoggerAdapter
}

// Connect connects the broker the config describes. The composition root
// supplies it (cmd/sagabridge/brokers): the bridge imports no broker.
type Connect func(ctx context.Context, p BrokerParams) (Broker, error)

// Options are the parts tests and `dev` swap or add.
type Options struct {
	Logger *zap.Logger
	// Connect connects the configured broker, which the bridge closes.
	Connect Connect
	// Broker, when set, is used instead of connecting one; the bridge
	// does not close it.
	Broker Broker
	// Sagas are the Go sagas, workflows and compensations the worker's
	// main registered (sagas/registry); nil is none. The config's
	// declarative sagas are always on beside them, and one that has a
	// registered name is refused at startup.
	Sagas *registry.Registry
	// Patches lists, per workflow, the patch names it checks with
	// IsPatched; the dapr engine refuses such workflows (engine.CheckPatches).
	Patches map[string][]string
	// Activities are registered beside the sagas' own, by name
	// (benchmarks, tests).
	Activities map[string]workflow.Activity
	// Metrics receives counters and timings; nil discards them.
	Metrics Metrics
	// TracerProvider makes the spans of message handling, engine calls
	// and saga publishes (see bridge/tracing); nil means no tracing. It is
	// passed here rather than installed globally so that tests and
	// embedders choose their own.
	TracerProvider trace.TracerProvider
}

// Bridge is a configured worker.
type Bridge struct {
	cfg        *config.Config
	sagas      *registry.Registry
	log        *zap.Logger
	broker     Broker
	ownsBroker bool
	engine     *engine.Engine
	router     *route.Router
	handler    *handler
	stats      *Stats
	migration  *migrate.Planner
	// consuming: Run has subscribed to every routed topic.
	consuming atomic.Bool
	running   *runningSagas
	// sagaTopics are every topic the sagas publish progress and outcomes
	// to: the config's and those saga files name.
	sagaTopics []string
	// sagaView lists instances and tells their histories; progressLog
	// keeps the progress events its timelines use on daprd (nil on the
	// embedded engine, which keeps histories).
	sagaView    *sagaview.Service
	progressLog *sagaview.ProgressLog
}

// New validates the config, connects the broker, starts the engine and
// compiles the routes. Close releases everything New acquired.
func New(ctx context.Context, cfg *config.Config, opts Options) (b *Bridge, err error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	cat, router, err := prepare(cfg, opts)
	if err != nil {
		return nil, err
	}
	for _, w := range cat.warnings(cfg, router) {
		log.Warn(w)
	}
	reg := engine.Registry{Workflows: cat.workflows, Activities: map[string]workflow.Activity{}, Patches: opts.Patches}
	metrics := opts.Metrics
	if metrics == nil {
		metrics = NopMetrics{}
	}
	b = &Bridge{cfg: cfg, log: log, router: router, stats: &Stats{}, running: newRunningSagas(maxRunningSagas),
		sagaTopics: cat.eventTopics(cfg.Outcomes), sagas: opts.Sagas}
	if len(cfg.Migration.Workflows) > 0 {
		b.migration = migrate.NewPlanner(cfg.Migration)
	}
	// The bridge under construction, not the named result: a `return nil,
	// err` has already set that to nil when this runs.
	built := b
	defer func() {
		if err != nil {
			err = errors.Join(err, built.Close(context.WithoutCancel(ctx)))
			b = nil
		}
	}()

	if err := b.connectBroker(ctx, opts); err != nil {
		return nil, err
	}

	tr := newTracer(opts.TracerProvider, cat.sagaWorkflows())
	// The worker runs activities as soon as the engine starts, before New
	// has stored it: the publisher finds it through this pointer.
	var eng atomic.Pointer[engine.Engine]
	finished := func(id, status string, at time.Time) {
		if e := eng.Load(); e != nil {
			e.Finished(id, status, at)
		}
	}
	acts, err := sagas.NewActivities(eventPublisher{pub: b.broker.Publisher(), metrics: metrics, tracer: tr, log: log.Named("sagas"), finished: finished},
		sagas.DefaultTopics{Outcomes: cfg.Outcomes.Topic, Progress: cfg.Outcomes.ProgressTopic})
	if err != nil {
		return nil, err
	}
	maps.Copy(reg.Activities, opts.Activities)
	maps.Copy(reg.Activities, acts.Registered())
	engCfg, err := engineConfig(cfg.Engine)
	if err != nil {
		return nil, err
	}
	b.engine, err = engine.New(ctx, engCfg, reg, log.Named("engine"))
	if err != nil {
		return nil, err
	}
	eng.Store(b.engine)
	if b.engine.Kind() == engine.KindDapr {
		b.progressLog = sagaview.NewProgressLog(sagaview.DefaultLogInstances, sagaview.DefaultLogEvents)
	}
	if b.sagaView, err = sagaview.New(b.engine, b.progressLog); err != nil {
		return nil, err
	}
	b.handler = b.newHandler(starter{defs: cat.defs, sagas: cat.sagaWorkflows(), tracer: tr}.input, metrics, tr)
	return b, nil
}

// newHandler is the handler of the routed topics, on the bridge's router,
// engine and broker.
func (b *Bridge) newHandler(startInput func(context.Context, string, int, *migration.Assignment, []byte) ([]byte, error), metrics Metrics, tr tracer) *handler {
	cfg := b.cfg
	return (&handler{
		router:     b.router,
		engine:     b.engine,
		migration:  b.migration,
		pub:        b.broker.Publisher(),
		dlqTopic:   cfg.DLQ.Topic,
		maxPayload: cfg.Limits.MaxPayloadBytes,
		maxInput:   cfg.Limits.MaxInputBytes,
		access:     b.router.Access(),
		startInput: startInput,
		timeout:    cfg.Broker.AckWait * 3 / 4,
		limits:     brokerLimits(b.broker),
		// Past this without a retry of the stuck message, it is another
		// replica's: the longest redelivery backoff plus the ack wait.
		stalls:  newStalls(3*cfg.Broker.AckWait + 10*time.Second),
		stats:   b.stats,
		metrics: metrics,
		tracer:  tr,
		log:     b.log.Named("handler"),
		now:     time.Now,
	}).build()
}

// brokerLimits is what the broker says about the largest message it
// stores; nil when it does not say.
func brokerLimits(br Broker) func() topics.MessageLimits {
	if l, ok := br.(interface{ MessageLimits() topics.MessageLimits }); ok {
		return l.MessageLimits
	}
	return nil
}

func engineConfig(c config.Engine) (engine.Config, error) {
	out := engine.Config{
		Kind: engineKind(c.Kind),
		Embedded: embedded.Config{
			DBPath:      c.Embedded.DBPath,
			Parallelism: c.Embedded.Parallelism,
			Synchronous: c.Embedded.Synchronous,
		},
		Dapr: engine.DaprConfig{GRPCEndpoint: c.Dapr.GRPCEndpoint, RetentionDir: c.Dapr.RetentionDir},
	}
	for _, r := range []struct {
		to   *time.Duration
		from *time.Duration
	}{
		{&out.Retention.Completed, c.Retention.Completed},
		{&out.Retention.Compensated, c.Retention.Compensated},
		{&out.Retention.Failed, c.Retention.Failed},
	} {
		if r.from != nil {
			*r.to = *r.from
		}
	}
	if c.Dapr.APITokenFile != "" {
		tok, err := readSecret(c.Dapr.APITokenFile)
		if err != nil {
			return out, fmt.Errorf("engine: api token: %w", err)
		}
		out.Dapr.APIToken = tok
	}
	return out, nil
}

// engineKind is engine.kind as the engine takes it; config.Validate has
// refused any word but embedded and dapr.
func engineKind(kind string) engine.Kind {
	if kind == "dapr" {
		return engine.KindDapr
	}
	return engine.KindEmbedded
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// connectBroker uses the broker passed in, or connects the configured one.
func (b *Bridge) connectBroker(ctx context.Context, opts Options) error {
	if opts.Broker != nil {
		b.broker = opts.Broker
		return nil
	}
	if opts.Connect == nil {
		return errors.New("broker: neither Options.Broker nor Options.Connect is set")
	}
	br, err := opts.Connect(ctx, BrokerParams{Config: b.cfg.Broker, Key: b.orderKey,
		Log: b.log.Named("broker"), Watermill: newWMLogger(b.log.Named("watermill"))})
	if err != nil {
		return err
	}
	b.broker, b.ownsBroker = br, true
	return nil
}

// orderKey orders a topic's messages by workflow instance: the broker
// adapter hands out messages with the same key one at a time, in order.
// Finding the instance decodes and routes the message; the handler gets
// that work back with each delivery (topics.Delivery.Keyed).
func (b *Bridge) orderKey(topic string, msg *message.Message) (string, any) {
	p := b.handler.prepare(topic, msg)
	return p.key(), p
}

// UpdateMigration applies a reloaded config's migration modes and
// percentages to instances that start from now on. Any other difference
// is an error and changes nothing: it needs a restart.
func (b *Bridge) UpdateMigration(next *config.Config) error {
	if err := b.cfg.MigrationChanges(next); err != nil {
		return err
	}
	if b.migration != nil {
		b.migration.Update(next.Migration)
		b.cfg.Migration = next.Migration
	}
	return nil
}

// Engine exposes the engine for the admin commands and tests.
func (b *Bridge) Engine() *engine.Engine { return b.engine }

// Stats exposes the counters.
func (b *Bridge) Stats() *Stats { return b.stats }

// Publisher is the broker's publisher (dev uses it for simulated services).
func (b *Bridge) Publisher() message.Publisher { return b.broker.Publisher() }

// Subscriber is the broker's subscriber.
func (b *Bridge) Subscriber() message.Subscriber { return b.broker.Subscriber() }

// Run consumes every routed topic until ctx ends, then stops consuming and
// waits for in-flight handlers. It does not close the engine or broker.
func (b *Bridge) Run(ctx context.Context) error {
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, newWMLogger(b.log.Named("router")))
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	// A panic in a handler nacks the message instead of killing the worker.
	r.AddMiddleware(middleware.Recoverer)
	for _, topic := range b.router.Topics() {
		r.AddConsumerHandler("route_"+topic, topic, b.broker.Subscriber(), b.handler.Handle)
	}
	if f, ok := b.broker.(follower); ok {
		sinks := progressSinks{b.running}
		if b.progressLog != nil {
			sinks = append(sinks, b.progressLog, rememberSink{b})
		}
		stop := b.runProgress(ctx, f, sinks)
		defer stop()
	}
	b.log.Info("bridge consuming", zap.Strings("topics", b.router.Topics()))
	go func() {
		select {
		case <-r.Running():
			b.consuming.Store(true)
		case <-ctx.Done():
		}
	}()
	// Watermill's router stops by itself when its handlers stop, which
	// they do when ctx ends; a router without handlers (a config with no
	// routes) waits for one to be added and has to be closed.
	ran := make(chan struct{})
	defer close(ran)
	go func() {
		select {
		case <-ctx.Done():
		case <-ran:
			return
		}
		if err := r.Close(); err != nil {
			b.log.Warn("router close", zap.Error(err))
		}
	}()
	defer b.consuming.Store(false)
	if err := r.Run(ctx); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	return nil
}

// Close stops the engine (its worker first), then the broker.
func (b *Bridge) Close(ctx context.Context) error {
	var errs []error
	if b.engine != nil {
		errs = append(errs, b.engine.Close(ctx))
	}
	if b.ownsBroker && b.broker != nil {
		errs = append(errs, b.broker.Close())
	}
	return errors.Join(errs...)
}
