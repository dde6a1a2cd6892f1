package sagas

// Decision is what a saga does after a step: go on, jump forward, finish
// early, or fail (and compensate). The zero Decision fails, so that a wait
// that timed out without an OnTimeout stops the saga rather than going on
// as if it had been approved.
type Decision struct {
	kind   decisionKind
	target string
	reason string
}

type decisionKind int

const (
	decideFail decisionKind = iota
	decideNext
	decideGoto
	decideComplete
)

// Next goes on with the following step.
func Next() Decision { return Decision{kind: decideNext} }

// Goto jumps forward to a later top-level step; the steps in between are
// skipped. Jumps backwards are refused: a repeated step would reuse its
// command ids, and participants would take it for a duplicate. Loop in a
// Func step instead.
func Goto(step string) Decision { return Decision{kind: decideGoto, target: step} }

// Complete ends the saga successfully; the remaining steps are skipped.
func Complete() Decision { return Decision{kind: decideComplete} }

// Fail fails the saga: the steps done so far are compensated, and reason
// becomes the outcome's error.
func Fail(reason string) Decision { return Decision{kind: decideFail, reason: reason} }

// Target is the step a Goto jumps to.
func (d Decision) Target() string { return d.target }

// String is the decision as YAML writes it: next, complete, fail,
// "goto <step>".
func (d Decision) String() string {
	switch d.kind {
	case decideNext:
		return "next"
	case decideGoto:
		return "goto " + d.target
	case decideComplete:
		return "complete"
	}
	return "fail"
}
