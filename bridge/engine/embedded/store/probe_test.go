package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dapr/go-sdk/workflow"

	"github.com/sagabridge/sagabridge/bridge/engine"
	"github.com/sagabridge/sagabridge/bridge/engine/embedded"
)

var probeDone sync.Map // instance ID -> chan struct{}

func ProbeStep(ctx workflow.ActivityContext) (any, error) { return 1, nil }

func ProbeDone(ctx workflow.ActivityContext) (any, error) {
	var id string
	if err := ctx.GetInput(&id); err != nil {
		return nil, err
	}
	if ch, ok := probeDone.LoadAndDelete(id); ok {
		close(ch.(chan struct{}))
	}
	return nil, nil
}

func ProbeSaga(ctx *workflow.WorkflowContext) (any, error) {
	for i := 0; i < 3; i++ {
		if err := ctx.CallActivity(ProbeStep, workflow.ActivityInput(i)).Await(nil); err != nil {
			return nil, err
		}
	}
	if err := ctx.WaitForExternalEvent("approval", 10*time.Minute).Await(nil); err != nil {
		return nil, err
	}
	return nil, ctx.CallActivity(ProbeDone, workflow.ActivityInput(ctx.InstanceID())).Await(nil)
}

// TestProbeEngine measures the engine alone (no broker): PROBE=n sagas.
func TestProbeEngine(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PROBE"))
	if n == 0 {
		t.Skip("set PROBE=n")
	}
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Config{Embedded: embedded.Config{DBPath: filepath.Join(t.TempDir(), "wf.db"), Parallelism: 128}},
		engine.Registry{Workflows: []workflow.Workflow{ProbeSaga}, Activities: []workflow.Activity{ProbeStep, ProbeDone}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	for _, c := range []int{1, 32, 128} {
		sem := make(chan struct{}, c)
		var wg sync.WaitGroup
		var tStart, tRaise, tWait time.Duration
		t0 := time.Now()
		for i := 0; i < n; i++ {
			tw := time.Now()
			sem <- struct{}{}
			tWait += time.Since(tw)
			id := fmt.Sprintf("p%d-%d", c, i)
			ch := make(chan struct{})
			probeDone.Store(id, ch)
			ts := time.Now()
			if _, err := e.Start(ctx, "ProbeSaga", id, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			tStart += time.Since(ts)
			ts = time.Now()
			if err := e.Raise(ctx, id, "approval", []byte(`true`)); err != nil {
				t.Fatal(err)
			}
			tRaise += time.Since(ts)
			wg.Add(1)
			go func() { defer wg.Done(); <-ch; <-sem }()
		}
		wg.Wait()
		t.Logf("c=%d: %.0f sagas/s; driver: start %v raise %v waiting %v", c, float64(n)/time.Since(t0).Seconds(), tStart/time.Duration(n), tRaise/time.Duration(n), tWait/time.Duration(n))
	}
}

// TestProbeStore measures the store with durabletask's in-process executor
// (no gRPC): PROBE=n sagas.
func TestProbeStore(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PROBE"))
	if n == 0 {
		t.Skip("set PROBE=n")
	}
	path := filepath.Join(t.TempDir(), "wf.db")
	h := startHub(t, path, 128)
	defer h.stop()
	defer func() {
		for _, f := range []string{path, path + "-wal"} {
			if fi, err := os.Stat(f); err == nil {
				t.Logf("%s: %.1f MiB", filepath.Base(f), float64(fi.Size())/(1<<20))
			}
		}
	}()
	ctx := context.Background()
	for _, c := range []int{1, 32, 128} {
		s0 := h.be.Stats()
		sem := make(chan struct{}, c)
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := 0; i < n; i++ {
			sem <- struct{}{}
			id := fmt.Sprintf("s%d-%d", c, i)
			ch := make(chan struct{})
			probeDone.Store(id, ch)
			h.startAndRaise(t, ctx, id)
			wg.Add(1)
			go func() { defer wg.Done(); <-ch; <-sem }()
		}
		wg.Wait()
		s1 := h.be.Stats()
		el := time.Since(t0)
		t.Logf("c=%d: %.0f sagas/s; batches %d writes %d commit %v batch %v (%.0f%% of wall)", c, float64(n)/el.Seconds(),
			s1.Batches-s0.Batches, s1.Writes-s0.Writes, s1.CommitTime-s0.CommitTime, s1.BatchTime-s0.BatchTime,
			100*float64(s1.BatchTime-s0.BatchTime)/float64(el))
	}
}
