package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/engine/embedded"
)

// BenchmarkEmbeddedRetention runs b.N small sagas (an activity, then the
// outcome's status left as the custom status, as the saga runtime does)
// through the engine on the embedded store with engine.retention's
// completed period at RETENTION_AGE (default 10s), and prints the
// database's size as it goes: it grows for one period, then stays flat.
// For the record (not part of make test):
//
//	go test -run '^$' -bench '^BenchmarkEmbeddedRetention$' -benchtime 200000x ./engine
func BenchmarkEmbeddedRetention(b *testing.B) {
	age := 10 * time.Second
	if s := os.Getenv("RETENTION_AGE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatal(err)
		}
		age = d
	}
	path := filepath.Join(b.TempDir(), "wf.db")
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Config{
		Kind:      engine.KindEmbedded,
		Embedded:  embedded.Config{DBPath: path},
		Retention: engine.Retention{Completed: age, Compensated: age, Failed: age},
	}, engine.Registry{
		Workflows: map[string]workflow.Workflow{"Small": func(ctx *workflow.WorkflowContext) (any, error) {
			if err := ctx.CallActivity("Step").Await(nil); err != nil {
				return nil, err
			}
			ctx.SetCustomStatus(`{"status":"completed"}`)
			return nil, nil
		}},
		Activities: map[string]workflow.Activity{"Step": func(workflow.ActivityContext) (any, error) { return nil, nil }},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(ctx)
	size := func(p string) float64 {
		fi, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return float64(fi.Size()) / (1 << 20)
	}
	var next atomic.Int64
	var finished atomic.Int64
	step := int64(max(b.N/10, 1))
	t0 := time.Now()
	var peak float64
	var mu sync.Mutex
	report := func(done int64) {
		mu.Lock()
		defer mu.Unlock()
		db := size(path)
		peak = max(peak, db)
		fmt.Printf("%7d sagas after %6.1fs: database %6.1f MiB, WAL %5.1f MiB\n", done, time.Since(t0).Seconds(), db, size(path+"-wal"))
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				id := fmt.Sprintf("s-%d", n)
				if _, err := e.Start(ctx, "Small", id, nil); err != nil {
					b.Error(err)
					return
				}
				if _, err := e.Client().WaitForWorkflowCompletion(ctx, id); err != nil {
					b.Error(err)
					return
				}
				if d := finished.Add(1); d%step == 0 {
					report(d)
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(peak, "peak-db-MiB")
	b.ReportMetric(size(path), "final-db-MiB")
}
