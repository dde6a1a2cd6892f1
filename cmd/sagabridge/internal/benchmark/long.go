package benchmark

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/engine"
)

// LongOptions configure the cost-over-time run: many sagas through the
// embedded engine, directly (no broker in the path but the outcome's),
// measured window by window.
type LongOptions struct {
	// Sagas in all, measured in windows of Window sagas.
	Sagas, Window int
	// Concurrency is the sagas in flight.
	Concurrency int
	// Parked is how many instances the last case leaves waiting for their
	// event before approving them all (0: skip).
	Parked  int
	DataDir string
	// Retention, when set, is the engine's retention period for every
	// saga outcome (0 keeps them all); nil leaves the configuration's
	// defaults (72 hours and more: nothing is purged within a run).
	Retention *time.Duration
	Logger    *zap.Logger
	// Progress receives each window as it finishes; may be nil.
	Progress func(Window)
}

func (o *LongOptions) setDefaults() {
	if o.Window == 0 {
		o.Window = 100_000
	}
	if o.Concurrency == 0 {
		o.Concurrency = 128
	}
	if o.DataDir == "" {
		o.DataDir = "data/bench-long"
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// Validate reports every problem at once.
func (o LongOptions) Validate() error {
	var errs []error
	if o.Sagas < 1 || o.Window < 1 || o.Sagas%o.Window != 0 {
		errs = append(errs, fmt.Errorf("bench long: sagas %d must be a positive multiple of the window %d", o.Sagas, o.Window))
	}
	if o.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("bench long: concurrency %d must be at least 1", o.Concurrency))
	}
	if o.Parked < 0 {
		errs = append(errs, fmt.Errorf("bench long: parked %d is negative", o.Parked))
	}
	if o.Retention != nil && *o.Retention < 0 {
		errs = append(errs, fmt.Errorf("bench long: retention %s is negative", *o.Retention))
	}
	return errors.Join(errs...)
}

// Window is one window of the long run.
type Window struct {
	Index     int     `json:"index"`
	Done      int     `json:"sagasDone"` // since the start, this window included
	AtSeconds float64 `json:"atSeconds"` // since the start, at the window's end
	PerSecond float64 `json:"sagasPerSecond"`
	P50Ms     float64 `json:"p50Ms"`
	P99Ms     float64 `json:"p99Ms"`
	CPUPer1k  float64 `json:"cpuSecondsPer1000"`
	RSSMiB    float64 `json:"rssMiB"`
	DBMiB     float64 `json:"dbMiB"` // database, WAL and shared-memory files
	// Instances is how many instances the store holds at the window's
	// end: every saga so far without retention, about one retention
	// period's worth with it.
	Instances int `json:"instances"`
}

// LongParked is the parked case of the long run.
type LongParked struct {
	Instances int `json:"instances"`
	// StartSeconds is the time to start them all; the memory and database
	// figures are taken once the engine is idle (all are waiting).
	StartSeconds     float64 `json:"startSeconds"`
	RSSGrowthMiB     float64 `json:"rssGrowthMiB"`
	HeapGrowthMiB    float64 `json:"heapGrowthMiB"`
	RSSKiBPerSaga    float64 `json:"rssKiBPerSaga"`
	HeapKiBPerSaga   float64 `json:"heapKiBPerSaga"`
	DBGrowthMiB      float64 `json:"dbGrowthMiB"`
	DBKiBPerSaga     float64 `json:"dbKiBPerSaga"`
	ApproveAllSecond float64 `json:"approveAllSeconds"` // raise on every one → every outcome received
}

// LongReport is a whole long run.
type LongReport struct {
	Date        string      `json:"date"`
	Machine     string      `json:"machine"`
	Commit      string      `json:"commit"`
	Load        []string    `json:"loadAverage"`
	Sagas       int         `json:"sagas"`
	Concurrency int         `json:"concurrency"`
	Retention   string      `json:"retention"` // every outcome's period, or "defaults"
	Windows     []Window    `json:"windows"`
	LastToFirst float64     `json:"lastToFirst"` // last window's sagas/s over the first's
	Restart     float64     `json:"restartSeconds"`
	Parked      *LongParked `json:"parked,omitempty"`
}

// RunLong runs opts.Sagas sagas through the embedded engine in windows,
// restarts the worker on the database the run left, and then parks and
// approves opts.Parked sagas.
func RunLong(ctx context.Context, opts LongOptions) (LongReport, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return LongReport{}, err
	}
	rep := LongReport{
		Date: time.Now().UTC().Format(time.RFC3339), Load: []string{loadAverage()},
		Sagas: opts.Sagas, Concurrency: opts.Concurrency, Retention: "defaults",
	}
	if opts.Retention != nil {
		rep.Retention = opts.Retention.String()
	}
	envOpts := Options{DataDir: opts.DataDir, Logger: opts.Logger, Retention: opts.Retention}
	envOpts.setDefaults()
	dir := filepath.Join(opts.DataDir, "long-"+time.Now().UTC().Format("20060102T150405"))
	e, err := startEnvAt(ctx, envOpts, "nats", dir)
	if err != nil {
		return rep, err
	}
	if _, err := e.measure(ctx, ModeDirect, warmupConcurrency, warmupSagas); err != nil {
		e.close()
		return rep, fmt.Errorf("bench long warm-up: %w", err)
	}
	start := time.Now()
	for i := 0; i < opts.Sagas/opts.Window; i++ {
		sm, err := e.measure(ctx, ModeDirect, opts.Concurrency, opts.Window)
		if err != nil {
			e.close()
			return rep, fmt.Errorf("bench long window %d: %w", i+1, err)
		}
		r := e.summarize(ModeDirect, opts.Concurrency, []sample{sm})
		kept, err := e.bridge.Engine().Store().CountInstances(ctx)
		if err != nil {
			e.close()
			return rep, fmt.Errorf("bench long window %d: %w", i+1, err)
		}
		w := Window{
			Index: i + 1, Done: (i + 1) * opts.Window, AtSeconds: time.Since(start).Seconds(),
			PerSecond: r.PerSecond, P50Ms: r.P50Ms, P99Ms: r.P99Ms, CPUPer1k: r.CPUSecondsPer1k,
			RSSMiB: currentRSSMiB(), DBMiB: dbMiB(dir), Instances: kept,
		}
		rep.Windows = append(rep.Windows, w)
		if opts.Progress != nil {
			opts.Progress(w)
		}
	}
	if n := len(rep.Windows); n > 0 && rep.Windows[0].PerSecond > 0 {
		rep.LastToFirst = rep.Windows[n-1].PerSecond / rep.Windows[0].PerSecond
	}
	e.close()

	// A restart on what the run left: from a new process's point of view,
	// the worker is back once a new saga has run end to end.
	t0 := time.Now()
	if e, err = startEnvAt(ctx, envOpts, "nats", dir); err != nil {
		return rep, fmt.Errorf("bench long restart: %w", err)
	}
	defer e.close()
	if _, err := e.measure(ctx, ModeDirect, 1, 1); err != nil {
		return rep, fmt.Errorf("bench long restart: %w", err)
	}
	rep.Restart = time.Since(t0).Seconds()

	if opts.Parked > 0 {
		p, err := e.parkAndApprove(ctx, opts.Parked, opts.Concurrency, dir)
		if err != nil {
			return rep, err
		}
		rep.Parked = &p
	}
	rep.Load = append(rep.Load, loadAverage())
	return rep, nil
}

// parkAndApprove starts n sagas that wait for their approval, measures
// what they cost once the engine is idle, then raises every approval and
// times until every outcome arrived.
func (e *env) parkAndApprove(ctx context.Context, n, c int, dir string) (LongParked, error) {
	eng := e.bridge.Engine()
	settle := func() (rss, heap float64) {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return currentRSSMiB(), float64(ms.HeapAlloc) / (1 << 20)
	}
	rss0, heap0 := settle()
	db0 := dbMiB(dir)
	e.run++
	ids := make([]string, n)
	done := make([]chan time.Time, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("parked-%d-%d", e.run, i)
		done[i] = make(chan time.Time, 1)
	}
	e.mu.Lock()
	for i, id := range ids {
		e.waiting[id] = done[i]
	}
	e.mu.Unlock()
	t0 := time.Now()
	if err := forEach(ctx, n, c, func(i int) error {
		_, err := eng.Start(ctx, "BenchSaga", ids[i], []byte(`{}`))
		return err
	}); err != nil {
		return LongParked{}, fmt.Errorf("bench long: park: %w", err)
	}
	p := LongParked{Instances: n, StartSeconds: time.Since(t0).Seconds()}
	if err := waitIdle(ctx, 10*time.Minute); err != nil {
		return p, err
	}
	rss1, heap1 := settle()
	p.RSSGrowthMiB, p.HeapGrowthMiB, p.DBGrowthMiB = rss1-rss0, heap1-heap0, dbMiB(dir)-db0
	p.RSSKiBPerSaga = p.RSSGrowthMiB * 1024 / float64(n)
	p.HeapKiBPerSaga = p.HeapGrowthMiB * 1024 / float64(n)
	p.DBKiBPerSaga = p.DBGrowthMiB * 1024 / float64(n)

	t1 := time.Now()
	if err := forEach(ctx, n, c, func(i int) error {
		return eng.Raise(ctx, ids[i], ApprovalEvent, []byte(`true`), engine.RaiseOptions{})
	}); err != nil {
		return p, fmt.Errorf("bench long: approve: %w", err)
	}
	deadline := time.After(30 * time.Minute)
	for i := range done {
		select {
		case <-done[i]:
		case <-deadline:
			return p, fmt.Errorf("bench long: %d of %d approved sagas had no outcome after 30 minutes", n-i, n)
		case <-ctx.Done():
			return p, ctx.Err()
		}
	}
	p.ApproveAllSecond = time.Since(t1).Seconds()
	return p, nil
}

// forEach calls fn for 0..n-1 with c calls at once and returns the first
// error.
func forEach(ctx context.Context, n, c int, fn func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// waitIdle waits until this process spends under 5 % of a core over a
// second: the engine has run every parked saga up to its wait.
func waitIdle(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		c0 := cpuSeconds()
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
		if cpuSeconds()-c0 < 0.05 {
			return nil
		}
	}
	return fmt.Errorf("bench long: the engine was still busy after %s", limit)
}

// dbMiB is the size of the engine's database files in dir.
func dbMiB(dir string) float64 {
	var n int64
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if fi, err := os.Stat(filepath.Join(dir, "workflows.db"+suffix)); err == nil {
			n += fi.Size()
		}
	}
	return float64(n) / (1 << 20)
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	var l1, l5, l15 string
	if _, err := fmt.Sscan(string(b), &l1, &l5, &l15); err != nil {
		return "unknown"
	}
	return time.Now().UTC().Format("15:04:05") + " " + l1 + " " + l5 + " " + l15
}

// WriteTable prints the windows, the restart and the parked case.
func (r LongReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "\n%s — %s — commit %s — load average %s\n", r.Date, r.Machine, r.Commit, strings.Join(r.Load, " → "))
	fmt.Fprintf(w, "%d sagas, %d in flight, retention %s\n\n", r.Sagas, r.Concurrency, r.Retention)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "window\tsagas done\tat s\tsagas/s\tp50 ms\tp99 ms\tCPU s/1k\tRSS MiB\tdatabase MiB\tinstances kept\t")
	for _, x := range r.Windows {
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.0f\t%.1f\t%.1f\t%.2f\t%.0f\t%.1f\t%d\t\n",
			x.Index, x.Done, x.AtSeconds, x.PerSecond, x.P50Ms, x.P99Ms, x.CPUPer1k, x.RSSMiB, x.DBMiB, x.Instances)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nlast window / first: %.2f; restart on the database the run left, until a new saga completed: %.2f s\n", r.LastToFirst, r.Restart)
	if p := r.Parked; p != nil {
		fmt.Fprintf(w, "%d parked sagas: started in %.1f s; RSS +%.1f MiB (%.2f KiB each), Go heap +%.1f MiB (%.2f KiB each), database +%.1f MiB (%.2f KiB each); approving them all took %.1f s\n",
			p.Instances, p.StartSeconds, p.RSSGrowthMiB, p.RSSKiBPerSaga, p.HeapGrowthMiB, p.HeapKiBPerSaga, p.DBGrowthMiB, p.DBKiBPerSaga, p.ApproveAllSecond)
	}
	return nil
}

// WriteJSON writes the report to path.
func (r LongReport) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteSVG draws, against sagas done, the throughput of each window and
// the database and RSS at its end.
func (r LongReport) WriteSVG(path string) error {
	var sb strings.Builder
	const w, h, pw, ph, m = 960, 420, 400, 300, 60
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	sb.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	maxDone := 1.0
	for _, x := range r.Windows {
		maxDone = math.Max(maxDone, float64(x.Done))
	}
	type line struct {
		name, color string
		val         func(Window) float64
	}
	panel := func(x0 int, title, unit string, lines []line) {
		maxV := 1.0
		for _, l := range lines {
			for _, x := range r.Windows {
				maxV = math.Max(maxV, l.val(x))
			}
		}
		maxV *= 1.1
		lx := func(d float64) float64 { return float64(x0+m) + d/maxDone*pw }
		ly := func(v float64) float64 { return float64(m+ph) - v/maxV*ph }
		fmt.Fprintf(&sb, `<text x="%d" y="30" font-size="14" font-weight="bold">%s</text>`+"\n", x0+m, title)
		fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x0+m, m+ph, x0+m+pw, m+ph)
		fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x0+m, m, x0+m, m+ph)
		for i := 0; i <= 4; i++ {
			v := maxV * float64(i) / 4
			fmt.Fprintf(&sb, `<text x="%d" y="%.0f" text-anchor="end">%.0f</text>`+"\n", x0+m-5, ly(v)+4, v)
			fmt.Fprintf(&sb, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="#eee"/>`+"\n", x0+m, ly(v), x0+m+pw, ly(v))
			d := maxDone * float64(i) / 4
			fmt.Fprintf(&sb, `<text x="%.0f" y="%d" text-anchor="middle">%.0fk</text>`+"\n", lx(d), m+ph+16, d/1000)
		}
		fmt.Fprintf(&sb, `<text x="%d" y="%d" text-anchor="middle">sagas done</text>`+"\n", x0+m+pw/2, m+ph+34)
		fmt.Fprintf(&sb, `<text x="%d" y="%d" transform="rotate(-90 %d %d)" text-anchor="middle">%s</text>`+"\n", x0+14, m+ph/2, x0+14, m+ph/2, unit)
		for i, l := range lines {
			var pts []string
			for _, x := range r.Windows {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", lx(float64(x.Done)), ly(l.val(x))))
				fmt.Fprintf(&sb, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", lx(float64(x.Done)), ly(l.val(x)), l.color)
			}
			fmt.Fprintf(&sb, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), l.color)
			fmt.Fprintf(&sb, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", x0+m+10, m+14+i*16, l.color, l.name)
		}
	}
	panel(0, "Throughput per window", "sagas/s", []line{{"sagas/s", "#1f77b4", func(x Window) float64 { return x.PerSecond }}})
	panel(w/2, "Database and memory", "MiB", []line{
		{"database", "#ff7f0e", func(x Window) float64 { return x.DBMiB }},
		{"RSS", "#2ca02c", func(x Window) float64 { return x.RSSMiB }},
	})
	sb.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}
