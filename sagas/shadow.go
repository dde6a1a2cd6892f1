package sagas

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/topics"
)

// defaultObserveTimeout bounds the wait for a legacy step whose saga step
// has no timeout of its own.
const defaultObserveTimeout = 5 * time.Minute

// runShadow runs s in shadow mode: it sends no command, calls no activity
// and runs no compensation. It follows the legacy flow through the
// observation events raised on the instance, records what the saga would
// have done, and publishes each divergence and a would-be outcome to the
// shadow topics, never to the outcome topic.
//
// Shadow follows the steps in order (members of a parallel group in member
// order, without requiring that order among them); Decide branches are not
// evaluated, because the legacy flow's events say which steps happen.
func runShadow(ctx *workflow.WorkflowContext, s Saga, input json.RawMessage, a *Assignment) (topics.Outcome, error) {
	if a.Observe == nil || a.Observe.Event == "" {
		return topics.Outcome{}, fmt.Errorf("saga %s: shadow mode without an observation event", s.Name)
	}
	r := &run{ctx: ctx, saga: s, id: ctx.ID(), trace: traceOf(ctx), hist: newHistory(s.MaxHistoryBytes, len(input))}
	out := topics.Outcome{Saga: s.Name, InstanceID: r.id, StartedAt: ctx.CurrentTimeUTC(), TraceParent: r.trace.TraceParent}
	sh := newShadow(s, a.Observe, workflowFeed{ctx: ctx, event: a.Observe.Event}, ctx.CurrentTimeUTC)
	sh.follow(&out)
	out.FinishedAt = ctx.CurrentTimeUTC()
	for k := range sh.divergences {
		sh.divergences[k].Saga, sh.divergences[k].InstanceID = s.Name, r.id
	}
	m := a.migration()
	m.Divergences = sh.divergences
	out.Migration = m

	divTopic := orDefault(a.Divergences, topics.Divergences)
	for _, d := range sh.divergences {
		ev, err := topics.NewCloudEvent(topics.DivergenceID(r.id, d.Kind, d.Step), topics.Source,
			topics.DivergenceType, r.id, out.FinishedAt, d)
		if err != nil {
			return topics.Outcome{}, err
		}
		if err := r.publish(divTopic, ev); err != nil {
			return topics.Outcome{}, fmt.Errorf("saga %s: publish divergence: %w", s.Name, err)
		}
	}
	ev, err := topics.NewCloudEvent(topics.OutcomeID(r.id, out.Status), topics.Source,
		topics.OutcomeType(out.Status), r.id, out.FinishedAt, out)
	if err != nil {
		return topics.Outcome{}, err
	}
	if err := r.publish(orDefault(a.ShadowOutcomes, topics.ShadowOutcomes), ev); err != nil {
		return topics.Outcome{}, fmt.Errorf("saga %s: publish shadow outcome: %w", s.Name, err)
	}
	return out, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// legacyFeed hands the shadow the next observation, or false when none came
// within the timeout.
type legacyFeed interface {
	next(timeout time.Duration) (Observation, bool)
}

// workflowFeed reads observations from the instance's external events; the
// engine delivers events of one name in the order they were raised.
type workflowFeed struct {
	ctx   *workflow.WorkflowContext
	event string
}

func (f workflowFeed) next(timeout time.Duration) (Observation, bool) {
	var o Observation
	if err := f.ctx.WaitForExternalEvent(f.event, timeout).Await(&o); err != nil {
		return Observation{}, false
	}
	return o, true
}

// role is what a legacy event says about a step.
type role int

const (
	roleDone role = iota
	roleFailed
	roleUndone
)

type legacyRef struct {
	step int // index in shadow.steps
	role role
}

// seen is an observation with its arrival order.
type seen struct {
	Observation
	seq int
	at  time.Time // zero when the event had no (readable) time
	ref legacyRef
}

// before reports whether the legacy flow emitted a before b: by the events'
// own times when both have one, else by arrival.
func before(a, b seen) bool {
	if !a.at.IsZero() && !b.at.IsZero() {
		return a.at.Before(b.at)
	}
	return a.seq < b.seq
}

// shadow compares the legacy flow with the saga's plan. It is plain logic
// over a feed, deterministic given the feed, so the workflow replays it.
type shadow struct {
	steps []*Step // top-level steps and parallel members, in order
	obs   *Observe
	types map[string]legacyRef
	feed  legacyFeed
	now   func() time.Time

	seq    int
	buffer []seen // observed and not yet matched, in arrival order
	// flagged keeps one divergence per kind and step.
	flagged     map[string]bool
	divergences []topics.Divergence
}

func newShadow(s Saga, obs *Observe, feed legacyFeed, now func() time.Time) *shadow {
	sh := &shadow{obs: obs, feed: feed, now: now, types: map[string]legacyRef{}, flagged: map[string]bool{}}
	for i := range s.Steps {
		st := &s.Steps[i]
		if len(st.Parallel) > 0 {
			for k := range st.Parallel {
				sh.steps = append(sh.steps, &st.Parallel[k])
			}
			continue
		}
		sh.steps = append(sh.steps, st)
	}
	for i, st := range sh.steps {
		m := obs.Steps[st.Name]
		// The first mapping of a type wins; config validation rejects a
		// type mapped twice.
		for _, g := range []struct {
			types []string
			role  role
		}{{m.Done, roleDone}, {m.Failed, roleFailed}, {m.Undone, roleUndone}} {
			for _, t := range g.types {
				if _, dup := sh.types[t]; !dup {
					sh.types[t] = legacyRef{step: i, role: g.role}
				}
			}
		}
	}
	return sh
}

func (sh *shadow) diverge(kind, step, format string, args ...any) {
	if sh.flagged[kind+"\x00"+step] {
		return
	}
	sh.flagged[kind+"\x00"+step] = true
	sh.divergences = append(sh.divergences, topics.Divergence{Kind: kind, Step: step, Detail: fmt.Sprintf(format, args...)})
}

func (sh *shadow) timeout(st *Step) time.Duration {
	switch {
	case sh.obs.Timeout > 0:
		return sh.obs.Timeout
	case st.Timeout > 0:
		return st.Timeout * time.Duration(st.attempts())
	}
	return defaultObserveTimeout
}

// await returns the first observation, buffered or new, that want accepts;
// observations it does not accept are buffered. false: none within timeout.
func (sh *shadow) await(want func(legacyRef) bool, timeout time.Duration) (seen, bool) {
	for k, o := range sh.buffer {
		if want(o.ref) {
			sh.buffer = append(sh.buffer[:k:k], sh.buffer[k+1:]...)
			return o, true
		}
	}
	deadline := sh.now().Add(timeout)
	for {
		left := deadline.Sub(sh.now())
		if left <= 0 {
			return seen{}, false
		}
		o, ok := sh.feed.next(left)
		if !ok {
			return seen{}, false
		}
		ref, known := sh.types[o.Type]
		if !known {
			continue // an event of the legacy flow the saga has no step for
		}
		sh.seq++
		s := seen{Observation: o, seq: sh.seq, ref: ref}
		s.at, _ = time.Parse(time.RFC3339Nano, o.Time)
		if want(ref) {
			return s, true
		}
		sh.buffer = append(sh.buffer, s)
	}
}

// laterForward names a step after i that the legacy flow already did.
func (sh *shadow) laterForward(i int) string {
	for _, o := range sh.buffer {
		if o.ref.step > i && o.ref.role != roleUndone {
			return sh.steps[o.ref.step].Name
		}
	}
	return ""
}

// follow walks the steps as the saga would and fills out.
func (sh *shadow) follow(out *topics.Outcome) {
	type kept struct{ step, idx int }
	var done []kept     // steps with a compensation, in the order they finished
	var resolved []seen // the legacy events of the steps so far
	failure := ""
	stuck := false
	for i, st := range sh.steps {
		if _, mapped := sh.obs.Steps[st.Name]; !mapped {
			out.Steps = append(out.Steps, topics.StepResult{Name: st.Name, Status: topics.StepDone, Error: "not observed: no legacy events mapped to this step"})
			continue
		}
		o, ok := sh.await(func(r legacyRef) bool { return r.step == i && r.role != roleUndone }, sh.timeout(st))
		if !ok {
			if later := sh.laterForward(i); later != "" {
				sh.diverge(topics.DivergenceMissingStep, st.Name, "the legacy flow went on to %s without %s", later, st.Name)
				out.Steps = append(out.Steps, topics.StepResult{Name: st.Name, Status: topics.StepMissing})
				continue
			}
			sh.diverge(topics.DivergenceStuck, st.Name, "no legacy event for step %s within %s", st.Name, sh.timeout(st))
			out.Steps = append(out.Steps, topics.StepResult{Name: st.Name, Status: topics.StepTimedOut, Error: "legacy flow stuck"})
			failure, stuck = fmt.Sprintf("step %s timed out: the legacy flow showed no progress", st.Name), true
			break
		}
		for _, p := range resolved {
			if before(o, p) {
				sh.diverge(topics.DivergenceOutOfOrder, st.Name, "the legacy flow performed %s (%s) before %s (%s)", st.Name, o.Type, sh.steps[p.ref.step].Name, p.Type)
			}
		}
		resolved = append(resolved, o)
		for _, b := range sh.buffer {
			if b.ref.step > i && b.ref.role != roleUndone && before(b, o) {
				later := sh.steps[b.ref.step].Name
				sh.diverge(topics.DivergenceOutOfOrder, later, "the legacy flow performed %s (%s) before %s (%s)", later, b.Type, st.Name, o.Type)
			}
		}
		if o.ref.role == roleFailed {
			out.Steps = append(out.Steps, topics.StepResult{Name: st.Name, Status: topics.StepFailed, Error: "legacy: " + o.Type})
			failure = fmt.Sprintf("step %s failed: legacy: %s", st.Name, o.Type)
			break
		}
		out.Steps = append(out.Steps, topics.StepResult{Name: st.Name, Status: topics.StepDone})
		if st.Compensation != nil {
			done = append(done, kept{step: i, idx: len(out.Steps) - 1})
		}
	}

	out.Status = topics.StatusCompleted
	undone := map[int]bool{}
	if failure != "" {
		out.Status, out.Error = topics.StatusCompensated, failure
		if !stuck {
			// The saga would undo the done steps in reverse; the legacy flow
			// must have undone the same ones.
			for k := len(done) - 1; k >= 0; k-- {
				d := done[k]
				st := sh.steps[d.step]
				res := &out.Steps[d.idx]
				if len(sh.obs.Steps[st.Name].Undone) == 0 {
					res.Error = "compensation not observed: no legacy events mapped to undoing it"
					continue
				}
				o, ok := sh.await(func(r legacyRef) bool { return r.step == d.step && r.role == roleUndone }, sh.timeout(st))
				if !ok {
					sh.diverge(topics.DivergenceCompensationMissing, st.Name,
						"the saga would undo %s; the legacy flow did not within %s", st.Name, sh.timeout(st))
					res.Status = topics.StepCompensationFailed
					res.Error = "legacy flow did not undo it"
					continue
				}
				for _, b := range sh.buffer {
					if b.ref.role == roleUndone && b.ref.step < d.step && before(b, o) {
						earlier := sh.steps[b.ref.step].Name
						sh.diverge(topics.DivergenceOutOfOrder, earlier, "the legacy flow undid %s before %s; the saga undoes in reverse order", earlier, st.Name)
					}
				}
				undone[d.step] = true
				res.Status = topics.StepCompensated
				out.Compensated = append(out.Compensated, st.Name)
			}
		}
	}
	for _, b := range sh.buffer {
		if b.ref.role == roleUndone && !undone[b.ref.step] {
			name := sh.steps[b.ref.step].Name
			sh.diverge(topics.DivergenceUnexpectedCompensation, name, "the legacy flow undid %s (%s); the saga would have kept it", name, b.Type)
		}
	}
}
