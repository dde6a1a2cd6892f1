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

// WaitsFor reports whether one of events is name; the engine matches
// event names without regard to case.
func WaitsFor(events []string, name string) bool {
	return slices.ContainsFunc(events, func(e string) bool { return strings.EqualFold(e, name) })
}
