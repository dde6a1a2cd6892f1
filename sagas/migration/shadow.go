package migration

import (
	"fmt"
	"time"

	"github.com/sagabridge/sagabridge/topics"
)

// defaultObserveTimeout bounds the wait for a legacy step whose saga step
// has no timeout of its own.
const defaultObserveTimeout = 5 * time.Minute

// Step is a saga step as the comparison sees it. The saga runtime lists
// its top-level steps and the members of its parallel groups, in the
// order it runs them.
type Step struct {
	Name string
	// Timeout is the time the saga would give the step (its timeout
	// times its attempts); zero: none.
	Timeout time.Duration
	// Undoable says the step has a compensation.
	Undoable bool
}

// Feed hands the comparison the next observation, or false when none came
// within the timeout. The saga runtime reads the instance's external
// events; a test plays a script.
type Feed interface {
	Next(timeout time.Duration) (Observation, bool)
}

// role is what a legacy event says about a step.
type role int

const (
	roleDone role = iota
	roleFailed
	roleUndone
)

type legacyRef struct {
	step int // index in Shadow.steps
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

// Shadow compares the legacy flow with the saga's plan: it follows the
// steps in order (members of a parallel group in member order, without
// requiring that order among them) and does not evaluate Decide branches,
// because the legacy flow's events say which steps happen. It is plain
// logic over a feed, deterministic given the feed, so a workflow replays
// it.
type Shadow struct {
	steps []Step
	obs   *Observe
	types map[string]legacyRef
	feed  Feed
	now   func() time.Time

	seq    int
	buffer []seen // observed and not yet matched, in arrival order
	// flagged keeps one divergence per kind and step.
	flagged     map[string]bool
	divergences []topics.Divergence
}

// NewShadow prepares the comparison of steps with the legacy flow that obs
// describes; now is the workflow's clock.
func NewShadow(steps []Step, obs *Observe, feed Feed, now func() time.Time) *Shadow {
	sh := &Shadow{steps: steps, obs: obs, feed: feed, now: now, types: map[string]legacyRef{}, flagged: map[string]bool{}}
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

func (sh *Shadow) diverge(kind, step, format string, args ...any) {
	if sh.flagged[kind+"\x00"+step] {
		return
	}
	sh.flagged[kind+"\x00"+step] = true
	sh.divergences = append(sh.divergences, topics.Divergence{Kind: kind, Step: step, Detail: fmt.Sprintf(format, args...)})
}

func (sh *Shadow) timeout(st Step) time.Duration {
	switch {
	case sh.obs.Timeout > 0:
		return sh.obs.Timeout
	case st.Timeout > 0:
		return st.Timeout
	}
	return defaultObserveTimeout
}

// await returns the first observation, buffered or new, that want accepts;
// observations it does not accept are buffered. false: none within timeout.
func (sh *Shadow) await(want func(legacyRef) bool, timeout time.Duration) (seen, bool) {
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
		o, ok := sh.feed.Next(left)
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
func (sh *Shadow) laterForward(i int) string {
	for _, o := range sh.buffer {
		if o.ref.step > i && o.ref.role != roleUndone {
			return sh.steps[o.ref.step].Name
		}
	}
	return ""
}

// kept is a done step with a compensation: its index in steps and in the
// outcome's steps.
type kept struct{ step, idx int }

// Follow walks the steps as the saga would, fills out's steps, status,
// error and compensations, and returns the divergences found.
func (sh *Shadow) Follow(out *topics.Outcome) []topics.Divergence {
	done, failure, stuck := sh.forward(out)
	out.Status = topics.StatusCompleted
	undone := map[int]bool{}
	if failure != "" {
		out.Status, out.Error = topics.StatusCompensated, failure
		if !stuck {
			undone = sh.backward(out, done)
		}
	}
	for _, b := range sh.buffer {
		if b.ref.role == roleUndone && !undone[b.ref.step] {
			name := sh.steps[b.ref.step].Name
			sh.diverge(topics.DivergenceUnexpectedCompensation, name, "the legacy flow undid %s (%s); the saga would have kept it", name, b.Type)
		}
	}
	return sh.divergences
}

// forward follows the steps until the legacy flow fails one or shows no
// progress. It returns the done steps with a compensation, in the order
// they finished, and why the saga would stop ("" when it would not).
func (sh *Shadow) forward(out *topics.Outcome) (done []kept, failure string, stuck bool) {
	var resolved []seen // the legacy events of the steps so far
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
			return done, fmt.Sprintf("step %s timed out: the legacy flow showed no progress", st.Name), true
		}
		sh.checkOrder(i, o, resolved)
		resolved = append(resolved, o)
		if o.ref.role == roleFailed {
			out.Steps = append(out.Steps, topics.StepResult{Name: st.Name, Status: topics.StepFailed, Error: "legacy: " + o.Type})
			return done, fmt.Sprintf("step %s failed: legacy: %s", st.Name, o.Type), false
		}
		out.Steps = append(out.Steps, topics.StepResult{Name: st.Name, Status: topics.StepDone})
		if st.Undoable {
			done = append(done, kept{step: i, idx: len(out.Steps) - 1})
		}
	}
	return done, "", false
}

// checkOrder flags step i's event o when the legacy flow performed it
// before a step the saga runs earlier, or a later step before it.
func (sh *Shadow) checkOrder(i int, o seen, resolved []seen) {
	st := sh.steps[i]
	for _, p := range resolved {
		if before(o, p) {
			sh.diverge(topics.DivergenceOutOfOrder, st.Name, "the legacy flow performed %s (%s) before %s (%s)", st.Name, o.Type, sh.steps[p.ref.step].Name, p.Type)
		}
	}
	for _, b := range sh.buffer {
		if b.ref.step > i && b.ref.role != roleUndone && before(b, o) {
			later := sh.steps[b.ref.step].Name
			sh.diverge(topics.DivergenceOutOfOrder, later, "the legacy flow performed %s (%s) before %s (%s)", later, b.Type, st.Name, o.Type)
		}
	}
}

// backward checks that the legacy flow undid the done steps the saga
// would undo, in reverse order; it returns the steps it saw undone.
func (sh *Shadow) backward(out *topics.Outcome, done []kept) map[int]bool {
	undone := map[int]bool{}
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
	return undone
}
