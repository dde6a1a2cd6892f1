package sagas

import (
	"encoding/json"

	"github.com/sagabridge/sagabridge/sagas/progress"
	"github.com/sagabridge/sagabridge/topics"
)

// progressEvent is a progress CloudEvent waiting for an activity to carry it.
type progressEvent struct{ ev topics.CloudEvent }

// stepProgress records a round of attempts of a step or group as the
// workflow's custom status and returns the progress event describing it;
// nil when the saga publishes no progress events.
func (r *run) stepProgress(group *Step, pending []*member) *progressEvent {
	p := r.progressBase(progress.Running)
	p.Step, p.Kind = group.Name, group.Kind()
	for _, m := range pending {
		p.Attempt = max(p.Attempt, m.attempt)
		p.WaitingFor = append(p.WaitingFor, r.waitingFor(m.st, m.attempt))
	}
	return r.progressEvent(p)
}

// undoProgress does what stepProgress does for an attempt of a
// compensation.
func (r *run) undoProgress(st *Step, attempt int) *progressEvent {
	c := st.Compensation
	p := r.progressBase(progress.Compensating)
	p.Step, p.Kind, p.Attempt = st.Name, "compensation", attempt
	if c.IsCommand() {
		p.WaitingFor = []string{"event " + c.Command.ReplyEvent}
	} else {
		p.WaitingFor = []string{"activity " + c.Activity}
	}
	return r.progressEvent(p)
}

func (r *run) progressBase(status string) progress.Progress {
	r.seq++
	p := progress.Progress{
		Saga: r.saga.Name, Version: r.saga.Version, InstanceID: r.id,
		Seq: r.seq, Status: status, Since: r.now(),
	}
	for _, s := range r.out.Steps {
		if s.Status == topics.StepDone {
			p.Done = append(p.Done, s.Name)
		}
	}
	return p
}

func (r *run) waitingFor(st *Step, attempt int) string {
	switch st.Kind() {
	case KindCommand:
		return "event " + st.Command.ReplyEvent
	case KindActivity:
		return "activity " + st.Activity.Name
	case KindChild:
		return "child " + ChildInstanceID(r.id, st.Name, attempt)
	case KindWait:
		return "event " + st.Wait.Event
	}
	return st.Kind() + " " + st.Name
}

// progressEvent sets p as the workflow's custom status, where `workflow
// get` reads it on either engine, and builds its progress event unless the
// saga publishes none.
func (r *run) progressEvent(p progress.Progress) *progressEvent {
	r.setStatus(p)
	if r.saga.NoProgress {
		return nil
	}
	ev, err := topics.NewCloudEvent(progress.ID(r.id, p.Seq), topics.Source, progress.Type, r.id, p.Since, p)
	if err != nil {
		return nil // Progress always marshals; progress is advisory anyway
	}
	return &progressEvent{ev: ev}
}

// fireProgress publishes a progress event no command carried. The saga
// does not await it: progress must not hold a saga up.
func (r *run) fireProgress(p *progressEvent) {
	if p == nil {
		return
	}
	r.callPublish(PublishRequest{Topic: r.saga.progressTopic(), Key: r.id, Event: p.ev})
}

// setStatus makes p the workflow's custom status. The engine stores it with
// the next step of the history, so it costs no call of its own.
func (r *run) setStatus(p progress.Progress) {
	b, err := json.Marshal(p)
	if err != nil {
		return // Progress always marshals
	}
	r.ctx.SetCustomStatus(string(b))
}

// finalStatus leaves the outcome's status as the custom status of the
// finished workflow, so that whoever reads the engine alone (retention,
// an operator listing instances) tells a compensated saga from a
// completed one: the engine calls both COMPLETED.
func (r *run) finalStatus() {
	p := progress.FromOutcome(r.out)
	p.Outcome = nil // the workflow's output holds it
	p.Version = r.saga.Version
	r.setStatus(p)
}
