package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// The saga every system runs, named the same everywhere: three steps, each
// a command the participant (the harness) answers; then the approval event,
// which the harness raises right after the start, waited for with a timeout
// as sagabridge's BenchSaga does; then the outcome, which a last step hands
// to the harness.
const (
	sagaName      = "BenchSaga"
	approvalEvent = "approval"
	approvalWait  = 10 * time.Minute
)

// participant answers a step's command: step n returns n+1, as
// sagabridge's BenchStep does.
func participant(n int) int { return n + 1 }

// saga is one system under test, running in this process.
type saga interface {
	// submit starts saga id and raises its approval event, as a caller
	// would; the outcome reaches the outcomes sink later.
	submit(ctx context.Context, id string) error
	close()
}

// outcomes is where each saga's last step reports, and where the driver
// waits for it.
type outcomes struct {
	mu      sync.Mutex
	waiting map[string]chan time.Time
}

func newOutcomes() *outcomes { return &outcomes{waiting: map[string]chan time.Time{}} }

func (o *outcomes) expect(id string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	o.mu.Lock()
	o.waiting[id] = ch
	o.mu.Unlock()
	return ch
}

// deliver records saga id's outcome; a repeat (a step retried) is dropped.
func (o *outcomes) deliver(id string) {
	now := time.Now()
	o.mu.Lock()
	ch := o.waiting[id]
	delete(o.waiting, id)
	o.mu.Unlock()
	if ch != nil {
		ch <- now
	}
}

// The warm-up before each measurement, as in `sagabridge bench`: the first
// sagas pay for connections and caches.
const (
	warmupSagas       = 20
	warmupConcurrency = 4
)

// outcomeTimeout bounds one saga's wait for its outcome: long, because a
// slow system with many sagas in flight queues them for minutes (Temporal
// at 128 in flight on a loaded machine: p99 105 s).
const outcomeTimeout = 10 * time.Minute

// Result is one system at one concurrency: one round from a worker, or the
// pooled rounds in the report.
type Result struct {
	System      string  `json:"system"`
	Concurrency int     `json:"concurrency"`
	Sagas       int     `json:"sagas"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"sagasPerSecond"`
	P50Ms       float64 `json:"p50Ms"`
	P99Ms       float64 `json:"p99Ms"`
	// CPUSecondsPer1k counts every process involved: the worker and the
	// servers it uses (PostgreSQL's postmaster and backends).
	CPUSecondsPer1k float64 `json:"cpuSecondsPer1000"`
	// WorkerCPUSecondsPer1k is the worker process's own share.
	WorkerCPUSecondsPer1k float64 `json:"workerCpuSecondsPer1000"`
	// PeakRSSMiB is the worker's peak resident memory plus the servers'
	// peak proportional set size (shared buffers counted once).
	PeakRSSMiB float64 `json:"peakRssMiB"`
}

// measure runs n sagas with c in flight (closed loop, each slot submitting
// on its own, as `sagabridge bench` does) and times each from its start
// request to its outcome. servers are the root pids of server processes
// whose CPU and memory count with the worker's.
func measure(ctx context.Context, sys saga, out *outcomes, name string, c, n int, servers []int) (Result, error) {
	serverCPU := func() float64 {
		var s float64
		for _, pid := range servers {
			s += treeCPUSeconds(pid)
		}
		return s
	}
	resetPeakRSS()
	stopSampling, serverPeak := sampleServerMemory(servers)
	cpu0, srv0 := selfCPUSeconds(), serverCPU()
	lat := make([]time.Duration, n)
	sem := make(chan struct{}, c)
	errc := make(chan error, 1)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	var wg sync.WaitGroup
	start := time.Now()
	prefix := fmt.Sprintf("%s-%d-%d", name, c, start.UnixNano())
loop:
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-errc:
			break loop
		case <-ctx.Done():
			break loop
		}
		id := fmt.Sprintf("%s-%d", prefix, i)
		done := out.expect(id)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			if err := sys.submit(ctx, id); err != nil {
				fail(fmt.Errorf("saga %s: %w", id, err))
				return
			}
			select {
			case t := <-done:
				lat[i] = t.Sub(t0)
			case <-time.After(outcomeTimeout):
				fail(fmt.Errorf("saga %s: no outcome after %s", id, outcomeTimeout))
			case <-ctx.Done():
				fail(ctx.Err())
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu, srv := selfCPUSeconds()-cpu0, serverCPU()-srv0
	stopSampling()
	select {
	case err := <-errc:
		return Result{}, err
	default:
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	q := func(p float64) float64 { return ms(lat[min(n-1, int(float64(n)*p))]) }
	return Result{
		System: name, Concurrency: c, Sagas: n, Seconds: elapsed.Seconds(),
		PerSecond: float64(n) / elapsed.Seconds(),
		P50Ms:     q(0.50), P99Ms: q(0.99),
		CPUSecondsPer1k:       (cpu + srv) / float64(n) * 1000,
		WorkerCPUSecondsPer1k: cpu / float64(n) * 1000,
		PeakRSSMiB:            peakRSSMiB() + serverPeak(),
	}, nil
}

// sampleServerMemory samples the servers' memory every 100 ms until stop;
// peak returns the highest sum seen.
func sampleServerMemory(servers []int) (stop func(), peak func() float64) {
	if len(servers) == 0 {
		return func() {}, func() float64 { return 0 }
	}
	var mu sync.Mutex
	var high float64
	sample := func() {
		var s float64
		for _, pid := range servers {
			s += treePSSMiB(pid)
		}
		mu.Lock()
		high = max(high, s)
		mu.Unlock()
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			sample()
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	stop = func() { close(quit); <-done; sample() }
	peak = func() float64 { mu.Lock(); defer mu.Unlock(); return high }
	return stop, peak
}
