package bridge

import (
	"context"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/declarative"
	"github.com/sagabridge/sagabridge/sagas/migration"
)

// starter decides, once per start, what a saga instance starts with: the
// version a declarative saga runs, the migration assignment, the trace
// context of the message and the input, in one sagas.Start. A workflow
// the saga runtime does not run gets its input unchanged.
type starter struct {
	defs *declarative.Definitions
	// sagas are the workflows the saga runtime runs, which read the
	// envelope.
	sagas  map[string]bool
	tracer tracer
}

// input is the start input of workflow wf for a route's input; version
// pins a declarative saga's (0: the latest loaded), a is the instance's
// migration assignment (nil: not migrating).
func (s starter) input(ctx context.Context, wf string, version int, a *migration.Assignment, input []byte) ([]byte, error) {
	if !s.sagas[wf] && a == nil {
		return input, nil
	}
	st := sagas.Start{Input: input}
	if _, ok := s.defs.Latest(wf); ok {
		var err error
		if st, err = s.defs.Start(wf, version, input); err != nil {
			return nil, err
		}
	}
	st.Migration = a
	if s.sagas[wf] {
		st.TraceParent, st.TraceState = s.tracer.traceContext(ctx)
	}
	return st.Encode()
}
