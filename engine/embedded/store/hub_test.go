package store_test

import (
	"context"
	"net"
	"os"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/dapr/durabletask-go/api"
	"github.com/dapr/durabletask-go/backend"
	"github.com/dapr/durabletask-go/task"
	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/engine/embedded/store"
)

// testHub runs the store with durabletask's own workers and its in-process
// executor: the same backend contract the embedded hub uses, without gRPC.
type testHub struct {
	be     *store.Backend
	client backend.TaskHubClient
	worker backend.TaskHubWorker
}

func startHubWith(t testing.TB, path string, par int32, r *task.TaskRegistry, opts ...func(*store.Options)) *testHub {
	t.Helper()
	o := store.Options{Path: path, Synchronous: os.Getenv("STORE_SYNCHRONOUS")}
	for _, f := range opts {
		f(&o)
	}
	be, err := store.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	exec := task.NewTaskExecutor(r)
	nop := quietLogger{}
	w := backend.NewTaskHubWorker(be,
		backend.NewOrchestrationWorker(backend.OrchestratorOptions{Backend: be, Executor: exec, Logger: nop}, backend.WithMaxParallelism(par)),
		backend.NewActivityTaskWorker(be, exec, nop, backend.WithMaxParallelism(par)), nop)
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &testHub{be: be, client: backend.NewTaskHubClient(be), worker: w}
}

func (h *testHub) stop() {
	_ = h.worker.Shutdown(context.Background())
	_ = h.be.Close()
}

// grpcHub serves the store through durabletask's gRPC executor on an
// in-memory connection, with a workflow worker and client on the other
// end: what the embedded hub does, and what the engine layer sees.
type grpcHub struct {
	be     *store.Backend
	client *workflow.Client
	worker backend.TaskHubWorker
	srv    *grpc.Server
	conn   *grpc.ClientConn
	cancel context.CancelFunc
}

// startGrpcHub starts a grpcHub. waitStart false makes the executor
// answer a start once it is stored, as v0.5's did; true waits for the
// instance to start, v0.11's default.
func startGrpcHub(t testing.TB, path string, par int32, r *workflow.Registry, waitStart bool, opts ...func(*store.Options)) *grpcHub {
	t.Helper()
	o := store.Options{Path: path}
	for _, f := range opts {
		f(&o)
	}
	be, err := store.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	nop := quietLogger{}
	exec, register := backend.NewGrpcExecutor(be, nop)
	if !waitStart {
		exec, register = backend.NewGrpcExecutor(be, nop, backend.WithSkipWaitForInstanceStart())
	}
	srv := grpc.NewServer()
	register(srv)
	w := backend.NewTaskHubWorker(be,
		backend.NewOrchestrationWorker(backend.OrchestratorOptions{Backend: be, Executor: exec, Logger: nop}, backend.WithMaxParallelism(par)),
		backend.NewActivityTaskWorker(be, exec, nop, backend.WithMaxParallelism(par)), nop)
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///hub",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	client := workflow.NewClientWithLogger(conn, nop)
	ctx, cancel := context.WithCancel(context.Background())
	if err := client.StartWorker(ctx, r); err != nil {
		t.Fatal(err)
	}
	return &grpcHub{be: be, client: client, worker: w, srv: srv, conn: conn, cancel: cancel}
}

// stop shuts down as the embedded hub does: workers, then the server
// (which ends the work-item stream and cancels what was sent on it), then
// the store.
func (h *grpcHub) stop() {
	h.cancel()
	_ = h.worker.Shutdown(context.Background())
	h.srv.Stop()
	_ = h.conn.Close()
	_ = h.be.Close()
}

type quietLogger struct{}

func (quietLogger) Debug(...any)          {}
func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Info(...any)           {}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Warn(...any)           {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Error(...any)          {}
func (quietLogger) Errorf(string, ...any) {}

// statusIs is a condition for WatchOrchestrationRuntimeStatus.
func statusIs(s api.OrchestrationStatus) func(*backend.OrchestrationMetadata) bool {
	return func(md *backend.OrchestrationMetadata) bool { return md.RuntimeStatus == s }
}
