package sagas

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Events lists the external events the saga waits for: its commands'
// reply events (its compensations' too) and its waits' events, sorted,
// without repeats.
func (s Saga) Events() []string {
	var out []string
	var walk func(steps []Step)
	walk = func(steps []Step) {
		for i := range steps {
			st := &steps[i]
			if st.isCommand() {
				out = append(out, st.Command.ReplyEvent)
			}
			if st.Wait != nil {
				out = append(out, st.Wait.Event)
			}
			if c := st.Compensation; c != nil && c.IsCommand() {
				out = append(out, c.Command.ReplyEvent)
			}
			walk(st.Parallel)
		}
	}
	walk(s.Steps)
	slices.Sort(out)
	return slices.Compact(out)
}

// Events lists the events every loaded saga waits for, as Saga.Events.
func (d *Definitions) Events() []string {
	var out []string
	for _, l := range d.byKey {
		out = append(out, l.saga.Events()...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ShortTimeouts describes every command step of s whose timeout is not longer than ackWait, the broker's redelivery
// delay: a reply held by a worker that died comes back only after
// ackWait, by when the step has sent its command again. where names a
// step in the message.
func (s Saga) ShortTimeouts(ackWait time.Duration, where func(*Step) string) []string {
	if where == nil {
		where = func(st *Step) string { return fmt.Sprintf("saga %s step %s", s.Name, st.Name) }
	}
	var out []string
	var walk func(steps []Step)
	walk = func(steps []Step) {
		for i := range steps {
			st := &steps[i]
			if st.isCommand() && st.Timeout > 0 && st.Timeout <= ackWait {
				out = append(out, fmt.Sprintf("%s: timeout %s is not longer than broker.ackWait %s: a reply held by a worker that died comes back after %s, when the command may have been sent again; make the timeout longer (the participants on %s must dedupe on the command's idempotencyKey either way)",
					where(st), st.Timeout, ackWait, ackWait, st.Command.Topic))
			}
			walk(st.Parallel)
		}
	}
	walk(s.Steps)
	return out
}

// ShortTimeouts is Saga.ShortTimeouts for every loaded saga, each step
// named by its file:line.
func (d *Definitions) ShortTimeouts(ackWait time.Duration) []string {
	var out []string
	for _, k := range d.Keys() {
		l := d.byKey[k]
		lines := map[*Step]int{}
		var mark func(steps []Step, defs []StepDef)
		mark = func(steps []Step, defs []StepDef) {
			for i := range steps {
				if i < len(defs) {
					lines[&steps[i]] = defs[i].line
					mark(steps[i].Parallel, defs[i].Parallel)
				}
			}
		}
		mark(l.saga.Steps, l.def.Steps)
		c := compiler{def: l.def}
		out = append(out, l.saga.ShortTimeouts(ackWait, func(st *Step) string {
			return c.at(lines[st]) + fmt.Sprintf(": saga %s v%d step %s", l.def.Name, l.def.Version, st.Name)
		})...)
	}
	return out
}

// WaitsFor reports whether one of events is name; the engine matches
// event names without regard to case.
func WaitsFor(events []string, name string) bool {
	return slices.ContainsFunc(events, func(e string) bool { return strings.EqualFold(e, name) })
}
