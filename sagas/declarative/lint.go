package declarative

import (
	"fmt"
	"slices"
	"time"

	"github.com/sagabridge/sagabridge/sagas"
)

// Events lists the events every loaded saga waits for, as Saga.Events.
func (d *Definitions) Events() []string {
	var out []string
	for _, l := range d.byKey {
		out = append(out, l.saga.Events()...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ShortTimeouts is Saga.ShortTimeouts for every loaded saga, each step
// named by its file:line.
func (d *Definitions) ShortTimeouts(ackWait time.Duration) []string {
	var out []string
	for _, k := range d.Keys() {
		l := d.byKey[k]
		lines := map[*sagas.Step]int{}
		var mark func(steps []sagas.Step, defs []StepDef)
		mark = func(steps []sagas.Step, defs []StepDef) {
			for i := range steps {
				if i < len(defs) {
					lines[&steps[i]] = defs[i].line
					mark(steps[i].Parallel, defs[i].Parallel)
				}
			}
		}
		mark(l.saga.Steps, l.def.Steps)
		c := compiler{def: l.def}
		out = append(out, l.saga.ShortTimeouts(ackWait, func(st *sagas.Step) string {
			return c.at(lines[st]) + fmt.Sprintf(": saga %s v%d step %s", l.def.Name, l.def.Version, st.Name)
		})...)
	}
	return out
}
