package sagas

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dapr/go-sdk/workflow"

	"github.com/sagabridge/sagabridge/compensations"
	"github.com/sagabridge/sagabridge/topics"
)

// Step statuses in an outcome.
const (
	StepDone               = "done"
	StepFailed             = "failed"
	StepTimedOut           = "timed-out"
	StepCompensated        = "compensated"
	StepCompensationFailed = "compensation-failed"
)

// publishAttempts bounds how long a saga keeps trying to publish one event
// while the broker is down: with the backoff below, about 45 minutes. After
// that the workflow fails and shows up as FAILED in `sagabridge workflow get`.
const (
	publishAttempts = 100
	publishMaxDelay = 30 * time.Second
)

// Run executes saga s in a workflow. The workflow's input is the data of the
// event that started it; it is passed to every command as the payload.
//
// Run returns the outcome it published. It returns an error only when the
// outcome itself could not be published after all retries.
func Run(ctx *workflow.WorkflowContext, s Saga) (any, error) {
	var input json.RawMessage
	if err := ctx.GetInput(&input); err != nil {
		return nil, fmt.Errorf("saga %s: decode input: %w", s.Name, err)
	}
	r := &run{ctx: ctx, saga: s, input: input, id: ctx.InstanceID()}
	out := topics.Outcome{
		Saga:       s.Name,
		InstanceID: r.id,
		StartedAt:  ctx.CurrentUTCDateTime(),
	}

	// done lists the steps whose effect may exist, in the order they ran:
	// compensations run over it backwards.
	var done []int
	var failure string
	for i, st := range s.Steps {
		res := r.step(st)
		out.Steps = append(out.Steps, res)
		switch res.Status {
		case StepDone:
			done = append(done, i)
			continue
		case StepTimedOut:
			// No reply does not mean nothing happened: undo it too.
			done = append(done, i)
		}
		failure = fmt.Sprintf("step %s %s", st.Name, res.Status)
		if res.Error != "" {
			failure += ": " + res.Error
		}
		break
	}

	out.Status = topics.StatusCompleted
	if failure != "" {
		out.Error = failure
		out.Status = topics.StatusCompensated
		for k := len(done) - 1; k >= 0; k-- {
			st := s.Steps[done[k]]
			if st.Compensation == nil {
				continue
			}
			if err := r.compensate(st.Name, *st.Compensation); err != nil {
				out.Status = topics.StatusFailed
				out.NotUndone = append(out.NotUndone, st.Name)
				out.Steps[done[k]].Status = StepCompensationFailed
				out.Steps[done[k]].Error = err.Error()
				continue
			}
			out.Compensated = append(out.Compensated, st.Name)
			out.Steps[done[k]].Status = StepCompensated
		}
	}
	out.FinishedAt = ctx.CurrentUTCDateTime()

	ev, err := topics.NewCloudEvent(topics.OutcomeID(r.id, out.Status), topics.Source,
		topics.OutcomeType(out.Status), r.id, out.FinishedAt, out)
	if err != nil {
		return nil, err
	}
	if err := r.publish(s.outcomeTopic(), ev); err != nil {
		return nil, fmt.Errorf("saga %s: publish outcome: %w", s.Name, err)
	}
	return out, nil
}

type run struct {
	ctx   *workflow.WorkflowContext
	saga  Saga
	input json.RawMessage
	id    string
}

// step sends the command and waits for its reply, resending when no reply
// comes in time.
func (r *run) step(st Step) topics.StepResult {
	res := topics.StepResult{Name: st.Name}
	for attempt := 1; attempt <= st.MaxAttempts; attempt++ {
		reply, err := r.command(st.Name, st.Command, false, attempt, st.Timeout)
		switch {
		case errors.Is(err, errNoReply):
			continue
		case err != nil:
			res.Status, res.Error = StepFailed, err.Error()
			return res
		case reply.Status == topics.ReplyOK:
			res.Status = StepDone
			return res
		default:
			res.Status, res.Error = StepFailed, reply.Reason
			if res.Error == "" {
				res.Error = "participant replied " + reply.Status
			}
			return res
		}
	}
	res.Status = StepTimedOut
	res.Error = fmt.Sprintf("no reply after %d attempts of %s", st.MaxAttempts, st.Timeout)
	return res
}

// compensate sends the compensation until a participant confirms it.
func (r *run) compensate(step string, c compensations.Compensation) error {
	var last string
	for attempt := 1; attempt <= c.MaxAttempts; attempt++ {
		reply, err := r.command(step, c.Command, true, attempt, c.Timeout)
		switch {
		case errors.Is(err, errNoReply):
			last = "no reply"
			continue
		case err != nil:
			return fmt.Errorf("%s: %w", c.Name, err)
		case reply.Status == topics.ReplyOK:
			return nil
		default:
			last = reply.Reason
			// A refused compensation may succeed later (stock service
			// restarting, say): wait before asking again.
			if err := r.ctx.CreateTimer(time.Duration(attempt) * time.Second).Await(nil); err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
		}
	}
	return fmt.Errorf("%s not confirmed after %d attempts: %s", c.Name, c.MaxAttempts, last)
}

var errNoReply = errors.New("no reply in time")

// command publishes one command and waits for the reply event.
func (r *run) command(step string, spec topics.CommandSpec, undo bool, attempt int, timeout time.Duration) (topics.Reply, error) {
	data := topics.Command{
		InstanceID: r.id,
		Saga:       r.saga.Name,
		Step:       step,
		Attempt:    attempt,
		Compensate: undo,
		Payload:    r.input,
	}
	ev, err := topics.NewCloudEvent(topics.CommandID(r.id, step, undo, attempt), topics.Source,
		spec.Type, r.id, r.ctx.CurrentUTCDateTime(), data)
	if err != nil {
		return topics.Reply{}, err
	}
	if err := r.publish(spec.Topic, ev); err != nil {
		return topics.Reply{}, err
	}
	var reply topics.Reply
	if err := r.ctx.WaitForExternalEvent(spec.ReplyEvent, timeout).Await(&reply); err != nil {
		return topics.Reply{}, errNoReply
	}
	return reply, nil
}

// publish runs the Publish activity, retrying with a durable timer while
// the broker refuses.
func (r *run) publish(topic string, ev topics.CloudEvent) error {
	req := PublishRequest{Topic: topic, Key: r.id, Event: ev}
	delay := time.Second
	for attempt := 1; ; attempt++ {
		err := r.ctx.CallActivity(PublishActivity, workflow.ActivityInput(req)).Await(nil)
		if err == nil {
			return nil
		}
		if attempt >= publishAttempts {
			return err
		}
		if err := r.ctx.CreateTimer(delay).Await(nil); err != nil {
			return err
		}
		delay = min(delay*2, publishMaxDelay)
	}
}
