package sagas

import (
	"github.com/sagabridge/sagabridge/topics"
)

// progressEvent is a progress CloudEvent waiting for an activity to carry it.
type progressEvent struct{ ev topics.CloudEvent }

// stepProgress describes a round of attempts of a step or group; nil when
// the saga reports no progress.
func (r *run) stepProgress(group *Step, pending []*member) *progressEvent {
	if r.saga.NoProgress {
		return nil
	}
	p := r.progressBase(ProgressRunning)
	p.Step, p.Kind = group.Name, group.Kind()
	for _, m := range pending {
		p.Attempt = max(p.Attempt, m.attempt)
		p.WaitingFor = append(p.WaitingFor, r.waitingFor(m.st, m.attempt))
	}
	return r.progressEvent(p)
}

// undoProgress describes an attempt of a compensation.
func (r *run) undoProgress(st *Step, attempt int) *progressEvent {
	if r.saga.NoProgress {
		return nil
	}
	c := st.Compensation
	p := r.progressBase(ProgressCompensating)
	p.Step, p.Kind, p.Attempt = st.Name, "compensation", attempt
	if c.IsCommand() {
		p.WaitingFor = []string{"event " + c.Command.ReplyEvent}
	} else {
		p.WaitingFor = []string{"activity " + c.Activity}
	}
	return r.progressEvent(p)
}

func (r *run) progressBase(status string) Progress {
	r.seq++
	p := Progress{
		Saga: r.saga.Name, Version: r.saga.Version, InstanceID: r.id,
		Seq: r.seq, Status: status, Since: r.now(),
	}
	for _, s := range r.out.Steps {
		if s.Status == StepDone {
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

func (r *run) progressEvent(p Progress) *progressEvent {
	ev, err := topics.NewCloudEvent(ProgressID(r.id, p.Seq), topics.Source, ProgressType, r.id, p.Since, p)
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
