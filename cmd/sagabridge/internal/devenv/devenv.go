// Package devenv is `sagabridge dev`: an embedded NATS server, the bridge on
// the embedded engine with the OrderSaga routes, simulated legacy services,
// and a stream of orders whose outcomes are printed as they arrive.
package devenv

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/migrate"
	"github.com/sagabridge/sagabridge/cmd/sagabridge/brokers"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/order/legacy"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/sagas/registry"
	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/kafka"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// Options tune a dev run.
type Options struct {
	// DataDir holds the NATS store and the workflow database.
	DataDir string
	// Broker is "nats" (an embedded nats-server, the default) or "kafka"
	// (an embedded Kafka-protocol broker, in memory).
	Broker string
	// Orders is how many orders to publish; 0 publishes until ctx ends.
	Orders int
	// Rate is orders per second.
	Rate float64
	// PaymentFailShare is the share of orders whose payment is declined.
	PaymentFailShare float64
	// Legacy runs the legacy order choreography beside the saga, which
	// is then migrating: "shadow", "canary:<percent>" or "active".
	Legacy string
	// LegacySkipRelease makes the legacy inventory service skip releasing
	// stock, so the shadow saga has something to report.
	LegacySkipRelease bool
	// Config, when set, is a user's bridge.yaml (with its saga files):
	// dev runs it instead of the demo, on the in-process broker of kind
	// Broker and the embedded engine, with no simulated services and no
	// orders of its own; the user publishes to it. Orders, Rate,
	// PaymentFailShare and Legacy do not apply.
	Config string
	// Linger keeps the worker, and what Serve started, running after the
	// orders until ctx ends, so the console can be looked at.
	Linger bool
	// Out receives one line per outcome and the summary.
	Out    io.Writer
	Logger *zap.Logger
	// TracerProvider, when set, traces the bridge (see bridge.Options).
	TracerProvider trace.TracerProvider
	// Metrics is handed to the bridge (see bridge.Options).
	Metrics bridge.Metrics
	// Sagas are the Go sagas main registered (the order demo's).
	Sagas *registry.Registry
	// Serve, when set, is called once the bridge is built, with the
	// config dev runs it on (the broker's address filled in): it starts
	// what serves the running bridge, the admin API, and returns how to
	// stop it.
	Serve func(ctx context.Context, cfg *config.Config, b *bridge.Bridge) (stop func(context.Context) error, err error)
}

func (o *Options) setDefaults() {
	if o.DataDir == "" {
		o.DataDir = "data/dev"
	}
	if o.Broker == "" {
		o.Broker = "nats"
	}
	if o.Rate == 0 {
		o.Rate = 20
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// Validate reports every problem at once.
func (o Options) Validate() error {
	var errs []error
	if o.Orders < 0 {
		errs = append(errs, fmt.Errorf("dev: orders %d is negative", o.Orders))
	}
	if o.Broker != "nats" && o.Broker != "kafka" {
		errs = append(errs, fmt.Errorf("dev: broker %q is not nats or kafka", o.Broker))
	}
	if o.Rate <= 0 {
		errs = append(errs, fmt.Errorf("dev: rate %v must be positive", o.Rate))
	}
	if _, _, err := o.migration(); err != nil {
		errs = append(errs, err)
	}
	if o.Config != "" && o.Legacy != "" {
		errs = append(errs, errors.New("dev: legacy runs the demo's choreography; it does not apply to a config of your own"))
	}
	if o.PaymentFailShare < 0 || o.PaymentFailShare > 1 {
		errs = append(errs, fmt.Errorf("dev: payment fail share %v is not within 0..1", o.PaymentFailShare))
	}
	return errors.Join(errs...)
}

// migration reads Legacy: mode and canary percent, or "" for none.
func (o Options) migration() (mode string, percent int, err error) {
	mode, pct, hasPct := strings.Cut(o.Legacy, ":")
	switch {
	case o.Legacy == "":
		return "", 0, nil
	case mode == config.MigrationCanary && hasPct:
		if percent, err = strconv.Atoi(pct); err != nil || percent < 0 || percent > 100 {
			return "", 0, fmt.Errorf("dev: legacy %q: the percent is not within 0..100", o.Legacy)
		}
		return mode, percent, nil
	case (mode == config.MigrationShadow || mode == config.MigrationActive) && !hasPct:
		return mode, 0, nil
	}
	return "", 0, fmt.Errorf("dev: legacy %q is not shadow, canary:<percent> or active", o.Legacy)
}

// Summary counts the outcomes of a run.
type Summary struct {
	Published   int
	ByStatus    map[string]int
	Duplicates  int
	MeanLatency time.Duration
	P50, P99    time.Duration
}

// Run starts everything, publishes the orders and returns when every order
// has an outcome (or ctx ends).
func Run(ctx context.Context, opts Options) (Summary, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return Summary{}, err
	}
	cfg, err := config.Parse("sagas/order/bridge.yaml (embedded)", order.BridgeYAML())
	if err != nil {
		return Summary{}, err
	}
	eb, err := startBroker(cfg, opts)
	if err != nil {
		return Summary{}, err
	}
	defer eb.stop()
	cfg.Engine.Embedded.DBPath = filepath.Join(opts.DataDir, "workflows.db")
	mode, percent, _ := opts.migration()
	if mode != "" {
		if err := WithMigration(cfg, mode, percent); err != nil {
			return Summary{}, err
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	b, stopBridge, err := startBridge(runCtx, cfg, opts, eb)
	if err != nil {
		return Summary{}, err
	}
	defer stopBridge()
	a, err := startActors(runCtx, cfg, opts, eb.connect, mode)
	if err != nil {
		return Summary{}, err
	}
	defer a.close()

	runErr, wait := runAll(append([]func() error{func() error { return b.Run(runCtx) }}, a.tasks...))
	defer wait()
	defer cancel()

	began := time.Now()
	sent := &sentTimes{at: map[string]time.Time{}}
	go publishOrders(runCtx, opts, a.services, a.choreo != nil, began, sent, runErr)

	sum, err := collect(ctx, opts, a, sent, runErr, began)
	if err != nil || !opts.Linger {
		return sum, err
	}
	fmt.Fprintln(opts.Out, "\nstill serving the admin API and the console; Ctrl-C stops")
	select {
	case err := <-runErr:
		return sum, err
	case <-ctx.Done():
		return sum, ctx.Err()
	}
}

// startBridge starts the worker on cfg, and opts.Serve beside it; stop
// stops what Serve started, then closes the worker.
func startBridge(ctx context.Context, cfg *config.Config, opts Options, eb embeddedBroker) (b *bridge.Bridge, stop func(), err error) {
	b, err = bridge.New(ctx, cfg, bridge.Options{Logger: opts.Logger, TracerProvider: opts.TracerProvider, Connect: brokers.Connector{NATSServer: eb.nats}.Connect,
		Metrics: opts.Metrics, Sagas: opts.Sagas})
	if err != nil {
		return nil, nil, err
	}
	closeBridge := func() { _ = b.Close(context.Background()) }
	if opts.Serve == nil {
		return b, closeBridge, nil
	}
	stopServe, err := opts.Serve(ctx, cfg, b)
	if err != nil {
		closeBridge()
		return nil, nil, err
	}
	return b, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = stopServe(ctx)
		cancel()
		closeBridge()
	}, nil
}

// actors are what runs beside the worker: the simulated legacy services
// (the saga's participants) and the outcome watcher, and in a migration
// the legacy choreography and the shadow outcome watcher.
type actors struct {
	// services publishes the orders, as the legacy services do.
	services bridge.Broker
	// notify receives the outcomes both watchers see.
	notify  chan simulated.Received
	watcher *simulated.Watcher
	// choreo is the legacy flow of a migration (nil without one).
	choreo *legacy.Choreography
	tasks  []func() error
	// closers close the broker clients, in the reverse order.
	closers []func()
}

// startActors connects the actors to the broker and builds them; their
// tasks run them until ctx ends.
func startActors(ctx context.Context, cfg *config.Config, opts Options, connect func(group string) (bridge.Broker, error), mode string) (*actors, error) {
	a := &actors{notify: make(chan simulated.Received, 64)}
	client := func(group string) (bridge.Broker, error) {
		c, err := connect(group)
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, func() { _ = c.Close() })
		return c, nil
	}
	fail := func(err error) (*actors, error) {
		a.close()
		return nil, err
	}
	log := opts.Logger
	services, err := client("legacy-services")
	if err != nil {
		return fail(err)
	}
	a.services = services
	watch, err := client("dev-outcome-watcher")
	if err != nil {
		return fail(err)
	}
	simCfg := simulated.Config{PaymentFailShare: opts.PaymentFailShare}
	if mode != "" {
		simCfg.PaymentFailShare = 0 // the orders say which payments fail, for both flows
	}
	parts, err := simulated.New(simCfg,
		services.Publisher(), services.Subscriber(), log.Named("legacy"))
	if err != nil {
		return fail(err)
	}
	a.watcher = simulated.NewWatcher(a.notify)
	a.tasks = []func() error{
		func() error { return parts.Run(ctx) },
		func() error { return a.watcher.Run(ctx, watch.Subscriber(), cfg.Outcomes.Topic) },
	}
	if mode == "" {
		return a, nil
	}
	lc, err := client("legacy-choreography")
	if err != nil {
		return fail(err)
	}
	a.choreo, err = legacy.New(legacy.Config{OrdersTopic: cfg.Migration.Workflows["OrderSaga"].HandoffTopic, SkipRelease: opts.LegacySkipRelease},
		lc.Publisher(), lc.Subscriber(), log.Named("legacy-choreography"))
	if err != nil {
		return fail(err)
	}
	sw, err := client("dev-shadow-watcher")
	if err != nil {
		return fail(err)
	}
	shadow := simulated.NewWatcher(a.notify)
	a.tasks = append(a.tasks,
		func() error { return a.choreo.Run(ctx) },
		func() error { return shadow.Run(ctx, sw.Subscriber(), cfg.Migration.ShadowOutcomesTopic) })
	return a, nil
}

func (a *actors) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// runAll runs each task in a goroutine; errs receives their failures
// (a canceled context is none), wait waits for all of them to return.
func runAll(tasks []func() error) (errs chan error, wait func()) {
	var wg sync.WaitGroup
	errs = make(chan error, len(tasks))
	for _, f := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, context.Canceled) {
				errs <- err
			}
		}()
	}
	return errs, wg.Wait
}

// sentTimes records when each order's saga instance was started, by
// instance ID, so an outcome's latency can be told and an outcome of an
// earlier run ignored.
type sentTimes struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (s *sentTimes) set(id string, t time.Time) {
	s.mu.Lock()
	s.at[id] = t
	s.mu.Unlock()
}

func (s *sentTimes) get(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.at[id]
	return t, ok
}

// publishOrders publishes opts.Orders orders (0: until ctx ends) at
// opts.Rate per second; a publish that fails ends it and goes to errs.
func publishOrders(ctx context.Context, opts Options, pub bridge.Broker, migrating bool, began time.Time, sent *sentTimes, errs chan<- error) {
	run := strconv.FormatInt(began.Unix(), 36)
	tick := time.NewTicker(time.Duration(float64(time.Second) / opts.Rate))
	defer tick.Stop()
	for i := 1; opts.Orders == 0 || i <= opts.Orders; i++ {
		o := simulated.Order{
			OrderID:  fmt.Sprintf("%s-%d", run, i),
			Customer: fmt.Sprintf("customer-%d", i%7),
			SKU:      fmt.Sprintf("sku-%d", i%5),
			Quantity: 1 + i%3,
			Amount:   float64(10 + i%90),
		}
		if migrating && opts.PaymentFailShare > 0 {
			// The legacy services read the failure from the order;
			// the saga's participants do too.
			o.FailPayment = i%max(1, int(math.Round(1/opts.PaymentFailShare))) == 0
		}
		sent.set("order-"+o.OrderID, time.Now())
		if err := simulated.PublishOrder(pub.Publisher(), order.OrdersPlaced, "evt-"+o.OrderID, o); err != nil {
			errs <- err
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// collect prints each outcome of this run's orders as it arrives, and the
// summary once all opts.Orders have one or ctx ends; an error of a task
// ends it at once.
func collect(ctx context.Context, opts Options, a *actors, sent *sentTimes, errs <-chan error, began time.Time) (Summary, error) {
	sum := Summary{ByStatus: map[string]int{}}
	var lat []time.Duration
	var migrating []topics.Outcome
	for opts.Orders == 0 || len(lat) < opts.Orders {
		select {
		case r := <-a.notify:
			t0, ours := sent.get(r.Outcome.InstanceID)
			if !ours {
				continue // an outcome of an earlier run, delivered late
			}
			d := r.At.Sub(t0)
			lat = append(lat, d)
			sum.ByStatus[r.Outcome.Status]++
			if r.Outcome.Migration != nil {
				migrating = append(migrating, r.Outcome)
			}
			fmt.Fprintln(opts.Out, outcomeLine(r.Outcome, d))
		case err := <-errs:
			return sum, err
		case <-ctx.Done():
			return finish(sum, lat, a.watcher, opts.Out, began, migrating), ctx.Err()
		}
	}
	return finish(sum, lat, a.watcher, opts.Out, began, migrating), nil
}

// outcomeLine is the line printed for an outcome that arrived d after its
// order was published.
func outcomeLine(o topics.Outcome, d time.Duration) string {
	line := fmt.Sprintf("%-22s %-12s %6.0f ms", o.InstanceID, o.Status, float64(d.Microseconds())/1000)
	if o.Error != "" {
		line += "  " + o.Error
	}
	if len(o.Compensated) > 0 {
		line += fmt.Sprintf("  (undone: %v)", o.Compensated)
	}
	if m := o.Migration; m != nil {
		line = fmt.Sprintf("%-6s %s", m.Mode, line)
		for _, dv := range m.Divergences {
			line += fmt.Sprintf("\n         divergence %s on %s: %s", dv.Kind, dv.Step, dv.Detail)
		}
	}
	return line
}

// RunConfig runs the user's config (opts.Config) on the in-process broker
// and the embedded engine until ctx ends, printing each outcome published
// to the config's outcome topic. It prints the broker's address so that
// the user's producers and participants connect to it.
func RunConfig(ctx context.Context, opts Options) error {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return err
	}
	cfg, err := config.Load(opts.Config)
	if err != nil {
		return err
	}
	eb, err := startBroker(cfg, opts)
	if err != nil {
		return err
	}
	defer eb.stop()
	cfg.Engine.Kind = "embedded"
	cfg.Engine.Embedded.DBPath = filepath.Join(opts.DataDir, "workflows.db")
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	b, err := bridge.New(runCtx, cfg, bridge.Options{Logger: opts.Logger, TracerProvider: opts.TracerProvider,
		Connect: brokers.Connector{NATSServer: eb.nats}.Connect, Metrics: opts.Metrics, Sagas: opts.Sagas})
	if err != nil {
		return err
	}
	defer func() { _ = b.Close(context.Background()) }()
	if opts.Serve != nil {
		stop, err := opts.Serve(runCtx, cfg, b)
		if err != nil {
			return err
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = stop(ctx)
		}()
	} else {
		fmt.Fprintf(opts.Out, "broker     %s\n\n", eb.address)
	}
	watch, err := eb.connect("dev-outcome-watcher")
	if err != nil {
		return err
	}
	defer watch.Close()
	notify := make(chan simulated.Received, 64)
	watcher := simulated.NewWatcher(notify)
	runErr := make(chan error, 2)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, f := range []func() error{
		func() error { return b.Run(runCtx) },
		func() error { return watcher.Run(runCtx, watch.Subscriber(), cfg.Outcomes.Topic) },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, context.Canceled) {
				runErr <- err
			}
		}()
	}
	fmt.Fprintf(opts.Out, "running %s: publish to %v; outcomes on %s\n", opts.Config, routedTopics(cfg), cfg.Outcomes.Topic)
	for {
		select {
		case r := <-notify:
			line := fmt.Sprintf("%-22s %-12s", r.Outcome.InstanceID, r.Outcome.Status)
			if r.Outcome.Error != "" {
				line += "  " + r.Outcome.Error
			}
			if len(r.Outcome.Compensated) > 0 {
				line += fmt.Sprintf("  (undone: %v)", r.Outcome.Compensated)
			}
			fmt.Fprintln(opts.Out, line)
		case err := <-runErr:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func routedTopics(cfg *config.Config) []string {
	var out []string
	for _, r := range cfg.Routes {
		for _, t := range r.Topics {
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

// embeddedBroker is the broker dev runs in its own process.
type embeddedBroker struct {
	// connect makes a client with its own consumer group.
	connect func(group string) (bridge.Broker, error)
	stop    func()
	// nats is the nats-server (nil on Kafka): the bridge and the clients
	// connect to it in-process.
	nats *natsjs.Server
	// address is where other processes reach the broker.
	address string
}

// startBroker starts the embedded broker and points cfg at it.
func startBroker(cfg *config.Config, opts Options) (embeddedBroker, error) {
	if opts.Broker == "kafka" {
		k, err := kafka.StartEmbedded()
		if err != nil {
			return embeddedBroker{}, err
		}
		cfg.Broker.Kind = "kafka"
		cfg.Broker.Kafka.Brokers = k.Brokers()
		cfg.Broker.Kafka.AutoCreateTopics = true // dev only: production topics are provisioned
		connect := func(group string) (bridge.Broker, error) {
			return kafka.NewGroupClient(k.Brokers(), group)
		}
		return embeddedBroker{connect: connect, stop: k.Close, address: "kafka://" + strings.Join(k.Brokers(), ",")}, nil
	}
	srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: filepath.Join(opts.DataDir, "nats")})
	if err != nil {
		return embeddedBroker{}, err
	}
	cfg.Broker.Kind = "nats"
	cfg.Broker.NATS.URL = srv.ClientURL()
	connect := func(group string) (bridge.Broker, error) {
		return natsjs.New(natsjs.Config{URL: srv.ClientURL(), ConsumerGroup: group, Concurrency: 8,
			Options: []nats.Option{srv.InProcess()}})
	}
	return embeddedBroker{connect: connect, stop: srv.Shutdown, nats: srv, address: srv.ClientURL()}, nil
}

func finish(sum Summary, lat []time.Duration, w *simulated.Watcher, out io.Writer, began time.Time, migrating []topics.Outcome) Summary {
	sum.Published = len(lat)
	sum.Duplicates = w.Duplicates()
	if len(lat) > 0 {
		var total time.Duration
		for _, d := range lat {
			total += d
		}
		sum.MeanLatency = total / time.Duration(len(lat))
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		sum.P50 = lat[len(lat)/2]
		sum.P99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	fmt.Fprintf(out, "\n%d sagas: %d completed, %d compensated, %d failed; duplicate outcomes dropped: %d\n",
		len(lat), sum.ByStatus[topics.StatusCompleted], sum.ByStatus[topics.StatusCompensated],
		sum.ByStatus[topics.StatusFailed], sum.Duplicates)
	fmt.Fprintf(out, "event published → outcome received: mean %s, p50 %s, p99 %s\n",
		sum.MeanLatency.Round(time.Millisecond), sum.P50.Round(time.Millisecond), sum.P99.Round(time.Millisecond))
	if len(migrating) > 0 {
		fmt.Fprintln(out, "\nmigration report of this run (sagabridge migrate report prints the same from the topics):")
		_ = migrate.WriteTable(out, migrate.Summarize(migrating, began, time.Now(), 3))
	}
	return sum
}
