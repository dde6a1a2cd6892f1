package benchmark

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/dapr/durabletask-go/workflow"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/cmd/sagabridge/brokers"
	"github.com/sagabridge/sagabridge/sagas/registry"
	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/kafka"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// Modes of driving the workload.
const (
	ModeBridge = "bridge" // events on the broker, routed by the bridge
	ModeDirect = "direct" // Start + Raise on the engine client, no broker in
)

// Options configure a run.
type Options struct {
	// Brokers to run on: "nats", "kafka".
	Brokers []string
	// Modes to measure, in order: ModeDirect, ModeBridge (default both; one
	// alone gives a CPU profile of that path only).
	Modes []string
	// Concurrency levels: sagas in flight at once.
	Concurrency []int
	// Sagas per measurement.
	Sagas int
	// Parked is how many instances the memory case leaves waiting (0: skip).
	Parked int
	// DataDir holds the databases and broker stores of the run.
	DataDir string
	// DaprGRPC, when set, runs the engine in that daprd sidecar instead of
	// the embedded hub (and skips the parked-instance case).
	DaprGRPC string
	// BrokerCommand, when set, runs the broker in a process of its own:
	// the command (with "--kind nats|kafka --store DIR" added) must serve
	// it as ServeBroker does. The bridge, the driver and the outcome
	// listener then reach it over loopback TCP, and the results give the
	// broker's CPU apart from this process's.
	BrokerCommand []string
	// DriverCommand, with BrokerCommand, runs the driver in a process of
	// its own: the publisher of the bridge path's order and approval
	// events (on both paths, the services around the worker) and the
	// outcome listener of both paths. The command (with "--kind
	// nats|kafka --addr ADDR" added) must serve as ServeDriver does. The
	// worker's CPU then counts neither, on either path, and the driver's
	// has a column of its own. The direct path's Start and Raise calls
	// stay in the worker: the bridge makes the same calls there.
	DriverCommand []string
	// EngineParallelism and BrokerConcurrency tune the bridge under test.
	EngineParallelism int
	BrokerConcurrency int
	// Retention, when set, is the engine's retention period for every
	// outcome (engine.retention.completed, compensated and failed; 0 keeps
	// them all); nil leaves the configuration's defaults.
	Retention *time.Duration
	Logger    *zap.Logger
	// Progress receives a line per finished measurement; may be nil.
	Progress func(Result)
}

func (o *Options) setDefaults() {
	if len(o.Brokers) == 0 {
		o.Brokers = []string{"nats"}
	}
	if len(o.Modes) == 0 {
		o.Modes = []string{ModeDirect, ModeBridge}
	}
	if len(o.Concurrency) == 0 {
		o.Concurrency = []int{1, 8, 32, 128}
	}
	if o.Sagas == 0 {
		o.Sagas = 2000
	}
	if o.DataDir == "" {
		o.DataDir = "data/bench"
	}
	if o.EngineParallelism == 0 {
		o.EngineParallelism = 128
	}
	if o.BrokerConcurrency == 0 {
		o.BrokerConcurrency = 128
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// Validate reports every problem at once.
func (o Options) Validate() error {
	var errs []error
	for _, b := range o.Brokers {
		if b != "nats" && b != "kafka" {
			errs = append(errs, fmt.Errorf("bench: broker %q is not nats or kafka", b))
		}
	}
	for _, m := range o.Modes {
		if m != ModeDirect && m != ModeBridge {
			errs = append(errs, fmt.Errorf("bench: mode %q is not %s or %s", m, ModeDirect, ModeBridge))
		}
	}
	for _, c := range o.Concurrency {
		if c < 1 {
			errs = append(errs, fmt.Errorf("bench: concurrency %d must be at least 1", c))
		}
	}
	if o.Sagas < 1 {
		errs = append(errs, fmt.Errorf("bench: sagas %d must be at least 1", o.Sagas))
	}
	if o.Parked < 0 {
		errs = append(errs, fmt.Errorf("bench: parked %d is negative", o.Parked))
	}
	if o.DriverCommand != nil && o.BrokerCommand == nil {
		errs = append(errs, errors.New("bench: a driver process needs the broker in a process of its own"))
	}
	if o.DaprGRPC != "" {
		if err := checkHostPort(o.DaprGRPC); err != nil {
			errs = append(errs, fmt.Errorf("bench: daprd gRPC address: %w", err))
		}
	}
	return errors.Join(errs...)
}

// checkHostPort accepts host:port with a host and a port number: a typo
// here would otherwise surface as the engine's connection timing out.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", addr, port)
	}
	return nil
}

// Result is one measurement.
type Result struct {
	Broker      string  `json:"broker"`
	Engine      string  `json:"engine"`
	Mode        string  `json:"mode"`
	Concurrency int     `json:"concurrency"`
	Sagas       int     `json:"sagas"`
	PerSecond   float64 `json:"sagasPerSecond"`
	P50Ms       float64 `json:"p50Ms"`
	P95Ms       float64 `json:"p95Ms"`
	P99Ms       float64 `json:"p99Ms"`
	MaxMs       float64 `json:"maxMs"`
	// CPUSecondsPer1k is the process's CPU time (bridge, engine and
	// driver, and the broker unless BrokerProcess) per 1,000 sagas.
	CPUSecondsPer1k float64 `json:"cpuSecondsPer1000"`
	// BrokerProcess says the broker ran in a process of its own, whose CPU
	// per 1,000 sagas is BrokerCPUSecondsPer1k.
	BrokerProcess         bool    `json:"brokerProcess,omitempty"`
	BrokerCPUSecondsPer1k float64 `json:"brokerCpuSecondsPer1000,omitempty"`
	// DriverProcess says the driver (event publisher and outcome
	// listener) ran in a process of its own, whose CPU per 1,000 sagas is
	// DriverCPUSecondsPer1k; CPUSecondsPer1k then leaves it out.
	DriverProcess         bool    `json:"driverProcess,omitempty"`
	DriverCPUSecondsPer1k float64 `json:"driverCpuSecondsPer1000,omitempty"`
	// EngineTxPerSaga is how many transactions the embedded engine's
	// writer committed per saga: it groups the writes that arrive
	// together, so fewer sagas in the engine at once cost more of them
	// (and more CPU) per saga. 0 on daprd.
	EngineTxPerSaga float64 `json:"engineTransactionsPerSaga,omitempty"`
	// PeakRSSMiB is the process's peak resident memory during the case.
	PeakRSSMiB float64 `json:"peakRssMiB"`
}

// Parked is the memory case: instances waiting for an event.
type Parked struct {
	Broker         string  `json:"broker"`
	Instances      int     `json:"instances"`
	RSSGrowthMiB   float64 `json:"rssGrowthMiB"`
	KiBPerInstance float64 `json:"kibPerInstance"`
	DBMiB          float64 `json:"dbMiB"`
	StartSeconds   float64 `json:"startSeconds"`
}

// Report is a whole run.
type Report struct {
	Date    string   `json:"date"`
	Machine string   `json:"machine"`
	Commit  string   `json:"commit"`
	Results []Result `json:"results"`
	Parked  []Parked `json:"parked,omitempty"`
}

// The warm-up before the measured runs of each broker.
const (
	warmupSagas       = 20
	warmupConcurrency = 4
)

// rounds splits each measurement: the modes take turns (direct, bridge,
// bridge, direct, ...), so that a machine whose speed drifts during a case
// (this project's machine by up to 40 % within minutes) weighs on both
// modes alike instead of on whichever ran second.
const rounds = 4

// Run measures every broker × concurrency in both modes.
func Run(ctx context.Context, opts Options) (Report, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return Report{}, err
	}
	rep := Report{Date: time.Now().UTC().Format(time.RFC3339)}
	for _, b := range opts.Brokers {
		env, err := startEnv(ctx, opts, b)
		if err != nil {
			return rep, err
		}
		// Unmeasured: the first sagas pay for connections, caches and (on
		// daprd) actor type registration, which would land on whichever
		// mode ran first.
		for _, mode := range opts.Modes {
			if _, err := env.measure(ctx, mode, warmupConcurrency, warmupSagas); err != nil {
				env.close()
				return rep, fmt.Errorf("bench %s %s warm-up: %w", b, mode, err)
			}
		}
		for _, c := range opts.Concurrency {
			results, err := env.interleaved(ctx, opts.Modes, c, opts.Sagas)
			if err != nil {
				env.close()
				return rep, fmt.Errorf("bench %s c=%d: %w", b, c, err)
			}
			for _, r := range results {
				rep.Results = append(rep.Results, r)
				if opts.Progress != nil {
					opts.Progress(r)
				}
			}
		}
		if opts.Parked > 0 && opts.DaprGRPC == "" {
			p, err := env.parked(ctx, opts.Parked)
			if err != nil {
				env.close()
				return rep, err
			}
			rep.Parked = append(rep.Parked, p)
		}
		env.close()
	}
	return rep, nil
}

// env is a broker, a running bridge and an outcome listener.
type env struct {
	broker  string
	engine  string
	dir     string
	bridge  *bridge.Bridge
	client  bridge.Broker
	stop    []func()
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	waiting map[string]chan time.Time
	run     int
	// brokerProc is the broker's process with Options.BrokerCommand.
	brokerProc *brokerProcess
	// driverProc is the driver's process with Options.DriverCommand.
	driverProc *driverProcess
}

func startEnv(ctx context.Context, opts Options, broker string) (*env, error) {
	return startEnvAt(ctx, opts, broker, filepath.Join(opts.DataDir, broker+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)))
}

// startEnvAt starts an env whose engine database and broker store are in
// dir: a new one, or the one a closed env left (a restart).
func startEnvAt(ctx context.Context, opts Options, broker, dir string) (*env, error) {
	cfg, engineKind, err := benchConfig(opts, dir)
	if err != nil {
		return nil, err
	}
	e := &env{broker: broker, engine: engineKind, dir: dir, waiting: map[string]chan time.Time{}}
	connect, natsServer, err := e.startBroker(ctx, opts, cfg)
	if err != nil {
		return nil, err
	}
	// BenchSaga reads its input itself: a plain workflow, not the saga
	// runtime's.
	reg := registry.New()
	if err := reg.RegisterWorkflow(Workflow, BenchSaga); err != nil {
		e.close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	e.cancel = cancel
	b, err := bridge.New(runCtx, cfg, bridge.Options{
		Logger:     opts.Logger,
		Sagas:      reg,
		Activities: map[string]workflow.Activity{BenchStepActivity: BenchStep},
		Connect:    brokers.Connector{NATSServer: natsServer}.Connect,
	})
	if err != nil {
		e.close()
		return nil, err
	}
	e.bridge = b
	e.stop = append(e.stop, func() { _ = b.Close(context.Background()) })
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if err := b.Run(runCtx); err != nil {
			opts.Logger.Error("bench: bridge stopped", zap.Error(err))
		}
	}()
	if opts.DriverCommand != nil && e.brokerProc != nil {
		p, err := startDriverProcess(ctx, opts.DriverCommand, broker, e.brokerProc.addr, e.outcome)
		if err != nil {
			e.close()
			return nil, err
		}
		e.driverProc = p
		e.stop = append(e.stop, p.stop)
		return e, nil
	}
	if e.client, err = connect("bench-driver"); err != nil {
		e.close()
		return nil, err
	}
	e.stop = append(e.stop, func() { _ = e.client.Close() })
	outcomes, err := e.client.Subscriber().Subscribe(runCtx, OutcomesTopic)
	if err != nil {
		e.close()
		return nil, err
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.listen(outcomes)
	}()
	return e, nil
}

// benchConfig is the worker's config of a measurement in dir; engineKind
// names the engine it runs on.
func benchConfig(opts Options, dir string) (cfg *config.Config, engineKind string, err error) {
	cfg, err = config.Parse("bench.yaml", []byte(routesYAML))
	if err != nil {
		return nil, "", err
	}
	cfg.Broker.Concurrency = opts.BrokerConcurrency
	cfg.Engine.Embedded.DBPath = filepath.Join(dir, "workflows.db")
	cfg.Engine.Embedded.Parallelism = opts.EngineParallelism
	if opts.Retention != nil {
		r := &cfg.Engine.Retention
		for _, p := range []**time.Duration{&r.Completed, &r.Compensated, &r.Failed} {
			*p = new(*opts.Retention)
		}
	}
	engineKind = "embedded"
	if opts.DaprGRPC != "" {
		engineKind = "dapr"
		cfg.Engine.Kind = "dapr"
		cfg.Engine.Dapr.GRPCEndpoint = opts.DaprGRPC
		cfg.Engine.Dapr.RetentionDir = filepath.Join(dir, "retention")
	}
	return cfg, engineKind, nil
}

// startBroker starts e's broker (in-process, or the process of
// Options.BrokerCommand) and points cfg at it; connect makes a client with
// its own consumer group, natsServer is the in-process nats-server (nil
// otherwise).
func (e *env) startBroker(ctx context.Context, opts Options, cfg *config.Config) (connect func(group string) (bridge.Broker, error), natsServer *natsjs.Server, err error) {
	if opts.BrokerCommand != nil {
		p, err := startBrokerProcess(ctx, opts.BrokerCommand, e.broker, filepath.Join(e.dir, e.broker))
		if err != nil {
			return nil, nil, err
		}
		e.brokerProc = p
		e.stop = append(e.stop, p.stop)
	}
	switch {
	case e.broker == "kafka":
		var brokers []string
		if e.brokerProc != nil {
			brokers = strings.Split(e.brokerProc.addr, ",")
		} else {
			k, err := kafka.StartEmbedded()
			if err != nil {
				return nil, nil, err
			}
			e.stop = append(e.stop, k.Close)
			brokers = k.Brokers()
		}
		cfg.Broker.Kind = "kafka"
		cfg.Broker.Kafka.Brokers = brokers
		cfg.Broker.Kafka.AutoCreateTopics = true
		connect = func(group string) (bridge.Broker, error) {
			return kafka.NewGroupClient(brokers, group)
		}
	case e.brokerProc != nil:
		url := e.brokerProc.addr
		cfg.Broker.Kind = "nats"
		cfg.Broker.NATS.URL = url
		connect = func(group string) (bridge.Broker, error) {
			return natsjs.New(natsjs.Config{URL: url, ConsumerGroup: group, Concurrency: 64})
		}
	default:
		srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: filepath.Join(e.dir, "nats")})
		if err != nil {
			return nil, nil, err
		}
		e.stop = append(e.stop, srv.Shutdown)
		cfg.Broker.Kind = "nats"
		cfg.Broker.NATS.URL = srv.ClientURL()
		// Everything connects in-process, as with broker kind embedded and
		// in `sagabridge dev`. The driver and the outcome listener stand in
		// for services in other processes, which would spend their own
		// system calls on their own machines.
		natsServer = srv
		connect = func(group string) (bridge.Broker, error) {
			return natsjs.New(natsjs.Config{URL: srv.ClientURL(), ConsumerGroup: group, Concurrency: 64,
				Options: []nats.Option{srv.InProcess()}})
		}
	}
	return connect, natsServer, nil
}

// listen hands each outcome to the measurement waiting for its instance
// until outcomes closes.
func (e *env) listen(outcomes <-chan *message.Message) {
	for msg := range outcomes {
		var ev topics.CloudEvent
		if err := json.Unmarshal(msg.Payload, &ev); err == nil {
			e.outcome(ev.Subject, time.Now())
		}
		msg.Ack()
	}
}

// outcome hands the time instance id's outcome arrived to the measurement
// waiting for it.
func (e *env) outcome(id string, at time.Time) {
	e.mu.Lock()
	ch := e.waiting[id]
	delete(e.waiting, id)
	e.mu.Unlock()
	if ch != nil {
		ch <- at
	}
}

func (e *env) close() {
	if e.cancel != nil {
		e.cancel()
	}
	e.wg.Wait()
	for i := len(e.stop) - 1; i >= 0; i-- {
		e.stop[i]()
	}
}

// interleaved measures each mode with n sagas at c in flight, in rounds
// that alternate the modes, and pools each mode's rounds into one result.
func (e *env) interleaved(ctx context.Context, modes []string, c, n int) ([]Result, error) {
	per := (n + rounds - 1) / rounds
	samples := map[string][]sample{}
	for r := 0; r < rounds; r++ {
		order := slices.Clone(modes)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, mode := range order {
			sm, err := e.measure(ctx, mode, c, per)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", mode, err)
			}
			samples[mode] = append(samples[mode], sm)
		}
	}
	out := make([]Result, 0, len(modes))
	for _, mode := range modes {
		out = append(out, e.summarize(mode, c, samples[mode]))
	}
	return out, nil
}

// sample is one round of one mode.
type sample struct {
	lat       []time.Duration
	elapsed   time.Duration
	cpu       float64
	brokerCPU float64
	driverCPU float64
	engineTx  int64
	peakRSS   float64
}

// summarize pools the rounds of a mode: throughput over their summed time,
// percentiles over all their sagas.
func (e *env) summarize(mode string, c int, samples []sample) Result {
	var lat []time.Duration
	var elapsed time.Duration
	var cpu, brokerCPU, driverCPU, peak float64
	var tx int64
	for _, sm := range samples {
		tx += sm.engineTx
		lat = append(lat, sm.lat...)
		elapsed += sm.elapsed
		cpu += sm.cpu
		brokerCPU += sm.brokerCPU
		driverCPU += sm.driverCPU
		peak = max(peak, sm.peakRSS)
	}
	n := len(lat)
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	q := func(p float64) float64 { return ms(lat[min(n-1, int(float64(n)*p))]) }
	return Result{
		Broker: e.broker, Engine: e.engine, Mode: mode, Concurrency: c, Sagas: n,
		PerSecond: float64(n) / elapsed.Seconds(),
		P50Ms:     q(0.50), P95Ms: q(0.95), P99Ms: q(0.99), MaxMs: ms(lat[n-1]),
		CPUSecondsPer1k:       cpu / float64(n) * 1000,
		BrokerProcess:         e.brokerProc != nil,
		BrokerCPUSecondsPer1k: brokerCPU / float64(n) * 1000,
		DriverProcess:         e.driverProc != nil,
		DriverCPUSecondsPer1k: driverCPU / float64(n) * 1000,
		EngineTxPerSaga:       float64(tx) / float64(n),
		PeakRSSMiB:            peak,
	}
}

// measure runs n sagas with c in flight (closed loop) and times each from
// its first event to its outcome.
func (e *env) measure(ctx context.Context, mode string, c, n int) (sample, error) {
	e.run++
	prefix := fmt.Sprintf("%s-%d-%d", mode, c, e.run)
	resetPeakRSS()
	cpu0, broker0, driver0, tx0 := cpuSeconds(), e.brokerCPUSeconds(), e.driverCPUSeconds(), e.engineTx()
	lat := make([]time.Duration, n)
	sem := make(chan struct{}, c)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case err := <-errc:
			return sample{}, err
		case <-ctx.Done():
			return sample{}, ctx.Err()
		}
		id := fmt.Sprintf("%s-%d", prefix, i)
		done := make(chan time.Time, 1)
		e.mu.Lock()
		e.waiting[id] = done
		e.mu.Unlock()
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			fail := func(err error) {
				select {
				case errc <- err:
				default:
				}
			}
			// Each slot submits on its own: a driver that submits from one
			// loop measures its own round trips, not the engine.
			t0 := time.Now()
			if err := e.submit(ctx, mode, id); err != nil {
				fail(err)
				return
			}
			select {
			case t := <-done:
				lat[i] = t.Sub(t0)
			case <-time.After(2 * time.Minute):
				fail(fmt.Errorf("saga %s: no outcome after 2 minutes", id))
			case err := <-e.driverFailed():
				fail(err)
			case <-ctx.Done():
			}
		}(i)
	}
	wg.Wait()
	select {
	case err := <-errc:
		return sample{}, err
	default:
	}
	return sample{lat: lat, elapsed: time.Since(start), cpu: cpuSeconds() - cpu0,
		brokerCPU: e.brokerCPUSeconds() - broker0, driverCPU: e.driverCPUSeconds() - driver0,
		engineTx: e.engineTx() - tx0, peakRSS: peakRSSMiB()}, nil
}

// engineTx is how many transactions the embedded engine committed so far
// (0 on daprd).
func (e *env) engineTx() int64 {
	if st := e.bridge.Engine().Store(); st != nil {
		return st.Stats().Batches
	}
	return 0
}

func (e *env) driverCPUSeconds() float64 {
	if e.driverProc == nil {
		return 0
	}
	return e.driverProc.cpuSeconds()
}

// driverFailed reports what the driver process could not publish; nil
// (never ready) without one.
func (e *env) driverFailed() <-chan error {
	if e.driverProc == nil {
		return nil
	}
	return e.driverProc.failed
}

func (e *env) brokerCPUSeconds() float64 {
	if e.brokerProc == nil {
		return 0
	}
	return e.brokerProc.cpuSeconds()
}

func (e *env) submit(ctx context.Context, mode, id string) error {
	if mode == ModeDirect {
		// The engine's own client, as a service calling Dapr would: no
		// broker, no ID reuse policy, and on daprd no status look-up after
		// a raise (the bridge makes one for a route whose late events are
		// dead-lettered).
		wf := e.bridge.Engine().Client()
		if _, err := wf.ScheduleWorkflow(ctx, Workflow, workflow.WithInstanceID(id), workflow.WithRawInput(wrapperspb.String(`{}`))); err != nil {
			return err
		}
		return wf.RaiseEvent(ctx, id, ApprovalEvent, workflow.WithRawEventData(wrapperspb.String(`true`)))
	}
	if e.driverProc != nil {
		return e.driverProc.publish(id)
	}
	return publishEvents(e.client.Publisher(), id)
}

// parked starts n instances that stay waiting for their approval, and
// measures what they cost.
func (e *env) parked(ctx context.Context, n int) (Parked, error) {
	eng := e.bridge.Engine()
	before := currentRSSMiB()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		if _, err := eng.Start(ctx, "BenchSaga", fmt.Sprintf("parked-%d", i), []byte(`{}`)); err != nil {
			return Parked{}, err
		}
	}
	startDur := time.Since(t0)
	// Wait until the last one has run its three steps and is waiting.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		st, err := eng.Get(ctx, fmt.Sprintf("parked-%d", n-1))
		if err == nil && st.RuntimeStatus == "RUNNING" && time.Since(t0) > time.Second {
			break
		}
		if time.Now().After(deadline) {
			return Parked{}, errors.New("parked instances did not start in 5 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // let the tail finish its steps
	growth := currentRSSMiB() - before
	var db int64
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(filepath.Join(e.dir, "workflows.db"+suffix)); err == nil {
			db += fi.Size()
		}
	}
	return Parked{
		Broker: e.broker, Instances: n, RSSGrowthMiB: growth,
		KiBPerInstance: growth * 1024 / float64(n), DBMiB: float64(db) / (1 << 20),
		StartSeconds: startDur.Seconds(),
	}, nil
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// resetPeakRSS resets the kernel's high-water mark (Linux clear_refs 5).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func peakRSSMiB() float64    { return procStatusMiB("VmHWM:") }
func currentRSSMiB() float64 { return procStatusMiB("VmRSS:") }

func procStatusMiB(field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}
