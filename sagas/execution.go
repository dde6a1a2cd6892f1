package sagas

import (
	"time"

	"github.com/dapr/durabletask-go/workflow"
	"github.com/sagabridge/sagabridge/topics"
)

// run is one execution (or replay) of a saga. It holds the workflow
// context because every helper schedules work on it; it lives only for
// the duration of the orchestrator call.
type run struct {
	ctx  *workflow.WorkflowContext
	saga Saga
	id   string
	// trace is the trace context the saga was started with, stamped on
	// everything it sends.
	trace Start
	state *State
	out   topics.Outcome
	// hist estimates the history's size, so that the saga stops before
	// the engine can no longer hand it over.
	hist *history

	// done lists the steps whose effect may exist and that have a
	// compensation, in the order they finished: backward runs over it in
	// reverse.
	done []doneStep
	// failure is why the saga stopped going forward ("" while it goes).
	failure string
	// childNotUndone is what failed child sagas could not undo.
	childNotUndone []string
	// seq numbers progress events.
	seq int
}

type doneStep struct {
	st  *Step
	idx int // in out.Steps
}

func (r *run) now() time.Time { return r.ctx.CurrentTimeUTC() }

// newRun begins an execution of s started with st.
func newRun(ctx *workflow.WorkflowContext, s Saga, st Start) *run {
	r := &run{
		ctx:   ctx,
		saga:  s,
		id:    ctx.ID(),
		trace: Start{TraceParent: st.TraceParent, TraceState: st.TraceState},
		hist:  newHistory(s.MaxHistoryBytes, len(st.Input)),
	}
	r.out = topics.Outcome{Saga: s.Name, InstanceID: r.id, StartedAt: ctx.CurrentTimeUTC(), TraceParent: r.trace.TraceParent}
	return r
}
