package sagas

import (
	"fmt"
)

// compensate runs a done step's compensation until it is confirmed or its
// attempts run out. A refusal, a missing reply and an activity error are
// all retried after the compensation's backoff: undoing must not give up
// easily, since giving up leaves a person to clean up.
func (r *run) compensate(st *Step) error {
	c := st.Compensation
	last := ""
	for attempt := 1; attempt <= c.Attempts(); attempt++ {
		if attempt > 1 {
			if d := c.Backoff.Delay(attempt - 1); d > 0 {
				if err := r.sleep(d); err != nil {
					return fmt.Errorf("%s: %w", c.Name, err)
				}
			}
		}
		prog := r.undoProgress(st, attempt)
		var t try
		if c.IsCommand() {
			// The compensation carries the saga's input, as the step did.
			t = r.startCommand(commandCall{
				step: st.Name, spec: c.Command, undo: true, attempt: attempt, message: st.UndoMessage, rule: st.UndoReply,
				timeout: c.Timeout, payload: r.state.Input,
			}, &prog)
		} else {
			t = r.startActivity(activityCall{
				step: st.Name, activity: c.Activity, undo: true, attempt: attempt,
				timeout: c.Timeout, payload: r.state.Input, result: r.state.Results[st.Name],
			})
		}
		r.fireProgress(prog)
		t.settle()
		v := t.result()
		switch {
		case v.ok:
			return nil
		case !v.retry:
			return fmt.Errorf("%s: %s", c.Name, v.err)
		case v.timedOut:
			last = "no reply"
		default:
			last = v.err
		}
	}
	return fmt.Errorf("%s not confirmed after %d attempts: %s", c.Name, c.Attempts(), last)
}
