package sagas

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/topics"
)

// Run executes saga s in a workflow. The workflow's input is the data of
// the event that started it, or a Start envelope around it; commands carry
// the data as their payload unless a step's Input says otherwise.
//
// Run returns the outcome it published (a topics.Outcome). It returns an
// error only when the saga is invalid or the outcome itself could not be
// published after all retries.
func Run(ctx *workflow.WorkflowContext, s Saga) (any, error) {
	st, err := startOf(ctx)
	if err != nil {
		return nil, fmt.Errorf("saga %s: decode input: %w", s.Name, err)
	}
	out, err := RunStart(ctx, s, st)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RunStart is Run with the start already read, for an orchestrator that
// reads it to choose the saga (a declarative saga picks its pinned
// version). An instance started under migration runs in its assigned
// mode.
func RunStart(ctx *workflow.WorkflowContext, s Saga, st Start) (topics.Outcome, error) {
	if err := s.Validate(); err != nil {
		return topics.Outcome{}, err
	}
	if a := st.Migration; a != nil && a.Mode == topics.ModeShadow {
		return runShadow(ctx, s, st)
	}
	r := newRun(ctx, s, st)
	r.state = &State{InstanceID: r.id, Saga: s.Name, Input: st.Input, Results: map[string]json.RawMessage{}}
	if st.Migration != nil {
		r.out.Migration = st.Migration.Outcome()
	}

	r.forward()
	r.out.Status = topics.StatusCompleted
	if r.failure != "" {
		r.out.Error = r.failure
		r.out.Status = topics.StatusCompensated
		r.hist.phase = phaseBackward
		r.backward()
	}
	if len(r.childNotUndone) > 0 {
		r.out.Status = topics.StatusFailed
		r.out.NotUndone = append(r.out.NotUndone, r.childNotUndone...)
	}
	r.out.FinishedAt = ctx.CurrentTimeUTC()
	r.hist.phase = phaseOutcome
	if err := r.publishOutcome(s.outcomeTopic(), r.out); err != nil {
		return topics.Outcome{}, err
	}
	r.finalStatus()
	return r.out, nil
}

// publishOutcome sends the outcome event to topic ("" : the worker's).
func (r *run) publishOutcome(topic string, out topics.Outcome) error {
	ev, err := topics.NewCloudEvent(topics.OutcomeID(r.id, out.Status), topics.Source,
		topics.OutcomeType(out.Status), r.id, out.FinishedAt, out)
	if err != nil {
		return err
	}
	if err := r.publish(topic, ev); err != nil {
		return fmt.Errorf("saga %s: publish outcome: %w", r.saga.Name, err)
	}
	return nil
}

// forward runs the steps in order, following their decisions.
func (r *run) forward() {
	steps := r.saga.Steps
	for i := 0; i < len(steps); {
		st := &steps[i]
		d := r.step(st)
		switch d.kind {
		case decideNext:
			i++
		case decideComplete:
			return
		case decideGoto:
			j := laterStep(steps, i, d.target)
			if j < 0 {
				r.failure = fmt.Sprintf("step %s: goto %s: no such later step", st.Name, d.target)
				return
			}
			i = j
		default:
			r.failure = d.reason
			return
		}
	}
}

func laterStep(steps []Step, i int, name string) int {
	for j := i + 1; j < len(steps); j++ {
		if steps[j].Name == name {
			return j
		}
	}
	return -1
}

// step runs one top-level step and says what comes next.
func (r *run) step(st *Step) Decision {
	switch st.Kind() {
	case KindBranch:
		r.record(st, verdict{ok: true})
		return r.decide(st)
	case KindParallel:
		members := make([]*member, len(st.Parallel))
		for k := range st.Parallel {
			members[k] = &member{st: &st.Parallel[k]}
		}
		r.runMembers(st, members)
		var failed []string
		for _, m := range members {
			r.record(m.st, m.v)
			if !m.v.ok {
				failed = append(failed, m.st.Name+" "+m.v.describe())
			}
		}
		if len(failed) > 0 {
			return Fail(fmt.Sprintf("step %s failed: %s", st.Name, strings.Join(failed, "; ")))
		}
		return r.decide(st)
	default:
		m := &member{st: st}
		r.runMembers(st, []*member{m})
		r.record(st, m.v)
		switch {
		case m.v.ok:
			return r.decide(st)
		case st.Wait != nil && m.v.timedOut && st.Wait.OnTimeout.kind != decideFail:
			return st.Wait.OnTimeout
		}
		msg := "step " + st.Name + " " + m.v.describe()
		if st.Wait != nil && st.Wait.OnTimeout.reason != "" {
			msg += " (" + st.Wait.OnTimeout.reason + ")"
		}
		return Fail(msg)
	}
}

// record lists a finished step in the outcome, keeps its result and, when
// its effect may exist, remembers it for compensation.
func (r *run) record(st *Step, v verdict) {
	res := topics.StepResult{Name: st.Name, Status: topics.StepDone}
	if !v.ok {
		res.Status, res.Error = v.status, v.err
	}
	r.out.Steps = append(r.out.Steps, res)
	if v.ok {
		r.state.Results[st.Name] = v.data
	}
	if (v.ok || v.effect) && st.Compensation != nil {
		r.done = append(r.done, doneStep{st: st, idx: len(r.out.Steps) - 1})
	}
	r.childNotUndone = append(r.childNotUndone, v.notUndone...)
}

// decide asks a step's Decide function what comes next.
func (r *run) decide(st *Step) Decision {
	if st.Decide == nil {
		return Next()
	}
	r.state.Step, r.state.Attempt, r.state.Now = st.Name, 0, r.now()
	d, err := st.Decide(r.state)
	switch {
	case err != nil:
		return Fail(fmt.Sprintf("step %s: decide: %v", st.Name, err))
	case d.kind == decideFail && d.reason == "":
		return Fail(fmt.Sprintf("step %s decided to fail", st.Name))
	case d.kind == decideFail:
		return Fail(fmt.Sprintf("step %s: %s", st.Name, d.reason))
	}
	return d
}

// backward runs the compensations of the done steps in reverse order.
func (r *run) backward() {
	for k := len(r.done) - 1; k >= 0; k-- {
		d := r.done[k]
		if err := r.compensate(d.st); err != nil {
			r.out.Status = topics.StatusFailed
			r.out.NotUndone = append(r.out.NotUndone, d.st.Name)
			r.out.Steps[d.idx].Status = topics.StepCompensationFailed
			r.out.Steps[d.idx].Error = err.Error()
			continue
		}
		r.out.Compensated = append(r.out.Compensated, d.st.Name)
		r.out.Steps[d.idx].Status = topics.StepCompensated
	}
}
