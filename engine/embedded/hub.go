package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/dapr/durabletask-go/api"
	"github.com/dapr/durabletask-go/api/protos"
	"github.com/dapr/durabletask-go/backend"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sagabridge/sagabridge/engine/embedded/store"
)

// Config configures the embedded task hub. The worker's file is checked
// where it is read (bridge/config); Validate checks what only code sets.
type Config struct {
	// DBPath is the SQLite file; its directory is created if missing.
	DBPath string
	// Listen, when set, is a loopback address the hub also serves gRPC on,
	// for a worker in another process (the fault tests run the hub as a
	// sidecar of its own this way). This process's engine always uses the
	// in-memory connection.
	Listen string
	// Parallelism is how many orchestration and how many activity work
	// items run at once (the stock hub runs one); zero or negative: 64.
	Parallelism int
	// Synchronous is SQLite's synchronous pragma in WAL mode: "normal"
	// (default: a process crash loses nothing, a power cut can lose the
	// last commits) or "full" (survives a power cut; group commit makes
	// the cost one fsync per batch of writes). The store refuses any
	// other word: it goes into a PRAGMA.
	Synchronous string
	// MaxBatch bounds how many writes the store commits in one
	// transaction (0: the store's default, 256).
	MaxBatch int
	// Retention, when set, purges finished instances in the background
	// (see store.Retention).
	Retention *store.Retention
	// Clock, when set, is the hub's time: when durable timers are due and
	// what orchestrations read as the current time (the
	// OrchestratorStarted event's timestamp). The saga test kit moves it
	// forward so that timeouts fire at once; nil is the wall clock.
	Clock store.Clock
}

func (c *Config) setDefaults() {
	if c.DBPath == "" {
		c.DBPath = "data/workflows.db"
	}
	if c.Parallelism <= 0 {
		c.Parallelism = 64
	}
	if c.Synchronous == "" {
		c.Synchronous = "normal"
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Listen != "" {
		if host, _, err := net.SplitHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("embedded engine: listen %q: %w", c.Listen, err))
		} else if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			errs = append(errs, fmt.Errorf("embedded engine: listen %q is not a loopback address", c.Listen))
		}
	}
	return errors.Join(errs...)
}

// Hub is a running embedded task hub.
type Hub struct {
	lis    *bufconn.Listener
	srv    *grpc.Server
	worker backend.TaskHubWorker
	exec   backend.Executor
	be     *store.Backend
	log    *zap.Logger
}

// Start opens (or creates) the database, which takes its exclusive lock
// (another process that has it: "database <path> is locked by pid N") and
// queues again whatever a crashed process left unfinished, and serves the
// hub.
func Start(ctx context.Context, cfg Config, log *zap.Logger) (*Hub, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	if err := os.MkdirAll(filepath.Dir(cfg.DBPath), 0o750); err != nil {
		return nil, fmt.Errorf("embedded engine: create data dir: %w", err)
	}
	dtLog := zapLogger{log.Named("durabletask").Sugar()}
	be, err := store.Open(store.Options{
		Path:        cfg.DBPath,
		Synchronous: cfg.Synchronous,
		MaxBatch:    cfg.MaxBatch,
		Retention:   cfg.Retention,
		Logger:      dtLog,
		Clock:       cfg.Clock,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded engine: %w", err)
	}

	// A start returns once the instance is stored, as it did before
	// durabletask-go v0.11 made it wait for the orchestration to begin
	// (waiting cost ~0.5 ms of CPU per saga in smaller group commits:
	// store BenchmarkSagaGrpc against BenchmarkSagaGrpcWaitStart).
	exec, register := backend.NewGrpcExecutor(be, dtLog, backend.WithSkipWaitForInstanceStart())
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(MaxMessageBytes))
	register(srv)
	par := backend.WithMaxParallelism(int32(cfg.Parallelism))
	var orchExec backend.Executor = exec
	if cfg.Clock != nil {
		orchExec = clockedExecutor{Executor: exec, clock: cfg.Clock}
	}
	worker := backend.NewTaskHubWorker(be,
		backend.NewOrchestrationWorker(backend.OrchestratorOptions{Backend: be, Executor: orchExec, Logger: dtLog}, par),
		backend.NewActivityTaskWorker(ownEvents{be}, exec, dtLog, par),
		dtLog)
	if err := startWorker(ctx, worker); err != nil {
		_ = be.Close()
		return nil, err
	}
	// The hub is served in memory: only this process's worker and client
	// call it. Over a loopback port, each of a saga's ~20 gRPC messages cost
	// system calls on both sides; one saga alone took 2.7-2.8 ms p50 over
	// TCP and 1.8-2.0 ms in memory (bench, same hour). It also opens no
	// port. bufconn is grpc-go's in-memory listener; its connections are
	// buffered like sockets, unlike net.Pipe, whose writes wait for the
	// reader.
	lis := bufconn.Listen(hubBufferBytes)
	listeners := []net.Listener{lis}
	addr := "in-process"
	if cfg.Listen != "" {
		tcp, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			_ = worker.Shutdown(ctx)
			_ = be.Close()
			return nil, fmt.Errorf("embedded engine: listen: %w", err)
		}
		listeners, addr = append(listeners, tcp), tcp.Addr().String()
	}
	for _, l := range listeners {
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				log.Error("embedded engine: grpc server stopped", zap.Error(err))
			}
		}()
	}
	log.Info("embedded workflow engine started", zap.String("db", cfg.DBPath), zap.String("addr", addr))
	return &Hub{lis: lis, srv: srv, worker: worker, exec: exec, be: be, log: log}, nil
}

// gracefulStopLimit bounds how long Stop lets open gRPC calls finish.
const gracefulStopLimit = 5 * time.Second

// MaxMessageBytes bounds one gRPC message between the hub and the worker.
// A work item carries the instance's whole history, and gRPC's default of
// 4 MiB is also daprd's (--max-body-size): the saga runtime keeps its
// histories under 3 MiB (sagas.DefaultMaxHistoryBytes) on both engines,
// and the hub's larger bound leaves room for what the runtime cannot
// count (events raised that no step waits for, Func steps), so that such
// an instance is still handed over rather than retried forever.
const MaxMessageBytes = 16 << 20

// hubBufferBytes is each in-memory connection's buffer per direction; a
// writer blocks while it is full, as on a socket.
const hubBufferBytes = 1 << 20

// Dial connects to the hub in memory; it is the gRPC dialer of the workflow
// worker and client (grpc.WithContextDialer), which ignore the target.
func (h *Hub) Dial(ctx context.Context, _ string) (net.Conn, error) { return h.lis.DialContext(ctx) }

// Healthy reports whether the database can be written (the readiness
// probe's question): nil, or an error matching store.ErrUnavailable (its
// file was deleted or replaced, the disk is full) or store.ErrClosed.
func (h *Hub) Healthy() error { return h.be.Healthy() }

// Store is the hub's store, for what durabletask's API does not offer:
// ListInstances with filters, Sweep.
func (h *Hub) Store() *store.Backend { return h.be }

// Stop stops the workers, then the gRPC server, then closes the database,
// which releases its lock. Work in flight is abandoned and runs again on
// next start. The executor's own Shutdown is not called: in durabletask-go
// v0.11 it closes the work-item queue, and every open GetWorkItems stream
// then spins on the closed channel until it ends; stopping the server ends
// the streams, whose cleanup cancels the work items sent on them.
//
// The graceful stop is bounded by gracefulStopLimit as well as ctx, so that
// a call that does not return (durabletask-go v0.5.0 had one: a
// CompleteOrchestratorTask arriving after the worker's stream closed
// blocked forever; seen in CI as a 15-minute hang) cannot hold up Stop.
// Past the bound Stop leaves such calls behind, abandoned like any other
// work in flight. It does not wait for a forced stop either: grpc-go's Stop
// needs the lock that GracefulStop holds while it waits for handlers, so
// the forced stop runs on its own and helps only if it can.
func (h *Hub) Stop(ctx context.Context) error {
	errW := h.worker.Shutdown(ctx)
	stopped := make(chan struct{})
	go func() { h.srv.GracefulStop(); close(stopped) }()
	limit := time.NewTimer(gracefulStopLimit)
	defer limit.Stop()
	select {
	case <-stopped:
	case <-limit.C:
		h.log.Warn("embedded engine: gRPC calls still open after the graceful stop limit; leaving them", zap.Duration("limit", gracefulStopLimit))
		go h.srv.Stop()
	case <-ctx.Done():
		go h.srv.Stop()
	}
	return errors.Join(errW, h.be.Close())
}

// startWorker turns a panic while starting into an error.
func startWorker(ctx context.Context, w backend.TaskHubWorker) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("embedded engine: start: %v", r)
		}
	}()
	if err := w.Start(ctx); err != nil {
		return fmt.Errorf("embedded engine: start: %w", err)
	}
	return nil
}

// ownEvents hands each activity work item a copy of its TaskScheduled
// event. durabletask-go's activity processor writes the trace context into
// that event (backend/activity.go, ProcessWorkItem) while the store keeps
// the same event in the instance's cached history, which the executor may
// be sending to the worker at that moment: the race detector caught the
// two in the bridge's tests.
type ownEvents struct{ *store.Backend }

func (b ownEvents) NextActivityWorkItem(ctx context.Context) (*backend.ActivityWorkItem, error) {
	wi, err := b.Backend.NextActivityWorkItem(ctx)
	if wi != nil && wi.NewEvent != nil {
		wi.NewEvent = proto.Clone(wi.NewEvent).(*protos.HistoryEvent)
	}
	return wi, err
}

// clockedExecutor stamps each turn's OrchestratorStarted event with the
// hub's clock. durabletask-go stamps it with the wall clock, and an
// orchestration computes a timer's due time from it: without this, a
// clock moved forward would fire timers early by the jump, not at the time
// the orchestration asked for. The event is the one kept in the history, so
// a replay reads the same time.
type clockedExecutor struct {
	backend.Executor
	clock store.Clock
}

func (e clockedExecutor) ExecuteOrchestrator(ctx context.Context, iid api.InstanceID, old, events []*protos.HistoryEvent) (*protos.OrchestratorResponse, error) {
	for _, ev := range events {
		if ev.GetOrchestratorStarted() != nil {
			ev.Timestamp = timestamppb.New(e.clock.Now())
		}
	}
	return e.Executor.ExecuteOrchestrator(ctx, iid, old, events)
}
