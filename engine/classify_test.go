package engine

import (
	"errors"
	"testing"
)

// TestClassify: the messages measured on daprd 1.16 and the embedded hub
// map to the errors the bridge acts on. Which one matters: an unavailable
// engine is retried without limit, a refusal ten times, then dead-lettered.
func TestClassify(t *testing.T) {
	for _, c := range []struct {
		msg  string
		want error
	}{
		{"failed to raise event: rpc error: code = Unknown desc = no such instance exists", ErrNotFound},
		{"rpc error: code = Unknown desc = orchestration already finished: o-1 is COMPLETED", ErrFinished},
		// daprd, no worker connected yet.
		{"failed to raise event: rpc error: code = Unknown desc = did not find address for actor dapr.internal.default.app.workflow/o-1", ErrUnavailable},
		// daprd, after its only worker died.
		{"failed to raise event: rpc error: code = Unknown desc = failed to create actor: actor type dapr.internal.default.app.workflow not registered", ErrUnavailable},
		{"rpc error: code = Unknown desc = the state store is not configured to use the actor runtime", ErrUnavailable},
		// daprd 1.16.0 stopping its actor runtime under the call (it lost
		// placement after a SIGSTOP).
		{"failed to start orchestrator: rpc error: code = Unknown desc = lock closed", ErrUnavailable},
		{"failed to start orchestrator: rpc error: code = Unknown desc = an active workflow with ID 'o-1' already exists", nil},
	} {
		got := classify(errors.New(c.msg))
		for _, e := range []error{ErrNotFound, ErrFinished, ErrUnavailable} {
			if errors.Is(got, e) != (e == c.want) {
				t.Errorf("%q: errors.Is(%v) = %v", c.msg, e, errors.Is(got, e))
			}
		}
	}
}
