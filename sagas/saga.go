package sagas

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/compensations"
	"github.com/sagabridge/sagabridge/topics"
)

// Saga is a definition: a name (shown in outcomes and progress) and steps
// that run in order. Run executes it inside a workflow function.
type Saga struct {
	Name string
	// Version is shown in progress events; declarative sagas set it from
	// their definition. Go sagas change with IsPatched or by a new
	// workflow name (OrderSagaV2).
	Version int
	Steps   []Step
	// OutcomeTopic receives the outcome event; empty sends it to the
	// worker's outcome topic (DefaultTopics.Outcomes: bridge.yaml's
	// outcomes.topic).
	OutcomeTopic string
	// ProgressTopic receives progress events; empty sends them to the
	// worker's progress topic (DefaultTopics.Progress: bridge.yaml's
	// outcomes.progressTopic).
	ProgressTopic string
	// NoProgress turns progress events off, for sagas where one broker
	// message per step matters more than being able to see where they are.
	NoProgress bool
	// MaxHistoryBytes bounds the saga's history as the runtime estimates
	// it (0: DefaultMaxHistoryBytes). A step or compensation that would
	// pass it is not scheduled and fails with ErrHistoryFull: steps may
	// use three quarters, compensations all but 64 KiB, which is kept for
	// the outcome. Raise it only with the engine's message limit.
	MaxHistoryBytes int
}

// Step is one forward action, how to retry it, and how to undo it.
//
// The action is exactly one of Command, Activity, Child, Wait, Parallel or
// Func. A step with none of them and a Decide function is a pure branch.
type Step struct {
	Name string

	// Command is sent to a participant; the step waits for its reply. A
	// reply with status "failed" is final and is not retried; no reply in
	// Timeout is retried, and after the last attempt the step counts as
	// timed out and is compensated too: no reply does not mean nothing
	// happened.
	Command topics.CommandSpec
	// Reply decides whether a command's reply is a success. nil reads a
	// topics.Reply: status "ok" succeeds, anything else fails with reason.
	Reply ReplyRule
	// Message shapes the command as its participant expects it (its own
	// data, headers, plain JSON); nil sends a topics.Command CloudEvent.
	Message *Message
	// ReplyResult extracts the step's result from a successful reply; nil
	// keeps the whole reply payload. It must be a pure function.
	ReplyResult func(payload json.RawMessage) (json.RawMessage, error)
	// UndoMessage shapes the command of a command Compensation, as
	// Message does the step's, and UndoReply reads its reply (nil: a
	// topics.Reply).
	UndoMessage *Message
	UndoReply   ReplyRule
	// Activity calls a registered activity with a Request. An error is
	// retried (unless Permanent); after the last attempt the step failed
	// and is not compensated: an activity that fails must leave nothing
	// behind.
	Activity *Activity
	// Child runs another saga as a child workflow.
	Child *Child
	// Wait waits for an external event (a human approval, a legacy reply).
	Wait *Wait
	// Parallel runs its members at once (fan-out) and continues when all
	// have finished (fan-in). Members are Command, Activity, Child or Wait
	// steps with their own retries and compensations. If any member fails,
	// the members that succeeded (or timed out) are compensated, in reverse
	// member order, before the steps that ran earlier.
	Parallel []Step
	// Func is the escape hatch: plain workflow code with the context, for
	// loops and timers the DSL does not express. It must be deterministic
	// (`sagabridge vet` checks function literals with a workflow context).
	Func StepFunc

	// Input computes the payload the action sends (command payload,
	// activity request payload, child input) from the saga's state. nil
	// sends the saga's input unchanged.
	Input func(s *State) (any, error)

	// Timeout bounds one attempt: the wait for a command's reply or for a
	// Wait's event. Activities get it as the request's deadline. Child
	// steps have none: the child's own steps are bounded.
	Timeout time.Duration
	// MaxAttempts is how many attempts are made; 0 means 1. A Wait step is
	// never repeated.
	MaxAttempts int
	// Backoff is the durable wait between attempts; zero retries at once.
	Backoff Backoff

	// Compensation undoes the step; nil for steps with nothing to undo.
	Compensation *compensations.Compensation

	// Decide picks what runs next once the step succeeded (for a Wait: once
	// the event arrived; its payload is s.Results[step]). nil goes on with
	// the next step. Only top-level steps decide.
	Decide func(s *State) (Decision, error)
}

// Backoff is the wait between attempts; see compensations.Backoff.
type Backoff = compensations.Backoff

// ReplyRule reads a participant's reply: ok reports success, reason says
// why not. It must be a pure function of the payload.
type ReplyRule func(payload json.RawMessage) (ok bool, reason string)

// Activity names a registered activity, by the name it was registered
// under.
type Activity struct {
	Name string
	// Params are fixed parameters for the activity, sent as Request.Params.
	Params any
}

// Child names the child saga's workflow. Its instance ID is deterministic,
// "<parent>:<step>:<attempt>", so a replay finds the same child.
//
// The child publishes its own outcome, like any saga. Its status decides
// the step: completed succeeds; compensated fails the step (the child
// undid itself, so the step's own compensation does not run); failed fails
// the step, and what the child could not undo is listed in the parent's
// NotUndone as "<step>/<item>". A child workflow that itself fails (its
// outcome could not be published) is retried with a new instance ID.
type Child struct {
	// Workflow is the registered workflow name of a Go child saga.
	Workflow string
	// Definition and Version, when set, start the declarative saga of that
	// name (its workflow's name) pinned to that version; Workflow is not
	// used.
	Definition string
	Version    int
}

// Wait waits for one external event, raised on the instance by a route.
type Wait struct {
	Event string
	// OnTimeout is what happens when Step.Timeout passes without the
	// event. The zero Decision fails the saga.
	OnTimeout Decision
}

// StepFunc is the escape hatch's signature. The result is stored as the
// step's result; an error fails the step (retried per MaxAttempts).
type StepFunc func(ctx *workflow.WorkflowContext, s *State) (any, error)

// Step kinds, as shown in progress events.
const (
	KindCommand  = "command"
	KindActivity = "activity"
	KindChild    = "child"
	KindWait     = "wait"
	KindParallel = "parallel"
	KindFunc     = "func"
	KindBranch   = "branch"
)

// kinds lists the actions set on a step; Validate wants exactly one.
func (st *Step) kinds() []string {
	var out []string
	if st.isCommand() {
		out = append(out, KindCommand)
	}
	if st.Activity != nil {
		out = append(out, KindActivity)
	}
	if st.Child != nil {
		out = append(out, KindChild)
	}
	if st.Wait != nil {
		out = append(out, KindWait)
	}
	if st.Parallel != nil {
		out = append(out, KindParallel)
	}
	if st.Func != nil {
		out = append(out, KindFunc)
	}
	return out
}

// Kind is the step's kind, or "" when the step is malformed.
func (st *Step) Kind() string {
	ks := st.kinds()
	switch {
	case len(ks) == 1:
		return ks[0]
	case len(ks) == 0 && st.Decide != nil:
		return KindBranch
	}
	return ""
}

func (st *Step) isCommand() bool { return st.Command != (topics.CommandSpec{}) }

func (st *Step) attempts() int {
	if st.Wait != nil {
		return 1
	}
	return max(st.MaxAttempts, 1)
}

// outcomeTopic and progressTopic are "" when the saga names none: the
// Publish activity then sends to the worker's topics, which the
// orchestrator cannot know (they are configuration, not history).
func (s Saga) outcomeTopic() string { return s.OutcomeTopic }

func (s Saga) progressTopic() string { return s.ProgressTopic }

// payload is what a step sends: Step.Input's value, or the saga's input.
func (st *Step) payload(s *State) (json.RawMessage, error) {
	if st.Input == nil {
		return s.Input, nil
	}
	v, err := st.Input(s)
	if err != nil {
		return nil, fmt.Errorf("input of %s: %w", st.Name, err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("input of %s: %w", st.Name, err)
	}
	return raw, nil
}

// ChildInstanceID is the deterministic instance ID of a child saga.
func ChildInstanceID(parent, step string, attempt int) string {
	return parent + ":" + step + ":" + strconv.Itoa(attempt)
}

// Message shapes a command the way its participant expects it, in place of
// the default: a CloudEvent of the step's type whose data is a
// topics.Command. Its functions run in the orchestrator, so they must be
// pure functions of their arguments (no clock, no I/O).
type Message struct {
	// Plain sends the data as the message body (Content-Type
	// application/json) with no CloudEvents envelope. The command's ids
	// then travel as headers only (HeaderIdempotencyKey, HeaderCommandID,
	// HeaderAttempt).
	Plain bool
	// Data builds the command's data (the plain body); nil sends a
	// topics.Command.
	Data func(s *State, c CommandRef) (any, error)
	// Headers builds the message's headers; nil sends none of its own.
	Headers func(s *State, c CommandRef) (map[string]string, error)
}

// CommandRef names one command: what a Message may put in the message
// beside the saga's state.
type CommandRef struct {
	// ID is the command's id, one per attempt: "<instance>/<step>/<attempt>".
	ID string
	// IdempotencyKey is the same for every attempt of the step (see
	// topics.Command): the key participants dedupe on.
	IdempotencyKey string
	InstanceID     string
	Saga           string
	Step           string
	Attempt        int
	Compensate     bool
}

// State is what a saga knows while it runs, handed to the Go functions of
// a step (Input, Decide, Func). It is rebuilt on every replay from the
// recorded history, so those functions must read only from it and from the
// workflow context: no clock, no I/O.
type State struct {
	InstanceID string
	Saga       string
	// Input is the saga's input, the data of the event that started it.
	Input json.RawMessage
	// Results holds each finished step's result, by step name: an
	// activity's output, a reply's payload, a waited-for event's payload,
	// a child's outcome, a Func's return value.
	Results map[string]json.RawMessage
	// Step and Attempt are the step running now and its attempt (1-based).
	Step    string
	Attempt int
	// Now is the workflow's clock (ctx.CurrentUTCDateTime), replay-safe.
	Now time.Time
}

// DecodeInput decodes the saga's input into v.
func (s *State) DecodeInput(v any) error {
	if len(s.Input) == 0 {
		return fmt.Errorf("saga %s: no input", s.Saga)
	}
	if err := json.Unmarshal(s.Input, v); err != nil {
		return fmt.Errorf("saga %s: decode input: %w", s.Saga, err)
	}
	return nil
}

// Decode decodes the result of a finished step into v.
func (s *State) Decode(step string, v any) error {
	raw, ok := s.Results[step]
	if !ok || len(raw) == 0 {
		return fmt.Errorf("saga %s: step %s has no result", s.Saga, step)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("saga %s: decode result of %s: %w", s.Saga, step, err)
	}
	return nil
}
