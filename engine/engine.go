// Package engine is the only place that talks to the Dapr workflow engine.
// It runs one workflow worker and client (dapr/durabletask-go's workflow
// package), against the embedded task hub or a daprd sidecar, and gives
// both engines one meaning:
//
//   - Start of an instance ID that exists is success and changes nothing
//     (a finished instance is not run again).
//   - Raise on an instance that does not exist is ErrNotFound, retryable.
//   - Raise on an instance that has finished is ErrFinished.
//   - A broken connection or an unavailable engine is ErrUnavailable.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"github.com/dapr/durabletask-go/api"
	"github.com/dapr/durabletask-go/api/protos"
	"github.com/dapr/durabletask-go/workflow"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/sagabridge/sagabridge/engine/embedded"
	"github.com/sagabridge/sagabridge/engine/embedded/store"
	"github.com/sagabridge/sagabridge/engine/retention"
	"github.com/sagabridge/sagabridge/topics"
)

// Errors with one meaning on both engines.
var (
	ErrNotFound    = errors.New("workflow instance not found")
	ErrFinished    = errors.New("workflow instance has finished")
	ErrUnavailable = errors.New("workflow engine unavailable")
	// ErrUnknownWorkflow: a start names a workflow this worker has not
	// registered. Scheduling it would leave an instance nobody runs.
	ErrUnknownWorkflow = errors.New("workflow is not registered")
)

// Kind selects the engine. It is a type of its own rather than the YAML's
// word so that a Config cannot name an engine that does not exist: the
// configuration file's spelling is checked where the file is read.
type Kind int

// Kinds of engine; the zero value is the embedded one.
const (
	KindEmbedded Kind = iota
	KindDapr
)

// String is the kind as engine.kind spells it.
func (k Kind) String() string {
	if k == KindDapr {
		return "dapr"
	}
	return "embedded"
}

// Config selects and configures the engine. Its values are taken as
// given: the worker's configuration file is validated where it is read
// (bridge/config); what is checked here is what the file does not set.
type Config struct {
	Kind     Kind
	Embedded embedded.Config
	Dapr     DaprConfig
	// Retention is how long finished sagas are kept, by outcome.
	Retention Retention
}

// Retention periods by saga outcome (topics.Status*); zero keeps such
// instances forever.
type Retention struct {
	Completed, Compensated, Failed time.Duration
}

func (r Retention) periods() map[string]time.Duration {
	return map[string]time.Duration{
		topics.StatusCompleted:   r.Completed,
		topics.StatusCompensated: r.Compensated,
		topics.StatusFailed:      r.Failed,
	}
}

// store is the embedded store's retention for these periods (nil when
// every period is zero). The store knows runtime statuses: COMPLETED
// covers every saga outcome (the outcome is in the custom status, see
// progress.Progress), so the store is asked to consider COMPLETED instances
// after the shortest period and Keep holds each one to its outcome's
// period. A workflow that FAILED (its outcome could not be published)
// keeps the failed period; TERMINATED, the compensated one.
func (r Retention) store(now func() time.Time) *store.Retention {
	periods := r.periods()
	shortest := time.Duration(0)
	for _, p := range periods {
		if p > 0 && (shortest == 0 || p < shortest) {
			shortest = p
		}
	}
	if shortest == 0 {
		return nil
	}
	return &store.Retention{
		Completed:  shortest,
		Failed:     r.Failed,
		Terminated: r.Compensated,
		Keep: func(c store.RetentionCandidate) bool {
			if c.Status != api.RUNTIME_STATUS_COMPLETED {
				return false
			}
			var last struct {
				Status string `json:"status"`
			}
			period := r.Completed
			if json.Unmarshal([]byte(c.CustomStatus), &last) == nil {
				if p, ok := periods[last.Status]; ok {
					period = p
				}
			}
			return period == 0 || now().Before(c.CompletedAt.Add(period))
		},
	}
}

// sweepInterval is a tenth of the shortest period, between a second and a
// minute; 0 when nothing is purged.
func (r Retention) sweepInterval() time.Duration {
	shortest := time.Duration(0)
	for _, p := range r.periods() {
		if p > 0 && (shortest == 0 || p < shortest) {
			shortest = p
		}
	}
	if shortest == 0 {
		return 0
	}
	return min(max(shortest/10, time.Second), time.Minute)
}

// DaprConfig points at a daprd sidecar.
type DaprConfig struct {
	// GRPCEndpoint is host:port of daprd's gRPC API. Empty means
	// DAPR_GRPC_ENDPOINT, then 127.0.0.1:$DAPR_GRPC_PORT, then 127.0.0.1:50001.
	GRPCEndpoint string
	// APIToken is sent as dapr-api-token; empty means $DAPR_API_TOKEN.
	APIToken string `json:"-"`
	// RetentionDir holds the record of finished sagas to purge (see
	// package retention); default data/retention.
	RetentionDir string
	// WedgeTimeout is how long daprd may say the workflow actors are not
	// registered while this worker is connected before the worker reports
	// it wedged (Engine.watchSidecar); default 30s, negative: never.
	WedgeTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Kind == KindDapr {
		if c.Dapr.GRPCEndpoint == "" {
			c.Dapr.GRPCEndpoint = os.Getenv("DAPR_GRPC_ENDPOINT")
		}
		if c.Dapr.GRPCEndpoint == "" {
			port := os.Getenv("DAPR_GRPC_PORT")
			if port == "" {
				port = "50001"
			}
			c.Dapr.GRPCEndpoint = "127.0.0.1:" + port
		}
		if c.Dapr.APIToken == "" {
			c.Dapr.APIToken = os.Getenv("DAPR_API_TOKEN")
		}
		if c.Dapr.RetentionDir == "" {
			c.Dapr.RetentionDir = "data/retention"
		}
		if c.Dapr.WedgeTimeout == 0 {
			c.Dapr.WedgeTimeout = 30 * time.Second
		}
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Kind == KindDapr && c.Dapr.APIToken != "" && !localEndpoint(c.Dapr.GRPCEndpoint) {
		// The connection to daprd has no TLS: the token would cross the
		// network in clear text, readable by anyone on the path, and it
		// grants the whole Dapr API.
		errs = append(errs, fmt.Errorf("engine: the Dapr API token would be sent in plaintext to %s, which is not a loopback address (the worker talks to daprd without TLS): run daprd as the worker's sidecar on 127.0.0.1, as Dapr's injector does", c.Dapr.GRPCEndpoint))
	}
	return errors.Join(errs...)
}

// localEndpoint reports whether a gRPC target stays on this machine: a
// unix socket, localhost or a loopback address.
func localEndpoint(target string) bool {
	if strings.HasPrefix(target, "unix:") || strings.HasPrefix(target, "unix-abstract:") {
		return true
	}
	if i := strings.Index(target, "://"); i >= 0 {
		target = strings.TrimPrefix(target[i+3:], "/")
	}
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		host = target
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Registry is what the worker runs, each workflow and activity under the
// name routes, sagas and operators use for it.
type Registry struct {
	Workflows  map[string]workflow.Workflow
	Activities map[string]workflow.Activity
	// Patches lists, per workflow, the patch names its code checks with
	// IsPatched. An engine that does not record patches refuses such a
	// workflow instead of replaying it down the wrong branch.
	Patches map[string][]string
}

// ErrPatchesUnsupported: a workflow checks patches (IsPatched) and the
// engine does not record them. daprd 1.16 keeps no patch in a workflow's
// history (runtime support arrived in Dapr 1.17), so a replay after a
// restart would take the unpatched branch an instance never took.
var ErrPatchesUnsupported = errors.New("the engine does not record workflow patches")

// CheckPatches reports the workflows of reg that use patches when the
// engine kind does not record them; nil when there are none.
func CheckPatches(kind Kind, reg Registry) error {
	if kind != KindDapr {
		return nil
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(reg.Patches)) {
		if len(reg.Patches[name]) > 0 {
			errs = append(errs, fmt.Errorf("engine: workflow %s uses patches %v and engine.kind is dapr: %w (daprd 1.16 keeps none in the history; run it on the embedded engine, or on daprd 1.17 or newer)",
				name, reg.Patches[name], ErrPatchesUnsupported))
		}
	}
	return errors.Join(errs...)
}

// Engine is a running worker plus a client.
type Engine struct {
	kind       Kind
	hub        *embedded.Hub
	client     *workflow.Client
	conn       *grpc.ClientConn
	workerConn *grpc.ClientConn
	stopWorker context.CancelFunc
	// journal records finished sagas to purge on daprd (nil: none, or
	// the embedded store purges them itself).
	journal   *retention.Journal
	sweepDone chan struct{}
	// watchDone closes when the sidecar watch ends (nil: none).
	watchDone chan struct{}
	closeOnce sync.Once
	closeErr  error
	log       *zap.Logger
	// workflows are the registered names; a start of any other is refused.
	workflows map[string]bool

	duplicateStarts atomic.Int64
	// pendingNudges counts the pending instances a repeated start nudged
	// (see drivePending).
	pendingNudges atomic.Int64
	// sidecarWedges counts the deadlocked-daprd episodes reported.
	sidecarWedges atomic.Int64
	// record is what List walks on daprd (see Remember).
	record *instanceRecord
}

// New starts the engine (the embedded hub when so configured), registers
// the workflows and activities under their names, and starts the worker.
func New(ctx context.Context, cfg Config, reg Registry, log *zap.Logger) (*Engine, error) {
	cfg.setDefaults()
	if err := errors.Join(cfg.Validate(), CheckPatches(cfg.Kind, reg)); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	e := &Engine{kind: cfg.Kind, log: log, workflows: make(map[string]bool, len(reg.Workflows)), stopWorker: func() {},
		record: newInstanceRecord(DefaultRecordSize)}
	r := workflow.NewRegistry()
	for name, w := range reg.Workflows {
		if err := r.AddWorkflowN(name, w); err != nil {
			return nil, fmt.Errorf("engine: register workflow %s: %w", name, err)
		}
		e.workflows[name] = true
	}
	for name, a := range reg.Activities {
		if err := r.AddActivityN(name, a); err != nil {
			return nil, fmt.Errorf("engine: register activity %s: %w", name, err)
		}
	}
	addr, token := cfg.Dapr.GRPCEndpoint, cfg.Dapr.APIToken
	var extra []grpc.DialOption
	if cfg.Kind != KindDapr {
		if cfg.Embedded.Retention == nil {
			cfg.Embedded.Retention = cfg.Retention.store(time.Now)
		}
		hub, err := embedded.Start(ctx, cfg.Embedded, log)
		if err != nil {
			return nil, err
		}
		// passthrough: the target is not resolved, the hub's dialer
		// connects in memory.
		e.hub, addr, token = hub, "passthrough:///sagabridge-embedded-hub", ""
		extra = append(extra, grpc.WithContextDialer(hub.Dial))
	}
	var err error
	if e.conn, err = dial(addr, token, extra...); err != nil {
		return nil, errors.Join(err, e.Close(ctx))
	}
	if e.workerConn, err = dial(addr, token, extra...); err != nil {
		return nil, errors.Join(err, e.Close(ctx))
	}
	dtLog := embedded.NewLogger(log.Named("durabletask"))
	e.client = workflow.NewClientWithLogger(e.conn, dtLog)
	// The worker lives until Close, not until ctx ends.
	workerCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	e.stopWorker = stop
	if err := waitReady(ctx, e.workerConn); err != nil {
		return nil, errors.Join(fmt.Errorf("engine: connect to %s: %w", addr, err), e.Close(ctx))
	}
	if err := workflow.NewClientWithLogger(e.workerConn, dtLog).StartWorker(workerCtx, r); err != nil {
		return nil, errors.Join(fmt.Errorf("engine: start worker: %w", err), e.Close(ctx))
	}
	if cfg.Kind == KindDapr {
		if err := e.checkSidecar(ctx); err != nil {
			return nil, errors.Join(err, e.Close(ctx))
		}
		if err := e.startRetention(workerCtx, cfg); err != nil {
			return nil, errors.Join(err, e.Close(ctx))
		}
		if cfg.Dapr.WedgeTimeout > 0 {
			e.watchDone = make(chan struct{})
			go func() {
				defer close(e.watchDone)
				e.watchSidecar(workerCtx, cfg.Dapr.WedgeTimeout)
			}()
		}
	}
	log.Info("workflow worker started", zap.Stringer("engine", cfg.Kind), zap.String("addr", addr))
	return e, nil
}

// wedgeProbeInstance is the instance ID the sidecar watch raises an event
// on; it never exists.
const wedgeProbeInstance = "sagabridge-sidecar-probe"

// WedgedMessage starts the error the worker logs when daprd is wedged
// (see watchSidecar); operators and tests look for it.
const WedgedMessage = "daprd has not registered the workflow actors although this worker is connected"

// watchSidecar reports a deadlock in daprd 1.16.0 that no worker can
// undo. When the last worker's work-item stream drops while a workflow
// turn waits for a work item (a worker SIGKILLed with sagas in flight),
// daprd unregisters the workflow actor types and, to deactivate the
// actors, waits for that turn's lock with no deadline; the turn waits for
// a stream to take its work item; and the next worker's stream waits for
// the same registration lock, so it never takes one (goroutine dump:
// wfengine.New's connect callback blocked on its mutex, table.HaltAll in
// orchestrator.Deactivate). Every call on a workflow then answers "actor
// type ... not registered" until daprd is killed: a graceful shutdown
// waits on the same lock. The worker cannot tell that from a worker
// that is still being placed except by time, so after timeout of "not
// registered" while it is connected it logs WedgedMessage with the
// remedy, once per episode; /readyz is not ready meanwhile.
func (e *Engine) watchSidecar(ctx context.Context, timeout time.Duration) {
	every := min(timeout/6, 5*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	var since time.Time // first "not registered" of the current episode
	reported := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		probeCtx, cancel := context.WithTimeout(ctx, every)
		err := e.client.RaiseEvent(probeCtx, wedgeProbeInstance, "probe")
		cancel()
		if err == nil || !strings.Contains(err.Error(), "not registered") {
			since, reported = time.Time{}, false
			continue
		}
		if since.IsZero() {
			since = time.Now()
		}
		if reported || time.Since(since) < timeout {
			continue
		}
		reported = true
		e.sidecarWedges.Add(1)
		e.log.Error(WedgedMessage+" (since "+time.Since(since).Round(time.Second).String()+
			"): daprd 1.16.0 deadlocks when its only worker dies with sagas in flight; kill the daprd process (in Kubernetes, delete the pod; a graceful stop hangs on the same lock), the sagas then go on from their state",
			zap.Error(err))
	}
}

// SidecarWedges counts the episodes watchSidecar reported.
func (e *Engine) SidecarWedges() int64 { return e.sidecarWedges.Load() }

// checkSidecar asks daprd what it runs: its version is logged, and a
// sidecar without an actor state store is refused, because every workflow
// start on it would wait until its deadline and fail without a reason.
func (e *Engine) checkSidecar(ctx context.Context) error {
	// The runtime API's own client: go-sdk's prints to stdout, past the
	// worker's logger, when $DAPR_API_TOKEN is set.
	md, err := runtimev1.NewDaprClient(e.conn).GetMetadata(ctx, &runtimev1.GetMetadataRequest{})
	if status.Code(err) == codes.Unimplemented {
		// A task hub that serves durabletask's protocol alone (the fault
		// tests run the embedded hub as a process of its own).
		e.log.Info("the sidecar is not daprd (no Dapr API); not checked")
		return nil
	}
	if err != nil {
		return classify(fmt.Errorf("engine: daprd metadata: %w", err))
	}
	version := md.GetRuntimeVersion()
	if version == "" {
		version = md.GetExtendedMetadata()["daprRuntimeVersion"]
	}
	for _, c := range md.GetRegisteredComponents() {
		if slices.Contains(c.GetCapabilities(), "ACTOR") {
			e.log.Info("daprd", zap.String("version", version), zap.String("actor_state_store", c.GetName()+" ("+c.GetType()+")"))
			return nil
		}
	}
	return fmt.Errorf("engine: daprd %s (app %s) has no actor state store; workflows need one: set actorStateStore: \"true\" on a state store component (deploy/dapr has one for PostgreSQL)", version, md.GetId())
}

// startRetention opens the record of finished sagas to purge and sweeps
// it until Close. daprd 1.16 cannot list workflow instances, so the worker
// notes each outcome it publishes (Finished) and purges the instance when
// its period has passed.
func (e *Engine) startRetention(ctx context.Context, cfg Config) error {
	interval := cfg.Retention.sweepInterval()
	if interval == 0 {
		return nil
	}
	j, err := retention.Open(retention.Config{
		Dir:     cfg.Dapr.RetentionDir,
		Periods: cfg.Retention.periods(),
		Purge:   e.Purge,
		IsGone:  func(err error) bool { return errors.Is(err, ErrNotFound) },
		Retry:   func(err error) bool { return errors.Is(err, ErrUnavailable) },
	})
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	e.journal, e.sweepDone = j, make(chan struct{})
	go func() {
		defer close(e.sweepDone)
		j.Run(ctx, interval)
	}()
	return nil
}

// Finished is told that a saga published its outcome; on daprd the
// instance is noted for purging when its retention period has passed (the
// embedded store finds finished instances itself).
func (e *Engine) Finished(instanceID, outcomeStatus string, at time.Time) {
	if e.journal == nil {
		return
	}
	if err := e.journal.Add(instanceID, outcomeStatus, at); err != nil {
		e.log.Warn("retention: instance not recorded; it will not be purged", zap.String("instance_id", instanceID), zap.Error(err))
	}
}

// waitReady waits until conn is connected, or ctx ends.
func waitReady(ctx context.Context, conn *grpc.ClientConn) error {
	conn.Connect()
	for {
		s := conn.GetState()
		if s == connectivity.Ready {
			return nil
		}
		if !conn.WaitForStateChange(ctx, s) {
			return fmt.Errorf("still %s: %w", s, ctx.Err())
		}
	}
}

// reconnectDelay bounds gRPC's wait between connection attempts. Its
// default grows to 2 minutes; a sidecar that restarted is back within
// seconds and the worker should be too.
const reconnectDelay = time.Second

// waitForReadyMethods are the calls the workflow worker makes to
// (re)connect its work-item stream. durabletask-go v0.11 retries them
// with a backoff that grows to 15 s while daprd is down, so a sidecar back
// after 30 s waited up to 15 s more for its worker. Made to wait for the
// connection instead, the first retry succeeds as soon as the connection
// is back.
var waitForReadyMethods = map[string]bool{
	"/TaskHubSidecarService/Hello":        true,
	"/TaskHubSidecarService/GetWorkItems": true,
}

// dial connects lazily; the API token, when set, rides on every call.
func dial(addr, token string, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// daprd sends work items up to its --max-body-size, which an
		// operator may raise past gRPC's default 4 MiB.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(embedded.MaxMessageBytes), grpc.MaxCallSendMsgSize(embedded.MaxMessageBytes)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: reconnectDelay},
			MinConnectTimeout: 5 * time.Second,
		}),
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, o ...grpc.CallOption) error {
			if waitForReadyMethods[method] {
				o = append(o, grpc.WaitForReady(true))
			}
			return invoker(withToken(ctx, token), method, req, reply, cc, o...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, o ...grpc.CallOption) (grpc.ClientStream, error) {
			if waitForReadyMethods[method] {
				o = append(o, grpc.WaitForReady(true))
			}
			return streamer(withToken(ctx, token), desc, cc, method, o...)
		}),
	}, extra...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("engine: dial %s: %w", addr, err)
	}
	return conn, nil
}

func withToken(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "dapr-api-token", token)
}

// Kind is the engine this is.
func (e *Engine) Kind() Kind { return e.kind }

// Client is the workflow client underneath, without what Start and Raise
// add. Benchmarks use it as the baseline the bridge is measured against:
// plain ScheduleWorkflow and RaiseEvent.
func (e *Engine) Client() *workflow.Client { return e.client }

// DuplicateStarts counts starts of instance IDs that already existed.
func (e *Engine) DuplicateStarts() int64 { return e.duplicateStarts.Load() }

// Store is the embedded engine's store, for what the workflow API does not
// offer (counting, listing with filters); nil on daprd.
func (e *Engine) Store() *store.Backend {
	if e.hub == nil {
		return nil
	}
	return e.hub.Store()
}

// reuseFinished makes a start of an instance ID that has finished do
// nothing: a start event redelivered after its saga ended must not run the
// saga again. A start of an ID that runs is refused ("already exists") by
// both engines without a policy.
var reuseFinished = workflow.NewWorkflowOptions(api.WithOrchestrationIdReusePolicy(&api.OrchestrationIdReusePolicy{
	OperationStatus: []api.OrchestrationStatus{api.RUNTIME_STATUS_COMPLETED, api.RUNTIME_STATUS_FAILED, api.RUNTIME_STATUS_TERMINATED},
	Action:          api.REUSE_ID_ACTION_IGNORE,
}))

// Start schedules a workflow instance. input is JSON (or nil). A start of
// an instance ID that exists is success and changes nothing: started is
// false when the engine said so (the instance runs); a start of a
// finished instance is ignored by the engine, which does not say so, and
// reports started=true.
func (e *Engine) Start(ctx context.Context, workflowName, instanceID string, input []byte) (started bool, err error) {
	if !e.workflows[workflowName] {
		// Both engines accept a start of any name and create an instance
		// this worker cannot run; refuse it before anything is stored.
		return false, fmt.Errorf("engine: start %s %s: %w", workflowName, instanceID, ErrUnknownWorkflow)
	}
	opts := []workflow.NewWorkflowOptions{workflow.WithInstanceID(instanceID), reuseFinished}
	if input != nil {
		opts = append(opts, workflow.WithRawInput(wrapperspb.String(string(input))))
	}
	_, err = e.client.ScheduleWorkflow(ctx, workflowName, opts...)
	switch {
	case err == nil:
		e.Remember(instanceID, workflowName, time.Now())
		return true, nil
	case isAlreadyExists(err):
		e.Remember(instanceID, workflowName, time.Now())
		e.duplicateStarts.Add(1)
		if e.kind == KindDapr {
			if err := e.drivePending(ctx, instanceID); err != nil {
				return false, err
			}
		}
		return false, nil
	default:
		return false, classify(fmt.Errorf("engine: start %s %s: %w", workflowName, instanceID, err))
	}
}

// NudgeEvent is the external event drivePending raises; no saga waits for
// it, so it only shows in the instance's history.
const NudgeEvent = "sagabridge.nudge"

// drivePending makes sure that an instance a start found already there
// will run. daprd 1.16.0 can strand a start: when the sidecar that
// creates an instance dies, or the workflow actor moves to another
// sidecar, between saving the instance and arming the reminder that runs
// it (or the reminder fires elsewhere before the save lands), the
// instance stays PENDING forever with its start event in its inbox, and
// every later start is refused as "already exists" (dapr/dapr#10443,
// fixed after 1.16). The start event that created it was not acknowledged
// (a start returns once the instance runs), so the broker hands it out
// again and it comes here. Any event raised on the instance arms a
// reminder that runs its inbox, start event included, so a pending
// instance gets NudgeEvent. An instance pending for a good reason (its
// start still waits for a worker) takes no harm from it. A failure is an
// error, so that the start event is delivered again.
func (e *Engine) drivePending(ctx context.Context, instanceID string) error {
	md, err := e.fetch(ctx, instanceID)
	switch {
	case errors.Is(classify(err), ErrNotFound):
		return nil // purged since
	case err != nil:
		return classify(fmt.Errorf("engine: start %s: status of the instance already there: %w", instanceID, err))
	case md.RuntimeStatus != api.RUNTIME_STATUS_PENDING:
		return nil
	}
	if err := e.client.RaiseEvent(ctx, instanceID, NudgeEvent); err != nil {
		return classify(fmt.Errorf("engine: start %s: nudge the pending instance: %w", instanceID, err))
	}
	e.pendingNudges.Add(1)
	e.log.Info("a repeated start found its instance pending; raised "+NudgeEvent+" so that daprd runs it",
		zap.String("instance", instanceID), zap.Time("created", md.GetCreatedAt().AsTime()))
	return nil
}

// PendingNudges counts the pending instances drivePending nudged.
func (e *Engine) PendingNudges() int64 { return e.pendingNudges.Load() }

// RaiseOptions say what a raise must find out.
type RaiseOptions struct {
	// ReportFinished asks for ErrFinished when the instance had finished
	// before the raise. The embedded engine refuses such a raise itself;
	// daprd accepts and drops it, so on daprd this costs one status
	// look-up after each accepted raise. A route that drops late events
	// anyway does not ask.
	ReportFinished bool
}

// Raise delivers an external event.
func (e *Engine) Raise(ctx context.Context, instanceID, eventName string, payload []byte, o RaiseOptions) error {
	var opts []workflow.RaiseEventOptions
	if payload != nil {
		opts = append(opts, workflow.WithRawEventData(wrapperspb.String(string(payload))))
	}
	before := time.Now()
	if err := e.client.RaiseEvent(ctx, instanceID, eventName, opts...); err != nil {
		return classify(fmt.Errorf("engine: raise %s on %s: %w", eventName, instanceID, err))
	}
	if e.kind != KindDapr || !o.ReportFinished {
		return nil
	}
	// Looked up after the raise, not before: an instance that finished
	// after the raise was accepted may have finished because of it.
	md, err := e.fetch(ctx, instanceID)
	switch {
	case errors.Is(classify(err), ErrNotFound):
		return nil // purged since: it finished long ago, and the raise is gone either way
	case err != nil:
		return classify(fmt.Errorf("engine: raise %s on %s: status: %w", eventName, instanceID, err))
	}
	if isFinished(md.RuntimeStatus) && md.GetLastUpdatedAt().AsTime().Before(before) {
		return fmt.Errorf("engine: raise %s on %s (%s): %w", eventName, instanceID, statusName(md.RuntimeStatus), ErrFinished)
	}
	return nil
}

// Workflow returns the name of the workflow an instance runs, for access
// checks on actions that address an instance, not a workflow.
func (e *Engine) Workflow(ctx context.Context, instanceID string) (string, error) {
	md, err := e.client.FetchWorkflowMetadata(ctx, instanceID)
	if err != nil {
		return "", classify(fmt.Errorf("engine: look up %s: %w", instanceID, err))
	}
	return md.Name, nil
}

// Status is what the engine knows about an instance.
type Status struct {
	InstanceID    string    `json:"instanceId"`
	Workflow      string    `json:"workflow"`
	RuntimeStatus string    `json:"status"`
	CreatedAt     time.Time `json:"createdAt"`
	LastUpdatedAt time.Time `json:"lastUpdatedAt"`
	// CompletedAt is when a finished instance finished.
	CompletedAt time.Time `json:"completedAt,omitzero"`
	Input       string    `json:"input,omitempty"`
	Output      string    `json:"output,omitempty"`
	// CustomStatus is what the workflow last set with SetCustomStatus
	// (a saga: where it is, as JSON).
	CustomStatus string `json:"customStatus,omitempty"`
	Failure      string `json:"failure,omitempty"`
}

// Finished reports whether the instance reached a terminal state.
func (s Status) Finished() bool {
	switch s.RuntimeStatus {
	case "COMPLETED", "FAILED", "TERMINATED":
		return true
	}
	return false
}

// Get returns an instance's status.
func (e *Engine) Get(ctx context.Context, instanceID string) (Status, error) {
	md, err := e.fetch(ctx, instanceID, workflow.WithFetchPayloads(true))
	if err != nil {
		return Status{}, classify(fmt.Errorf("engine: get %s: %w", instanceID, err))
	}
	return statusOf(md, instanceID), nil
}

// Terminate stops an instance and the child workflows it started; its
// output records the reason.
func (e *Engine) Terminate(ctx context.Context, instanceID, reason string) error {
	if err := e.client.TerminateWorkflow(ctx, instanceID, workflow.WithOutput(reason), workflow.WithRecursiveTerminate(true)); err != nil {
		return classify(fmt.Errorf("engine: terminate %s: %w", instanceID, err))
	}
	return nil
}

// Suspend pauses an instance.
func (e *Engine) Suspend(ctx context.Context, instanceID, reason string) error {
	if err := e.client.SuspendWorkflow(ctx, instanceID, reason); err != nil {
		return classify(fmt.Errorf("engine: suspend %s: %w", instanceID, err))
	}
	return nil
}

// Resume continues a suspended instance.
func (e *Engine) Resume(ctx context.Context, instanceID, reason string) error {
	if err := e.client.ResumeWorkflow(ctx, instanceID, reason); err != nil {
		return classify(fmt.Errorf("engine: resume %s: %w", instanceID, err))
	}
	return nil
}

// Purge deletes a finished instance's state and that of the child
// workflows it started.
func (e *Engine) Purge(ctx context.Context, instanceID string) error {
	if err := e.client.PurgeWorkflowState(ctx, instanceID, workflow.WithRecursivePurge(true)); err != nil {
		return classify(fmt.Errorf("engine: purge %s: %w", instanceID, err))
	}
	return nil
}

// Ping reports whether the engine answers (and, embedded, whether its
// database is usable: there, a vanished file or a full disk is an outage).
func (e *Engine) Ping(ctx context.Context) error {
	if e.hub != nil {
		if err := e.hub.Healthy(); err != nil {
			return errors.Join(fmt.Errorf("engine: %w", err), ErrUnavailable)
		}
	}
	_, err := e.client.FetchWorkflowMetadata(ctx, "sagabridge-ping")
	if err == nil || errors.Is(classify(err), ErrNotFound) {
		return nil
	}
	return classify(err)
}

// Close stops the worker, the connections and the embedded hub. Calls
// after the first return its result (durabletask-go's hub panics when
// stopped twice).
func (e *Engine) Close(ctx context.Context) error {
	e.closeOnce.Do(func() {
		e.stopWorker()
		var errs []error
		if e.journal != nil {
			<-e.sweepDone
			errs = append(errs, e.journal.Close())
		}
		if e.watchDone != nil {
			<-e.watchDone
		}
		for _, c := range []*grpc.ClientConn{e.workerConn, e.conn} {
			if c != nil {
				errs = append(errs, c.Close())
			}
		}
		if e.hub != nil {
			errs = append(errs, e.hub.Stop(ctx))
		}
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

// fetch reads an instance's metadata as the protocol message it is.
func (e *Engine) fetch(ctx context.Context, instanceID string, opts ...workflow.FetchWorkflowMetadataOptions) (*protos.OrchestrationMetadata, error) {
	md, err := e.client.FetchWorkflowMetadata(ctx, instanceID, opts...)
	if err != nil {
		return nil, err
	}
	return (*protos.OrchestrationMetadata)(md), nil
}

func isFinished(s api.OrchestrationStatus) bool {
	switch s {
	case api.RUNTIME_STATUS_COMPLETED, api.RUNTIME_STATUS_FAILED, api.RUNTIME_STATUS_TERMINATED:
		return true
	}
	return false
}

// statusName is the status as operators read it: "RUNNING", "COMPLETED".
func statusName(s api.OrchestrationStatus) string {
	return workflow.WorkflowMetadata{RuntimeStatus: s}.String()
}

// The engines word the same conditions differently; these are the phrases
// measured on the embedded hub and daprd 1.16.
func isAlreadyExists(err error) bool {
	return strings.Contains(err.Error(), "already exists")
}

func classify(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, store.FinishedMessage):
		return errors.Join(err, ErrFinished)
	case strings.Contains(msg, "no such instance exists"),
		strings.Contains(msg, "not found"),
		strings.Contains(msg, "instance doesn't exist"):
		return errors.Join(err, ErrNotFound)
	case strings.Contains(msg, "did not find address for actor"),
		strings.Contains(msg, "actor type") && strings.Contains(msg, "not registered"),
		strings.Contains(msg, "not configured to use the actor runtime"),
		strings.Contains(msg, "lock closed"), strings.Contains(msg, "actor is closed"):
		// daprd with no worker connected (none yet, or one that died and
		// whose successor is not placed yet): placement knows no host for
		// the workflow's actor, or daprd unregistered the workflow actor
		// types when the last worker left. Not a refusal: it passes once a
		// worker is connected, so it must not use up the refusal budget.
		// "lock closed": daprd's actor runtime shutting down under the
		// call (daprd 1.16.0 does so when it loses placement, after a
		// pause: see TestEngineUnavailable/dapr-paused).
		return errors.Join(err, ErrUnavailable)
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.Canceled:
			return errors.Join(err, ErrUnavailable)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return errors.Join(err, ErrUnavailable)
	}
	return err
}
