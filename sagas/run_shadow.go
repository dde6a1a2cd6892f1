package sagas

import (
	"fmt"
	"time"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/sagas/migration"
	"github.com/sagabridge/sagabridge/topics"
)

// runShadow runs s in shadow mode: it sends no command, calls no activity
// and runs no compensation. It follows the legacy flow through the
// observation events raised on the instance (migration.Shadow), and
// publishes each divergence and a would-be outcome to the shadow topics,
// never to the outcome topic.
func runShadow(ctx *workflow.WorkflowContext, s Saga, st Start) (topics.Outcome, error) {
	a := st.Migration
	if a.Observe == nil || a.Observe.Event == "" {
		return topics.Outcome{}, fmt.Errorf("saga %s: shadow mode without an observation event", s.Name)
	}
	r := newRun(ctx, s, st)
	out := r.out
	sh := migration.NewShadow(shadowSteps(s), a.Observe, workflowFeed{ctx: ctx, event: a.Observe.Event}, ctx.CurrentTimeUTC)
	divergences := sh.Follow(&out)
	out.FinishedAt = ctx.CurrentTimeUTC()
	for k := range divergences {
		divergences[k].Saga, divergences[k].InstanceID = s.Name, r.id
	}
	out.Migration = a.Outcome()
	out.Migration.Divergences = divergences

	divTopic := orDefault(a.Divergences, topics.Divergences)
	for _, d := range divergences {
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

// shadowSteps are the top-level steps and parallel members of s, in the
// order the saga runs them, as the comparison sees them.
func shadowSteps(s Saga) []migration.Step {
	var out []migration.Step
	add := func(st *Step) {
		var d time.Duration
		if st.Timeout > 0 {
			d = st.Timeout * time.Duration(st.attempts())
		}
		out = append(out, migration.Step{Name: st.Name, Timeout: d, Undoable: st.Compensation != nil})
	}
	for i := range s.Steps {
		st := &s.Steps[i]
		if len(st.Parallel) == 0 {
			add(st)
			continue
		}
		for k := range st.Parallel {
			add(&st.Parallel[k])
		}
	}
	return out
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// workflowFeed reads observations from the instance's external events; the
// engine delivers events of one name in the order they were raised.
type workflowFeed struct {
	ctx   *workflow.WorkflowContext
	event string
}

func (f workflowFeed) Next(timeout time.Duration) (migration.Observation, bool) {
	var o migration.Observation
	if err := f.ctx.WaitForExternalEvent(f.event, timeout).Await(&o); err != nil {
		return migration.Observation{}, false
	}
	return o, true
}
