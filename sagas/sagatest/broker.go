package sagatest

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/topics"
)

// Published is one event the sagas sent, with its topic.
type Published struct {
	Topic string
	Event topics.CloudEvent
}

// broker is the in-memory broker: it records every event the sagas'
// Publish activity sends and hands commands to the participants.
type broker struct {
	mu     sync.Mutex
	events []Published
	// deliver hands an event to the participants.
	deliver func(topic string, ev topics.CloudEvent)
	// also are the test's own subscribers (OnPublish).
	also []func(topic string, ev topics.CloudEvent)
	// fail, when set, refuses a publish (a broker outage).
	fail func(topic string, ev topics.CloudEvent) error
	// after runs once the event is stored and delivered; its error is
	// what the activity reports.
	after func(topic string, ev topics.CloudEvent) error
	// progressFailures counts ProgressFailed calls.
	progressFailures int
	// options are the MessageOptions of shaped commands, by event id.
	options map[string]sagas.MessageOptions
}

func (p *broker) Publish(_ context.Context, topic, _ string, ev topics.CloudEvent) error {
	p.mu.Lock()
	fail := p.fail
	p.mu.Unlock()
	if fail != nil {
		if err := fail(topic, ev); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.events = append(p.events, Published{topic, ev})
	deliver, also, after := p.deliver, p.also, p.after
	p.mu.Unlock()
	if deliver != nil {
		deliver(topic, ev)
	}
	for _, f := range also {
		f(topic, ev)
	}
	if after != nil {
		return after(topic, ev)
	}
	return nil
}

// PublishMessage records how a shaped command is to be sent, then
// publishes it as Publish does: the broker is a sagas.MessagePublisher.
func (p *broker) PublishMessage(ctx context.Context, topic, key string, ev topics.CloudEvent, o sagas.MessageOptions) error {
	p.mu.Lock()
	if p.options == nil {
		p.options = map[string]sagas.MessageOptions{}
	}
	p.options[ev.ID] = o
	p.mu.Unlock()
	return p.Publish(ctx, topic, key, ev)
}

// ProgressFailed makes the broker a sagas.ProgressFailureObserver.
func (p *broker) ProgressFailed(string, topics.CloudEvent, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.progressFailures++
}

// Events lists every event published, in order, repeats included (an
// activity that ran again publishes again; consumers dedupe on the id).
func (e *Env) Events() []Published {
	e.pub.mu.Lock()
	defer e.pub.mu.Unlock()
	return append([]Published(nil), e.pub.events...)
}

// Published lists the events published to a topic, repeats included.
func (e *Env) Published(topic string) []topics.CloudEvent {
	var out []topics.CloudEvent
	for _, p := range e.Events() {
		if p.Topic == topic {
			out = append(out, p.Event)
		}
	}
	return out
}

// Distinct drops repeated event ids, keeping first occurrences in order.
func Distinct(evs []topics.CloudEvent) []topics.CloudEvent {
	seen := map[string]bool{}
	var out []topics.CloudEvent
	for _, ev := range evs {
		if !seen[ev.ID] {
			seen[ev.ID] = true
			out = append(out, ev)
		}
	}
	return out
}

// Outcomes lists the distinct outcome events an instance published (to
// topics.Outcomes, the default outcome topic). A saga publishes exactly
// one.
func (e *Env) Outcomes(id string) []topics.Outcome {
	var out []topics.Outcome
	for _, ev := range Distinct(e.Published(topics.Outcomes)) {
		if ev.Subject != id {
			continue
		}
		var o topics.Outcome
		if err := json.Unmarshal(ev.Data, &o); err == nil {
			out = append(out, o)
		}
	}
	return out
}

// SentCommands lists the distinct commands sent for an instance, on any
// topic, in the order they were sent: forward steps and compensations.
// Commands a step's Message shapes into its participant's own format are
// not among them; see Events.
func (e *Env) SentCommands(id string) []Command {
	var out []Command
	seen := map[string]bool{}
	for _, p := range e.Events() {
		c, ok := decodeCommand(p.Topic, p.Event)
		if !ok || c.InstanceID != id || seen[p.Event.ID] {
			continue
		}
		seen[p.Event.ID] = true
		out = append(out, c)
	}
	return out
}

// Commands is SentCommands as "type#attempt" (the CloudEvent type and the
// attempt), the form assertions compare: ["inventory.reserve#1",
// "payment.charge#1", "payment.charge#2", "inventory.release#1"].
func (e *Env) Commands(id string) []string {
	var out []string
	for _, c := range e.SentCommands(id) {
		out = append(out, c.Event.Type+"#"+strconv.Itoa(c.Attempt))
	}
	return out
}

// Compensations lists the compensation commands sent for an instance, as
// Commands does.
func (e *Env) Compensations(id string) []string {
	var out []string
	for _, c := range e.SentCommands(id) {
		if c.Compensate {
			out = append(out, c.Event.Type+"#"+strconv.Itoa(c.Attempt))
		}
	}
	return out
}

// OnPublish adds a subscriber that sees every event published, after the
// participants: a participant of the test's own, or a check.
func (e *Env) OnPublish(f func(topic string, ev topics.CloudEvent)) {
	e.pub.mu.Lock()
	defer e.pub.mu.Unlock()
	e.pub.also = append(e.pub.also, f)
}

// FailPublish makes the broker refuse the publishes f returns an error
// for (an outage); nil ends it. The Publish activity fails and is retried
// as the saga's step says.
func (e *Env) FailPublish(f func(topic string, ev topics.CloudEvent) error) {
	e.pub.mu.Lock()
	defer e.pub.mu.Unlock()
	e.pub.fail = f
}

// MessageOptions are the options a step's Message gave the command with
// this event id.
func (e *Env) MessageOptions(eventID string) (sagas.MessageOptions, bool) {
	e.pub.mu.Lock()
	defer e.pub.mu.Unlock()
	o, ok := e.pub.options[eventID]
	return o, ok
}

// ProgressFailures counts the progress events the broker refused (the
// sagas go on without them).
func (e *Env) ProgressFailures() int {
	e.pub.mu.Lock()
	defer e.pub.mu.Unlock()
	return e.pub.progressFailures
}
