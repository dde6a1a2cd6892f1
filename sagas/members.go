package sagas

import (
	"time"
)

// runMembers runs the attempts of one step, or of every member of a
// parallel group at once, until each succeeds, fails for good or runs out
// of attempts.
//
// The engine's Go SDK can await one task at a time and has no "when any",
// so members advance in rounds: every pending member starts its attempt,
// then the round awaits them in member order. A member's retry starts once
// every member's current attempt has ended; each member's timeout still
// runs from the start of its own attempt. Between rounds the group waits
// the longest backoff among the members that retry.
func (r *run) runMembers(group *Step, ms []*member) {
	pending := ms
	for len(pending) > 0 {
		for _, m := range pending {
			m.attempt++
		}
		prog := r.stepProgress(group, pending)
		for _, m := range pending {
			m.t = r.start(m, &prog)
		}
		r.fireProgress(prog)
		for _, m := range pending {
			m.t.settle()
		}
		var again []*member
		var wait time.Duration
		for _, m := range pending {
			m.v = m.t.result()
			if m.v.ok || !m.v.retry || m.attempt >= m.st.attempts() {
				continue
			}
			again = append(again, m)
			wait = max(wait, m.st.Backoff.Delay(m.attempt))
		}
		if len(again) > 0 && wait > 0 {
			if err := r.sleep(wait); err != nil {
				return // a durable timer cannot fail; keep the last verdicts
			}
		}
		pending = again
	}
}

// start begins one attempt of m. The first command of a round carries the
// round's progress event in its publish, so a progress event costs the
// engine nothing extra there.
func (r *run) start(m *member, prog **progressEvent) try {
	st := m.st
	r.state.Step, r.state.Attempt, r.state.Now = st.Name, m.attempt, r.now()
	if st.Func != nil {
		return &funcTry{r: r, st: st, attempt: m.attempt}
	}
	if st.Wait != nil {
		return r.startWait(st)
	}
	payload, err := st.payload(r.state)
	if err != nil {
		return done(failed("%v", err))
	}
	switch {
	case st.isCommand():
		return r.startCommand(commandCall{
			step: st.Name, spec: st.Command, rule: st.Reply, attempt: m.attempt,
			message: st.Message, result: st.ReplyResult,
			timeout: st.Timeout, payload: payload,
		}, prog)
	case st.Activity != nil:
		return r.startActivity(activityCall{
			step: st.Name, activity: st.Activity.Name, params: st.Activity.Params,
			attempt: m.attempt, timeout: st.Timeout, payload: payload,
		})
	case st.Child != nil:
		return r.startChild(st, m.attempt, payload)
	}
	return done(failed("step %s has no action", st.Name))
}
