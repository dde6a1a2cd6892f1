package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/api"
	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/engine/embedded/store"
)

// cpuTime is the process's CPU time so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchInFlight is how many sagas the benchmarks keep running at once.
const benchInFlight = 64

// runSagas runs n probe sagas, benchInFlight at a time, with start and
// raise, and reports sagas/s and CPU per saga.
func runSagas(b *testing.B, n int, prefix string, start func(id string) error, raise func(id string) error, every func(done int)) {
	b.Helper()
	sem := make(chan struct{}, benchInFlight)
	var wg sync.WaitGroup
	c0, t0 := cpuTime(), time.Now()
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		id := fmt.Sprintf("%s-%d", prefix, i)
		ch := make(chan struct{})
		probeDone.Store(id, ch)
		if err := start(id); err != nil {
			b.Fatal(err)
		}
		if err := raise(id); err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); <-ch; <-sem }()
		if every != nil {
			every(i + 1)
		}
	}
	wg.Wait()
	el, cpu := time.Since(t0), cpuTime()-c0
	b.ReportMetric(float64(n)/el.Seconds(), "sagas/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/saga")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkSaga runs the probe saga (three activities, an event, a last
// activity) on the store with durabletask's in-process executor: the
// store's own cost and the engine's, no gRPC.
func BenchmarkSaga(b *testing.B) {
	h := startHubWith(b, filepath.Join(b.TempDir(), "wf.db"), 128, probeRegistry())
	defer h.stop()
	ctx := context.Background()
	b.ResetTimer()
	runSagas(b, b.N, "s",
		func(id string) error {
			_, err := h.client.ScheduleNewOrchestration(ctx, "ProbeSaga", apiID(id))
			return err
		},
		func(id string) error { return h.client.RaiseEvent(ctx, apiInstance(id), "approval") }, nil)
}

// BenchmarkSagaGrpc runs the probe saga as the embedded engine does: the
// workflow client and worker on durabletask's gRPC executor over an
// in-memory connection. A start returns once stored (the executor's
// WithSkipWaitForInstanceStart, as the embedded hub sets it).
func BenchmarkSagaGrpc(b *testing.B) { benchSagaGrpc(b, false) }

// BenchmarkSagaGrpcWaitStart is BenchmarkSagaGrpc with the executor's
// default: a start returns once the instance started.
func BenchmarkSagaGrpcWaitStart(b *testing.B) { benchSagaGrpc(b, true) }

func benchSagaGrpc(b *testing.B, waitStart bool) {
	h := startGrpcHub(b, filepath.Join(b.TempDir(), "wf.db"), 128, probeWorkflows(), waitStart)
	defer h.stop()
	ctx := context.Background()
	b.ResetTimer()
	runSagas(b, b.N, "g",
		func(id string) error {
			_, err := h.client.ScheduleWorkflow(ctx, "ProbeSaga", workflow.WithInstanceID(id), workflow.WithInput(struct{}{}))
			return err
		},
		func(id string) error {
			return h.client.RaiseEvent(ctx, id, "approval", workflow.WithEventPayload(true))
		}, nil)
}

// BenchmarkRetention runs b.N probe sagas with retention on (completed
// sagas kept RETENTION_AGE, default 10s) and prints the database's size as
// it goes: it grows for one retention period, then stays flat. For the
// record: go test -run '^$' -bench '^BenchmarkRetention$' -benchtime 200000x
func BenchmarkRetention(b *testing.B) {
	age := 10 * time.Second
	if s := os.Getenv("RETENTION_AGE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatal(err)
		}
		age = d
	}
	path := filepath.Join(b.TempDir(), "wf.db")
	h := startHubWith(b, path, 128, probeRegistry(), withRetention(store.Retention{Completed: age, Interval: age / 10}))
	defer h.stop()
	ctx := context.Background()
	size := func(p string) float64 {
		fi, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return float64(fi.Size()) / (1 << 20)
	}
	t0 := time.Now()
	step := max(b.N/10, 1)
	var peak float64
	b.ResetTimer()
	runSagas(b, b.N, "r",
		func(id string) error {
			_, err := h.client.ScheduleNewOrchestration(ctx, "ProbeSaga", apiID(id))
			return err
		},
		func(id string) error { return h.client.RaiseEvent(ctx, apiInstance(id), "approval") },
		func(done int) {
			if done%step == 0 {
				db := size(path)
				peak = max(peak, db)
				b.Logf("%7d sagas after %6.1fs: database %6.1f MiB, WAL %5.1f MiB", done, time.Since(t0).Seconds(), db, size(path+"-wal"))
			}
		})
	b.ReportMetric(peak, "peak-db-MiB")
	b.ReportMetric(size(path), "final-db-MiB")
}

func apiID(id string) api.NewOrchestrationOptions { return api.WithInstanceID(api.InstanceID(id)) }

func apiInstance(id string) api.InstanceID { return api.InstanceID(id) }
