// Package engine is the only place that talks to the Dapr workflow engine.
// It runs one go-sdk workflow worker and client, against the embedded task
// hub or a daprd sidecar, and gives both engines one meaning:
//
//   - Start of an instance ID that exists is success (Started=false).
//   - Raise on an instance that does not exist is ErrNotFound, retryable.
//   - Raise on an instance that has finished is ErrFinished.
//   - A broken connection or an unavailable engine is ErrUnavailable.
package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/dapr/go-sdk/workflow"
	"github.com/microsoft/durabletask-go/api"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sagabridge/sagabridge/bridge/engine/embedded"
	"github.com/sagabridge/sagabridge/bridge/engine/embedded/store"
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

// Kinds of engine.
const (
	KindEmbedded = "embedded"
	KindDapr     = "dapr"
)

// Config selects and configures the engine.
type Config struct {
	Kind     string
	Embedded embedded.Config
	Dapr     DaprConfig
}

// DaprConfig points at a daprd sidecar.
type DaprConfig struct {
	// GRPCEndpoint is host:port of daprd's gRPC API. Empty means
	// DAPR_GRPC_ENDPOINT, then 127.0.0.1:$DAPR_GRPC_PORT, then 127.0.0.1:50001.
	GRPCEndpoint string
	// APIToken is sent as dapr-api-token; empty means $DAPR_API_TOKEN.
	APIToken string `json:"-"`
}

func (c *Config) setDefaults() {
	if c.Kind == "" {
		c.Kind = KindEmbedded
	}
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
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	switch c.Kind {
	case KindEmbedded, KindDapr:
		return nil
	default:
		return fmt.Errorf("engine: kind %q is not %q or %q", c.Kind, KindEmbedded, KindDapr)
	}
}

// Registry is what the worker runs: workflows and activities registered by
// their Go function name (go-sdk v1.11 knows no other naming).
type Registry struct {
	Workflows  []workflow.Workflow
	Activities []workflow.Activity
}

// Engine is a running worker plus a client.
type Engine struct {
	kind   string
	hub    *embedded.Hub
	client *workflow.Client
	conn   *grpc.ClientConn
	worker *workflow.WorkflowWorker
	log    *zap.Logger
	// workflows are the registered names; a start of any other is refused.
	workflows map[string]bool

	duplicateStarts atomic.Int64
}

// New starts the engine (the embedded hub when so configured), registers
// the workflows and activities, and starts the worker.
func New(ctx context.Context, cfg Config, reg Registry, log *zap.Logger) (*Engine, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	e := &Engine{kind: cfg.Kind, log: log, workflows: make(map[string]bool, len(reg.Workflows))}
	addr, token := cfg.Dapr.GRPCEndpoint, cfg.Dapr.APIToken
	var extra []grpc.DialOption
	if cfg.Kind == KindEmbedded {
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
		return nil, errors.Join(err, e.stopHub(ctx))
	}
	workerConn, err := dial(addr, token, extra...)
	if err != nil {
		return nil, errors.Join(err, e.conn.Close(), e.stopHub(ctx))
	}
	if e.client, err = workflow.NewClient(workflow.WithDaprClient(dapr.NewClientWithConnection(e.conn))); err != nil {
		return nil, errors.Join(fmt.Errorf("engine: client: %w", err), workerConn.Close(), e.conn.Close(), e.stopHub(ctx))
	}
	if e.worker, err = workflow.NewWorker(workflow.WorkerWithDaprClient(dapr.NewClientWithConnection(workerConn))); err != nil {
		return nil, errors.Join(fmt.Errorf("engine: worker: %w", err), workerConn.Close(), e.conn.Close(), e.stopHub(ctx))
	}
	for _, w := range reg.Workflows {
		if err := e.worker.RegisterWorkflow(w); err != nil {
			return nil, errors.Join(fmt.Errorf("engine: register workflow: %w", err), e.Close(ctx))
		}
		e.workflows[funcName(w)] = true
	}
	for _, a := range reg.Activities {
		if err := e.worker.RegisterActivity(a); err != nil {
			return nil, errors.Join(fmt.Errorf("engine: register activity: %w", err), e.Close(ctx))
		}
	}
	if err := e.worker.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("engine: start worker: %w", err), e.Close(ctx))
	}
	log.Info("workflow worker started", zap.String("engine", cfg.Kind), zap.String("addr", addr))
	return e, nil
}

// dial connects lazily; the API token, when set, rides on every call.
func dial(addr, token string, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, extra...)
	if token != "" {
		opts = append(opts,
			grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, o ...grpc.CallOption) error {
				return invoker(metadata.AppendToOutgoingContext(ctx, "dapr-api-token", token), method, req, reply, cc, o...)
			}),
			grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, o ...grpc.CallOption) (grpc.ClientStream, error) {
				return streamer(metadata.AppendToOutgoingContext(ctx, "dapr-api-token", token), desc, cc, method, o...)
			}))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("engine: dial %s: %w", addr, err)
	}
	return conn, nil
}

// Kind is "embedded" or "dapr".
func (e *Engine) Kind() string { return e.kind }

// Client is the go-sdk workflow client underneath, without the checks
// Start and Raise add. Benchmarks use it as the baseline the bridge is
// measured against: plain ScheduleNewWorkflow and RaiseEvent.
func (e *Engine) Client() *workflow.Client { return e.client }

// DuplicateStarts counts starts of instance IDs that already existed.
func (e *Engine) DuplicateStarts() int64 { return e.duplicateStarts.Load() }

// Start schedules a workflow instance. input is JSON (or nil). It reports
// started=false, and no error, when the instance already exists.
func (e *Engine) Start(ctx context.Context, workflowName, instanceID string, input []byte) (started bool, err error) {
	if !e.workflows[workflowName] {
		// Both engines accept a start of any name and create an instance
		// this worker cannot run; refuse it before anything is stored.
		return false, fmt.Errorf("engine: start %s %s: %w", workflowName, instanceID, ErrUnknownWorkflow)
	}
	opts := []api.NewOrchestrationOptions{workflow.WithInstanceID(instanceID)}
	if e.kind == KindDapr {
		// daprd refuses a second start only while the instance runs; one
		// that arrives after it finished would run the saga again. Look
		// first, and let daprd ignore (not re-create) a finished instance
		// should it finish between the look and the start.
		switch _, err := e.client.FetchWorkflowMetadata(ctx, instanceID); {
		case err == nil:
			e.duplicateStarts.Add(1)
			return false, nil
		case !errors.Is(classify(err), ErrNotFound):
			return false, classify(fmt.Errorf("engine: start %s %s: %w", workflowName, instanceID, err))
		}
		opts = append(opts, api.WithOrchestrationIdReusePolicy(&api.OrchestrationIdReusePolicy{
			OperationStatus: []api.OrchestrationStatus{api.RUNTIME_STATUS_COMPLETED, api.RUNTIME_STATUS_FAILED, api.RUNTIME_STATUS_TERMINATED},
			Action:          api.REUSE_ID_ACTION_IGNORE,
		}))
	}
	if input != nil {
		opts = append(opts, workflow.WithRawInput(string(input)))
	}
	_, err = e.client.ScheduleNewWorkflow(ctx, workflowName, opts...)
	switch {
	case err == nil:
		return true, nil
	case isAlreadyExists(err):
		e.duplicateStarts.Add(1)
		return false, nil
	default:
		return false, classify(fmt.Errorf("engine: start %s %s: %w", workflowName, instanceID, err))
	}
}

// Raise delivers an external event. It checks the instance first, because
// only daprd refuses an event for a missing instance by itself.
func (e *Engine) Raise(ctx context.Context, instanceID, eventName string, payload []byte) error {
	if e.kind != KindEmbedded {
		// daprd's raise does not say whether the instance finished, so
		// look first; the embedded store refuses such a raise itself,
		// which saves a call per raise.
		md, err := e.client.FetchWorkflowMetadata(ctx, instanceID)
		if err != nil {
			return classify(fmt.Errorf("engine: raise %s on %s: %w", eventName, instanceID, err))
		}
		if isFinished(md.RuntimeStatus) {
			return fmt.Errorf("engine: raise %s on %s (%s): %w", eventName, instanceID, md.RuntimeStatus, ErrFinished)
		}
	}
	var opts []api.RaiseEventOptions
	if payload != nil {
		opts = append(opts, workflow.WithRawEventData(string(payload)))
	}
	if err := e.client.RaiseEvent(ctx, instanceID, eventName, opts...); err != nil {
		return classify(fmt.Errorf("engine: raise %s on %s: %w", eventName, instanceID, err))
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
	Input         string    `json:"input,omitempty"`
	Output        string    `json:"output,omitempty"`
	Failure       string    `json:"failure,omitempty"`
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
	md, err := e.client.FetchWorkflowMetadata(ctx, instanceID, workflow.WithFetchPayloads(true))
	if err != nil {
		return Status{}, classify(fmt.Errorf("engine: get %s: %w", instanceID, err))
	}
	s := Status{
		InstanceID:    md.InstanceID,
		Workflow:      md.Name,
		RuntimeStatus: md.RuntimeStatus.String(),
		CreatedAt:     md.CreatedAt,
		LastUpdatedAt: md.LastUpdatedAt,
		Input:         md.SerializedInput,
		Output:        md.SerializedOutput,
	}
	if md.FailureDetails != nil {
		s.Failure = md.FailureDetails.Message
	}
	return s, nil
}

// Terminate stops an instance; its output records the reason.
func (e *Engine) Terminate(ctx context.Context, instanceID, reason string) error {
	if err := e.client.TerminateWorkflow(ctx, instanceID, workflow.WithOutput(reason)); err != nil {
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

// Purge deletes a finished instance's state.
func (e *Engine) Purge(ctx context.Context, instanceID string) error {
	if err := e.client.PurgeWorkflow(ctx, instanceID); err != nil {
		return classify(fmt.Errorf("engine: purge %s: %w", instanceID, err))
	}
	return nil
}

// Ping reports whether the engine answers.
func (e *Engine) Ping(ctx context.Context) error {
	_, err := e.client.FetchWorkflowMetadata(ctx, "sagabridge-ping")
	if err == nil || errors.Is(classify(err), ErrNotFound) {
		return nil
	}
	return classify(err)
}

// Close stops the worker, the connections and the embedded hub.
func (e *Engine) Close(ctx context.Context) error {
	var errs []error
	if e.worker != nil {
		errs = append(errs, e.worker.Shutdown()) // also closes its connection
	}
	if e.conn != nil {
		errs = append(errs, e.conn.Close())
	}
	errs = append(errs, e.stopHub(ctx))
	return errors.Join(errs...)
}

func (e *Engine) stopHub(ctx context.Context) error {
	if e.hub == nil {
		return nil
	}
	return e.hub.Stop(ctx)
}

// funcName is the name go-sdk v1.11 registers a workflow function under:
// the last element of its Go name ("OrderSaga", "DeclarativeSaga-fm").
func funcName(f any) string {
	full := runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name()
	return full[strings.LastIndex(full, ".")+1:]
}

func isFinished(s workflow.Status) bool {
	switch s {
	case workflow.StatusCompleted, workflow.StatusFailed, workflow.StatusTerminated:
		return true
	}
	return false
}

// The engines word the same conditions differently; these are the phrases
// measured on the embedded hub and daprd v1.14.
func isAlreadyExists(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "already exists")
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
