package sagatest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/engine/embedded"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/declarative"
	"github.com/sagabridge/sagabridge/sagas/registry"
	"github.com/sagabridge/sagabridge/topics"
)

// Options say what the Env runs.
type Options struct {
	// Sagas are Go sagas, each registered as the workflow of its Name.
	// The Env knows the reply event of each of their commands.
	Sagas []sagas.Saga
	// Workflows are workflow functions by name: Go sagas written as
	// functions, children, anything a saga starts. The Env cannot see
	// into them: their participants say their reply events (Reply.As).
	Workflows map[string]workflow.Workflow
	// Definitions are declarative sagas, registered as a worker registers
	// them (each under its name, pinned to a version by Start's input).
	Definitions *declarative.Definitions
	// Registry registers what a worker's main registers (sagas/registry):
	// a test of the sagas passes the same registry its main builds.
	Registry *registry.Registry
	// Activities are registered beside the sagas' own Publish.
	Activities map[string]workflow.Activity
	// DB is the embedded engine's database file; empty is a new one in
	// t.TempDir(). Give a second Env the first one's file (after its
	// Close) to run a new worker on the same data.
	DB string
	// Engine, when set, runs the worker against another engine (a daprd
	// sidecar) instead of the embedded one. Restarts then replace the
	// worker only, and the clock cannot be moved.
	Engine *engine.Config
}

// Env runs sagas on a real workflow engine, in this process: the embedded
// durabletask hub (package engine/embedded) with its SQLite store, the
// workflow worker and client, and an in-memory broker in place of NATS or
// Kafka. Participants are scripted (OnCommand, Participant): the Env
// raises their replies on the instance as the bridge's raise routes would.
type Env struct {
	t     testing.TB
	opts  Options
	db    string
	clock *clock
	reg   engine.Registry
	pub   *broker
	parts *script

	mu  sync.Mutex
	eng *engine.Engine
	// up is closed when an engine is started again; nil while one runs
	// or after Close.
	up     chan struct{}
	closed bool
	// wg tracks the goroutines that raise replies and restart engines;
	// Close waits for them.
	wg sync.WaitGroup
}

// New starts an Env; t.Cleanup closes it.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	e := &Env{t: t, opts: opts, db: opts.DB, pub: &broker{}}
	if e.db == "" {
		e.db = filepath.Join(t.TempDir(), "workflows.db")
	}
	if opts.Engine == nil {
		e.clock = newClock()
	}
	e.parts = newScript(e)
	e.pub.deliver = e.parts.deliver
	acts, err := sagas.NewActivities(e.pub, sagas.DefaultTopics{})
	if err != nil {
		t.Fatal(err)
	}
	e.reg = engine.Registry{Workflows: map[string]workflow.Workflow{}, Activities: acts.Registered()}
	maps.Copy(e.reg.Activities, opts.Activities)
	var errs []error
	add := func(name string, w workflow.Workflow) {
		if _, dup := e.reg.Workflows[name]; dup {
			errs = append(errs, fmt.Errorf("sagatest: workflow %q is given twice", name))
		}
		e.reg.Workflows[name] = w
	}
	for _, s := range opts.Sagas {
		add(s.Name, func(ctx *workflow.WorkflowContext) (any, error) { return sagas.Run(ctx, s) })
		e.parts.learn(s)
	}
	for name, w := range opts.Registry.Workflows() {
		add(name, w)
	}
	for _, s := range opts.Registry.Sagas() {
		e.parts.learn(s)
	}
	for name, w := range opts.Workflows {
		add(name, w)
	}
	if opts.Definitions != nil {
		for name, w := range opts.Definitions.Workflows() {
			add(name, w)
		}
		for _, k := range opts.Definitions.Keys() {
			name, v, _ := strings.Cut(k, "@")
			version, _ := strconv.Atoi(v)
			if s, ok := opts.Definitions.Saga(name, version); ok {
				e.parts.learn(s)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := e.startEngine(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func (e *Env) startEngine() error {
	var eng *engine.Engine
	var err error
	for attempt := 1; ; attempt++ {
		began := time.Now()
		cfg := engine.Config{
			Kind:     engine.KindEmbedded,
			Embedded: embedded.Config{DBPath: e.db, Parallelism: 16, Clock: e.clock},
		}
		if e.opts.Engine != nil {
			cfg = *e.opts.Engine
		}
		eng, err = engine.New(context.Background(), cfg, e.reg, nil)
		if err == nil {
			break
		}
		// The stopped engine's SQLite handle is never closed by
		// durabletask-go; in one process it can keep the file busy for a
		// moment after Close. A new process would not see it.
		if attempt == 5 || !strings.Contains(err.Error(), "SQLITE_BUSY") {
			return fmt.Errorf("sagatest: start engine: %w", err)
		}
		e.t.Logf("start engine, attempt %d after %s: %v", attempt, time.Since(began), err)
		time.Sleep(200 * time.Millisecond)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		// Closed while a crash restarted the worker: the test is over.
		return eng.Close(context.Background())
	}
	e.eng = eng
	if e.up != nil {
		close(e.up)
		e.up = nil
	}
	return nil
}

// Close stops the engine for good (t.Cleanup calls it), so that another
// Env can open the database. It waits for replies in flight first.
func (e *Env) Close() {
	e.wg.Wait()
	e.mu.Lock()
	eng := e.eng
	e.eng, e.closed = nil, true
	if e.up != nil {
		close(e.up)
		e.up = nil
	}
	e.mu.Unlock()
	if eng != nil {
		if err := eng.Close(context.Background()); err != nil {
			e.t.Logf("close engine: %v", err)
		}
	}
	e.wg.Wait()
}

// Go runs f on a goroutine Close waits for: a participant of the test's
// own that answers later.
func (e *Env) Go(f func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
}

// Engine returns the running engine, waiting while a crash restarts it.
func (e *Env) Engine(ctx context.Context) (*engine.Engine, error) {
	for {
		e.mu.Lock()
		eng, up, closed := e.eng, e.up, e.closed
		e.mu.Unlock()
		if eng != nil {
			return eng, nil
		}
		if closed || up == nil {
			return nil, errors.New("sagatest: engine closed")
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Start starts an instance of workflow with input encoded as JSON.
func (e *Env) Start(workflowName, id string, input any) {
	e.t.Helper()
	raw, err := json.Marshal(input)
	if err != nil {
		e.t.Fatal(err)
	}
	e.StartRaw(workflowName, id, raw)
}

// StartRaw starts an instance with input as it is.
func (e *Env) StartRaw(workflowName, id string, raw []byte) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		eng, err := e.Engine(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		_, err = eng.Start(ctx, workflowName, id, raw)
		if err == nil {
			return
		}
		// A crash (CrashOn) can close the engine under the start when
		// the saga got that far first; a start is idempotent, so it is
		// sent again, as the broker would redeliver it.
		if !errors.Is(err, engine.ErrUnavailable) || ctx.Err() != nil {
			e.t.Fatalf("start %s %s: %v", workflowName, id, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartDefinition starts the declarative saga name at version (0: the
// latest of Options.Definitions), as a route would.
func (e *Env) StartDefinition(name string, version int, id string, input any) {
	e.t.Helper()
	if e.opts.Definitions == nil {
		e.t.Fatalf("start %s: no Options.Definitions", name)
	}
	raw, err := json.Marshal(input)
	if err != nil {
		e.t.Fatal(err)
	}
	st, err := e.opts.Definitions.Start(name, version, raw)
	if err != nil {
		e.t.Fatal(err)
	}
	wrapped, err := st.Encode()
	if err != nil {
		e.t.Fatal(err)
	}
	e.StartRaw(name, id, wrapped)
}

// Raise delivers an event to an instance, retrying while the engine
// restarts or the instance is not there yet, as a broker redelivers until
// the bridge acks. An instance that has finished ignores it.
func (e *Env) Raise(id, event string, payload any) {
	raw, err := json.Marshal(payload)
	if err != nil {
		e.t.Error(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		eng, err := e.Engine(ctx)
		if err != nil {
			return // closed: the test is over
		}
		err = eng.Raise(ctx, id, event, raw, engine.RaiseOptions{ReportFinished: true})
		if err == nil || errors.Is(err, engine.ErrFinished) {
			return
		}
		select {
		case <-ctx.Done():
			e.t.Errorf("raise %s on %s: %v", event, id, err)
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Wait polls until the instance finished and returns its status.
func (e *Env) Wait(id string, within time.Duration) engine.Status {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		eng, err := e.Engine(ctx)
		if err != nil {
			e.t.Fatalf("instance %s: %v", id, err)
		}
		st, err := eng.Get(ctx, id)
		if err == nil && st.Finished() {
			return st
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("instance %s did not finish in %s: last %+v, err %v", id, within, st, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Outcome waits up to 30 s for a saga to finish and returns the outcome
// its workflow returned (the one it published).
func (e *Env) Outcome(id string) topics.Outcome {
	e.t.Helper()
	st := e.Wait(id, 30*time.Second)
	if st.RuntimeStatus != "COMPLETED" {
		e.t.Fatalf("instance %s: %s (%s)", id, st.RuntimeStatus, st.Failure)
	}
	var out topics.Outcome
	if err := json.Unmarshal([]byte(st.Output), &out); err != nil {
		e.t.Fatalf("instance %s output %q: %v", id, st.Output, err)
	}
	return out
}

// Now is the engine's time: the wall clock plus every Advance.
func (e *Env) Now() time.Time {
	if e.clock == nil {
		return time.Now()
	}
	return e.clock.Now()
}

// Advance moves the engine's clock forward: durable timers due within d
// (a step's timeout, a backoff, a Wait's deadline) fire now. Time keeps
// passing on its own as well.
func (e *Env) Advance(d time.Duration) {
	e.t.Helper()
	if e.clock == nil {
		e.t.Fatal("sagatest: Advance needs the embedded engine (Options.Engine is set)")
	}
	e.clock.advance(d)
}

// FireTimer waits (up to 30 s) until the instance waits, with nothing
// left to do but wait (no work queued in the engine, no scripted reply on
// its way), on a durable timer that is not due yet; then it moves the
// clock to when the timer it set last is due (a step's timeout, a
// backoff) and returns how far it moved. A test of a timeout this way
// waits for nothing but the engine's own work.
func (e *Env) FireTimer(id string) time.Duration {
	e.t.Helper()
	if e.clock == nil {
		e.t.Fatal("sagatest: FireTimer needs the embedded engine (Options.Engine is set)")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		eng, err := e.Engine(context.Background())
		if err != nil {
			e.t.Fatalf("instance %s: %v", id, err)
		}
		st := eng.Store()
		if e.parts.inFlight.Load() == 0 && !st.Busy(id) {
			if timers := st.Timers(id); len(timers) > 0 {
				// The last one set is what the saga waits on; earlier
				// ones bounded waits that have ended.
				if d := timers[len(timers)-1].Due.Sub(e.clock.Now()); d > 0 && !st.Busy(id) {
					e.clock.advance(d)
					return d
				}
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("instance %s waited on no timer in 30s", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
