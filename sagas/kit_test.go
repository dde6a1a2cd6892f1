package sagas_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/engine/embedded"
	"github.com/sagabridge/sagabridge/internal/daprtest"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/topics"
)

// kit runs sagas on a real engine (the embedded hub in-process, or a daprd
// sidecar) through the workflow worker and client, with an in-memory
// publisher in place of the broker and participants that answer commands
// by raising events on the engine, as the bridge's raise routes would.
type kit struct {
	t     *testing.T
	db    string
	dapr  *daprtest.Sidecar
	reg   engine.Registry
	pub   *memPublisher
	parts *participants

	mu  sync.Mutex
	eng *engine.Engine
	// restarting is closed while no engine is up; raises wait on it.
	up chan struct{}
}

type kitOptions struct {
	workflows  map[string]workflow.Workflow
	activities map[string]workflow.Activity
	// db reuses a database file (a second worker on the same data).
	db string
	// dapr, when set, runs the worker against this daprd sidecar instead
	// of the embedded engine; restarts then replace the worker only (the
	// app dies, daprd and its Redis state stay).
	dapr *daprtest.Sidecar
}

func newKit(t *testing.T, opts kitOptions) *kit {
	t.Helper()
	k := &kit{t: t, db: opts.db, dapr: opts.dapr, pub: newMemPublisher()}
	if k.db == "" {
		k.db = filepath.Join(t.TempDir(), "wf.db")
	}
	k.parts = newParticipants(k)
	k.pub.onPublish = k.parts.handle
	acts, err := sagas.NewActivities(k.pub, sagas.DefaultTopics{})
	if err != nil {
		t.Fatal(err)
	}
	k.reg = engine.Registry{Workflows: opts.workflows, Activities: acts.Registered()}
	maps.Copy(k.reg.Activities, opts.activities)
	k.start()
	t.Cleanup(k.close)
	return k
}

func (k *kit) start() {
	k.t.Helper()
	if err := k.startEngine(); err != nil {
		k.t.Fatal(err)
	}
}

func (k *kit) startEngine() error {
	var e *engine.Engine
	var err error
	for attempt := 1; ; attempt++ {
		began := time.Now()
		cfg := engine.Config{
			Kind:     engine.KindEmbedded,
			Embedded: embedded.Config{DBPath: k.db, Parallelism: 16},
		}
		if k.dapr != nil {
			cfg = engine.Config{Kind: engine.KindDapr, Dapr: engine.DaprConfig{GRPCEndpoint: k.dapr.GRPCAddr()}}
		}
		e, err = engine.New(context.Background(), cfg, k.reg, nil)
		if err == nil {
			break
		}
		// The stopped engine's SQLite handle is never closed by
		// durabletask-go; in one process it can keep the file busy for a
		// moment after Close. A new process would not see it.
		if attempt == 5 || !strings.Contains(err.Error(), "SQLITE_BUSY") {
			return fmt.Errorf("start engine: %w", err)
		}
		k.t.Logf("start engine, attempt %d after %s: %v", attempt, time.Since(began), err)
		time.Sleep(200 * time.Millisecond)
	}
	k.mu.Lock()
	k.eng = e
	if k.up != nil {
		close(k.up)
		k.up = nil
	}
	k.mu.Unlock()
	return nil
}

// alsoOnPublish adds a broker subscriber (more participants).
func (k *kit) alsoOnPublish(f func(topic string, ev topics.CloudEvent)) {
	k.pub.mu.Lock()
	defer k.pub.mu.Unlock()
	next := k.pub.onPublish
	k.pub.onPublish = func(topic string, ev topics.CloudEvent) {
		next(topic, ev)
		f(topic, ev)
	}
}

// close stops the engine for good, so another kit can open the database.
func (k *kit) close() {
	k.parts.wg.Wait()
	k.mu.Lock()
	e := k.eng
	k.eng = nil
	k.mu.Unlock()
	if e != nil {
		if err := e.Close(context.Background()); err != nil {
			k.t.Logf("close engine: %v", err)
		}
	}
	k.parts.wg.Wait()
}

// crashMode is how a test worker dies at a publish.
type crashMode int

const (
	// crashNow closes the engine while the Publish activity that just
	// handed the event to the broker is still running: its result is lost
	// with the worker, and the new worker runs the activity again.
	crashNow crashMode = iota
	// crashStop stops the worker right after the event reached the broker:
	// raises and polls wait from that moment, and once the old engine has
	// recorded the step it is closed and a new one started on the same
	// database.
	crashStop
	// crashLostAck also makes the Publish activity fail although the broker
	// stored the event, as when a worker dies before recording the
	// activity's result: the saga sends the same event again later.
	crashLostAck
)

// crashOn restarts the engine once, when match first sees an event being
// published.
func (k *kit) crashOn(mode crashMode, match func(topic string, ev topics.CloudEvent) bool) {
	var once sync.Once
	k.pub.mu.Lock()
	defer k.pub.mu.Unlock()
	k.pub.after = func(topic string, ev topics.CloudEvent) error {
		if !match(topic, ev) {
			return nil
		}
		crashed := false
		once.Do(func() {
			crashed = true
			old := k.suspend()
			k.parts.wg.Add(1)
			go func() {
				defer k.parts.wg.Done()
				if mode != crashNow {
					time.Sleep(250 * time.Millisecond) // the old worker records the step
				}
				k.resume(old)
			}()
		})
		if crashed && mode == crashLostAck {
			return errors.New("worker died before recording the publish")
		}
		return nil
	}
}

// suspend takes the engine away from raises and polls, which wait for
// resume.
func (k *kit) suspend() *engine.Engine {
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.eng
	k.eng = nil
	k.up = make(chan struct{})
	return e
}

// resume closes the old engine and starts a new one on the same database.
func (k *kit) resume(old *engine.Engine) {
	if old != nil {
		if err := old.Close(context.Background()); err != nil {
			k.t.Logf("close engine: %v", err)
		}
	}
	if err := k.startEngine(); err != nil {
		k.t.Error(err)
	}
}

// engine returns the running engine, waiting for a restart to finish.
func (k *kit) engine(ctx context.Context) (*engine.Engine, error) {
	for {
		k.mu.Lock()
		e, up := k.eng, k.up
		k.mu.Unlock()
		if e != nil {
			return e, nil
		}
		if up == nil {
			return nil, errors.New("engine closed")
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (k *kit) startSaga(workflowName, id string, input any) {
	k.t.Helper()
	raw, err := json.Marshal(input)
	if err != nil {
		k.t.Fatal(err)
	}
	k.startRaw(workflowName, id, raw)
}

func (k *kit) startRaw(workflowName, id string, raw []byte) {
	k.t.Helper()
	e, err := k.engine(context.Background())
	if err != nil {
		k.t.Fatal(err)
	}
	if _, err := e.Start(context.Background(), workflowName, id, raw); err != nil {
		k.t.Fatalf("start %s %s: %v", workflowName, id, err)
	}
}

// raise delivers an event, retrying while the engine restarts, as a
// broker redelivers until the bridge acks.
func (k *kit) raise(id, event string, payload any) {
	raw, err := json.Marshal(payload)
	if err != nil {
		k.t.Error(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		e, err := k.engine(ctx)
		if err != nil {
			return // the test is over
		}
		err = e.Raise(ctx, id, event, raw, engine.RaiseOptions{ReportFinished: true})
		if err == nil || errors.Is(err, engine.ErrFinished) {
			return
		}
		select {
		case <-ctx.Done():
			k.t.Errorf("raise %s on %s: %v", event, id, err)
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// wait polls until the instance finished and returns its status.
func (k *kit) wait(id string, within time.Duration) engine.Status {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		e, err := k.engine(ctx)
		if err != nil {
			k.t.Fatalf("instance %s: %v", id, err)
		}
		st, err := e.Get(ctx, id)
		if err == nil && st.Finished() {
			return st
		}
		select {
		case <-ctx.Done():
			k.t.Fatalf("instance %s did not finish in %s: last %+v, err %v", id, within, st, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// outcome waits for a saga and decodes the outcome it returned.
func (k *kit) outcome(id string) topics.Outcome {
	k.t.Helper()
	st := k.wait(id, 30*time.Second)
	if st.RuntimeStatus != "COMPLETED" {
		k.t.Fatalf("instance %s: %s (%s)", id, st.RuntimeStatus, st.Failure)
	}
	var out topics.Outcome
	if err := json.Unmarshal([]byte(st.Output), &out); err != nil {
		k.t.Fatalf("instance %s output %q: %v", id, st.Output, err)
	}
	return out
}

// memPublisher is the broker: it records every event and hands it to the
// participants.
type memPublisher struct {
	mu        sync.Mutex
	events    []published
	onPublish func(topic string, ev topics.CloudEvent)
	// fail, when set, refuses a publish (a broker outage).
	fail func(topic string, ev topics.CloudEvent) error
	// after runs once the event is stored and delivered; its error is
	// what the activity reports.
	after func(topic string, ev topics.CloudEvent) error
	// progressFailures counts ProgressFailed calls.
	progressFailures int
	// options are the MessageOptions of shaped commands, by event id.
	options map[string]sagas.MessageOptions
}

// PublishMessage records how a shaped command is to be sent, then
// publishes it as Publish does.
func (p *memPublisher) PublishMessage(ctx context.Context, topic, key string, ev topics.CloudEvent, o sagas.MessageOptions) error {
	p.mu.Lock()
	if p.options == nil {
		p.options = map[string]sagas.MessageOptions{}
	}
	p.options[ev.ID] = o
	p.mu.Unlock()
	return p.Publish(ctx, topic, key, ev)
}

func (p *memPublisher) optionsOf(id string) (sagas.MessageOptions, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, ok := p.options[id]
	return o, ok
}

// ProgressFailed makes memPublisher a sagas.ProgressFailureObserver.
func (p *memPublisher) ProgressFailed(string, topics.CloudEvent, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.progressFailures++
}

type published struct {
	topic string
	ev    topics.CloudEvent
}

func newMemPublisher() *memPublisher { return &memPublisher{} }

func (p *memPublisher) Publish(_ context.Context, topic, _ string, ev topics.CloudEvent) error {
	p.mu.Lock()
	fail := p.fail
	p.mu.Unlock()
	if fail != nil {
		if err := fail(topic, ev); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.events = append(p.events, published{topic, ev})
	hook, after := p.onPublish, p.after
	p.mu.Unlock()
	if hook != nil {
		hook(topic, ev)
	}
	if after != nil {
		return after(topic, ev)
	}
	return nil
}

// on lists the events published to a topic (repeats included).
func (p *memPublisher) on(topic string) []topics.CloudEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []topics.CloudEvent
	for _, e := range p.events {
		if e.topic == topic {
			out = append(out, e.ev)
		}
	}
	return out
}

// distinct drops repeated event ids, keeping first occurrences in order.
func distinct(evs []topics.CloudEvent) []topics.CloudEvent {
	seen := map[string]bool{}
	var out []topics.CloudEvent
	for _, e := range evs {
		if !seen[e.ID] {
			seen[e.ID] = true
			out = append(out, e)
		}
	}
	return out
}

// outcomesOf lists the distinct outcome events of an instance.
func (p *memPublisher) outcomesOf(id string) []topics.Outcome {
	var out []topics.Outcome
	for _, e := range distinct(p.on(topics.Outcomes)) {
		if e.Subject != id {
			continue
		}
		var o topics.Outcome
		if err := json.Unmarshal(e.Data, &o); err == nil {
			out = append(out, o)
		}
	}
	return out
}

// commandsOf lists the distinct commands sent for an instance, in order,
// as "type#attempt".
func (p *memPublisher) commandsOf(id string) []string {
	var out []string
	for _, e := range distinct(p.on(cmdTopic)) {
		var c topics.Command
		if json.Unmarshal(e.Data, &c) == nil && c.InstanceID == id {
			out = append(out, e.Type+"#"+strconv.Itoa(c.Attempt))
		}
	}
	return out
}

func eq[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
