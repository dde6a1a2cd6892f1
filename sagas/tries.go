package sagas

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/dapr/durabletask-go/workflow"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/sagabridge/sagabridge/topics"
)

// commandCall is one command to send: a step's or a compensation's.
type commandCall struct {
	step    string
	spec    topics.CommandSpec
	rule    ReplyRule
	message *Message
	result  func(json.RawMessage) (json.RawMessage, error)
	undo    bool
	attempt int
	timeout time.Duration
	payload json.RawMessage
}

// commandTry publishes a command and waits for the participant's reply.
type commandTry struct {
	r    *run
	c    commandCall
	req  PublishRequest
	pub  awaitable
	wait awaitable
	err  error
}

func (r *run) startCommand(c commandCall, prog **progressEvent) try {
	data := topics.Command{
		InstanceID: r.id,
		Saga:       r.saga.Name,
		Step:       c.step,
		Attempt:    c.attempt,
		Compensate: c.undo,
		Payload:    c.payload,

		IdempotencyKey: topics.IdempotencyKey(r.id, c.step, c.undo),
	}
	ev, err := topics.NewCloudEvent(topics.CommandID(r.id, c.step, c.undo, c.attempt), topics.Source,
		c.spec.Type, r.id, r.now(), data)
	if err != nil {
		return done(failed("%v", err))
	}
	ev.IdempotencyKey = data.IdempotencyKey
	req := PublishRequest{Topic: c.spec.Topic, Key: r.id, Event: ev}
	if c.message != nil {
		r.state.Step, r.state.Attempt, r.state.Now = c.step, c.attempt, r.now()
		ref := CommandRef{
			ID: ev.ID, IdempotencyKey: data.IdempotencyKey, InstanceID: r.id, Saga: r.saga.Name,
			Step: c.step, Attempt: c.attempt, Compensate: c.undo,
		}
		opts, err := c.message.shape(r.state, ref, &req.Event)
		if err != nil {
			// A mapping that cannot be evaluated sends nothing: the step
			// (or compensation) fails with why.
			return done(failed("%v", err))
		}
		req.Options = opts
	}
	if *prog != nil {
		req.ProgressTopic, req.Progress = r.saga.progressTopic(), &(*prog).ev
		*prog = nil
	}
	return &commandTry{r: r, c: c, req: req, pub: r.callPublish(req)}
}

func (t *commandTry) settle() {
	if t.err = t.r.awaitPublish(t.pub, t.req); t.err == nil {
		t.wait = t.r.waitEvent(t.c.spec.ReplyEvent, t.c.timeout)
	}
}

func (t *commandTry) result() verdict {
	if t.err != nil {
		// The broker refused the command for about 45 minutes: it was never
		// published, so there is nothing to undo.
		return failed("publish command: %v", t.err)
	}
	var raw json.RawMessage
	if err := t.wait.Await(&raw); err != nil {
		return verdict{
			retry: true, effect: true, timedOut: true, status: topics.StepTimedOut,
			err: fmt.Sprintf("no reply after %d attempts of %s", t.c.attempt, t.c.timeout),
		}
	}
	rule := t.c.rule
	if rule == nil {
		rule = StatusReply
	}
	if ok, reason := rule(raw); !ok {
		// A participant that refuses a step did nothing; one that refuses
		// to undo may manage later, so a compensation asks again.
		return verdict{retry: t.c.undo, status: topics.StepFailed, err: reason}
	}
	if t.c.result != nil {
		res, err := t.c.result(raw)
		if err != nil {
			return verdict{effect: true, status: topics.StepFailed, err: fmt.Sprintf("result of the reply: %v", err)}
		}
		raw = res
	}
	return verdict{ok: true, data: raw}
}

// StatusReply is the default ReplyRule: the payload is a topics.Reply and
// status "ok" is success.
func StatusReply(payload json.RawMessage) (bool, string) {
	var rep topics.Reply
	if err := json.Unmarshal(payload, &rep); err != nil {
		return false, "undecodable reply: " + err.Error()
	}
	switch {
	case rep.Status == topics.ReplyOK:
		return true, ""
	case rep.Reason != "":
		return false, rep.Reason
	}
	return false, "participant replied " + strconv.Quote(rep.Status)
}

// activityCall is one activity to call: a step's or a compensation's.
type activityCall struct {
	step     string
	activity string
	params   any
	undo     bool
	attempt  int
	timeout  time.Duration
	payload  json.RawMessage
	result   json.RawMessage
}

type activityTry struct{ t awaitable }

func (r *run) startActivity(c activityCall) try {
	req := Request{
		ID:             topics.CommandID(r.id, c.step, c.undo, c.attempt),
		IdempotencyKey: topics.IdempotencyKey(r.id, c.step, c.undo),
		InstanceID:     r.id,
		Saga:           r.saga.Name,
		Step:           c.step,
		Attempt:        c.attempt,
		Compensate:     c.undo,
		Payload:        c.payload,
		Result:         c.result,
		TraceParent:    r.trace.TraceParent,
	}
	if c.timeout > 0 {
		req.Deadline = r.now().Add(c.timeout)
	}
	if c.params != nil {
		raw, err := json.Marshal(c.params)
		if err != nil {
			return done(failed("params of %s: %v", c.step, err))
		}
		req.Params = raw
	}
	return activityTry{t: r.callActivity(c.activity, req)}
}

func (t activityTry) settle() {}

func (t activityTry) result() verdict {
	var out json.RawMessage
	if err := t.t.Await(&out); err != nil {
		return verdict{retry: !IsPermanent(err) && !isHistoryFull(err), status: topics.StepFailed, err: activityError(err)}
	}
	return verdict{ok: true, data: out}
}

// childTry runs a child saga.
type childTry struct {
	id string
	t  awaitable
}

func (r *run) startChild(st *Step, attempt int, payload json.RawMessage) try {
	id := ChildInstanceID(r.id, st.Name, attempt)
	wf, start := st.Child.Workflow, Start{TraceParent: r.trace.TraceParent, TraceState: r.trace.TraceState, Input: payload}
	if st.Child.Definition != "" {
		wf, start.Version = st.Child.Definition, st.Child.Version
	}
	input, err := start.Encode()
	if err != nil {
		return done(failed("child input: %v", err))
	}
	if err := r.hist.room("the input of child "+id, len(input)); err != nil {
		return done(failed("%v", err))
	}
	r.hist.add(len(input))
	t := r.ctx.CallChildWorkflow(wf, workflow.WithRawChildWorkflowInput(wrapperspb.String(string(input))), workflow.WithChildWorkflowInstanceID(id))
	return childTry{id: id, t: sizedTask{h: r.hist, t: t}}
}

func (t childTry) settle() {}

func (t childTry) result() verdict {
	var raw json.RawMessage
	if err := t.t.Await(&raw); err != nil {
		// The child workflow failed (not its saga: it could not even
		// publish its outcome). What it did is unknown: retry, and undo
		// this step if it never succeeds.
		return verdict{retry: true, effect: true, status: topics.StepFailed, err: fmt.Sprintf("child %s: %s", t.id, activityError(err))}
	}
	var o topics.Outcome
	if err := json.Unmarshal(raw, &o); err != nil {
		return verdict{effect: true, status: topics.StepFailed, err: fmt.Sprintf("child %s: undecodable outcome: %v", t.id, err)}
	}
	switch o.Status {
	case topics.StatusCompleted:
		return verdict{ok: true, data: raw}
	case topics.StatusCompensated:
		return verdict{status: topics.StepFailed, err: fmt.Sprintf("child %s compensated: %s", t.id, o.Error)}
	}
	v := verdict{status: topics.StepFailed, err: fmt.Sprintf("child %s %s: %s", t.id, o.Status, o.Error)}
	for _, n := range o.NotUndone {
		v.notUndone = append(v.notUndone, o.InstanceID+"/"+n)
	}
	return v
}

// waitTry waits for an external event.
type waitTry struct {
	st *Step
	t  awaitable
}

func (r *run) startWait(st *Step) try {
	return waitTry{st: st, t: r.waitEvent(st.Wait.Event, st.Timeout)}
}

func (t waitTry) settle() {}

func (t waitTry) result() verdict {
	var raw json.RawMessage
	if err := t.t.Await(&raw); err != nil {
		return verdict{timedOut: true, status: topics.StepTimedOut, err: fmt.Sprintf("no %s event within %s", t.st.Wait.Event, t.st.Timeout)}
	}
	return verdict{ok: true, data: raw}
}

// funcTry runs the escape hatch when the round awaits it.
type funcTry struct {
	r       *run
	st      *Step
	attempt int
}

func (t *funcTry) settle() {}

func (t *funcTry) result() verdict {
	r := t.r
	r.state.Step, r.state.Attempt, r.state.Now = t.st.Name, t.attempt, r.now()
	v, err := t.st.Func(r.ctx, r.state)
	if err != nil {
		return verdict{retry: !IsPermanent(err), status: topics.StepFailed, err: activityError(err)}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return failed("result of %s: %v", t.st.Name, err)
	}
	return verdict{ok: true, data: raw}
}

// waitEvent waits for an external event, counting its payload into the
// history when it is awaited. An event cannot be refused: it is in the
// history once raised; the next step scheduled finds the room it took.
func (r *run) waitEvent(name string, timeout time.Duration) awaitable {
	r.hist.add(0) // the timeout's timer
	return sizedTask{h: r.hist, t: r.ctx.WaitForExternalEvent(name, timeout)}
}
