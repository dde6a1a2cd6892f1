package sagas

import (
	"fmt"

	"github.com/sagabridge/sagabridge/topics"
)

// verdict is how one attempt of a step (or of a compensation) ended.
type verdict struct {
	ok bool
	// retry: another attempt may help (no reply, an activity error, a
	// refused compensation).
	retry bool
	// effect: the step may have changed something although it did not
	// succeed (a command nobody answered), so it is compensated too.
	effect   bool
	timedOut bool
	status   string // topics.StepFailed or topics.StepTimedOut when !ok
	err      string
	data     []byte // the step's result
	// notUndone is what a failed child saga could not undo.
	notUndone []string
}

// describe is the failure as the outcome's error shows it.
func (v verdict) describe() string {
	if v.err == "" {
		return v.status
	}
	return v.status + ": " + v.err
}

func failed(format string, args ...any) verdict {
	return verdict{status: topics.StepFailed, err: fmt.Sprintf(format, args...)}
}

// try is one attempt of a step, split in three phases so that a parallel
// group starts every member's attempt before it waits for any:
// start (the constructor) schedules work, settle finishes what must
// precede the wait (a command's publish) and starts the wait, result
// awaits the outcome.
type try interface {
	settle()
	result() verdict
}

// done is a try whose verdict is known at start (a bad input, say).
type done verdict

func (d done) settle()         {}
func (d done) result() verdict { return verdict(d) }

// member is a step taking part in a round of attempts.
type member struct {
	st      *Step
	attempt int
	t       try
	v       verdict
}
