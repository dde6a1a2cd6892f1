package sagatest

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/topics"
)

// Command is a command a saga sent: its topic, its CloudEvent and the
// topics.Command inside.
type Command struct {
	Topic string
	Event topics.CloudEvent
	topics.Command
}

func decodeCommand(topic string, ev topics.CloudEvent) (Command, bool) {
	var c topics.Command
	// Outcomes and progress events carry an instance id too; only a
	// command has an idempotency key.
	if json.Unmarshal(ev.Data, &c) != nil || c.IdempotencyKey == "" || c.Step == "" {
		return Command{}, false
	}
	return Command{Topic: topic, Event: ev, Command: c}, true
}

// Reply is how a scripted participant answers a command: OK, Failed or
// NoReply.
type Reply struct {
	status  string
	reason  string
	payload json.RawMessage
	err     error
	event   string
	wait    func()
}

// OK confirms the command; payload (nil for none) is the reply's payload,
// which the step keeps as its result.
func OK(payload any) Reply { return withPayload(Reply{status: topics.ReplyOK}, payload) }

// Failed refuses the command with a reason: the step fails (a refused
// compensation is tried again).
func Failed(reason string) Reply { return Reply{status: topics.ReplyFailed, reason: reason} }

// NoReply never answers: the step's timeout decides (see Env.FireTimer).
func NoReply() Reply { return Reply{} }

func withPayload(r Reply, payload any) Reply {
	if payload == nil {
		return r
	}
	r.payload, r.err = json.Marshal(payload)
	return r
}

// With sets the reply's payload.
func (r Reply) With(payload any) Reply { return withPayload(r, payload) }

// As names the event the reply is raised as. The Env knows it for the
// commands of Options.Sagas and Options.Definitions; commands of other
// workflows need it.
func (r Reply) As(event string) Reply {
	r.event = event
	return r
}

// After delays the reply until wait returns (it runs on a goroutine of
// its own): a reply that needs other commands to have been sent first.
func (r Reply) After(wait func()) Reply {
	r.wait = wait
	return r
}

// script holds the scripted participants and the reply event of each
// command type the Env has seen in a saga.
type script struct {
	e       *Env
	mu      sync.Mutex
	byType  map[string]func(Command) Reply
	any     func(Command) Reply
	replies map[string]string // command type -> reply event
	// inFlight counts replies scripted and not raised yet.
	inFlight atomic.Int64
}

func newScript(e *Env) *script {
	return &script{e: e, byType: map[string]func(Command) Reply{}, replies: map[string]string{}}
}

// learn records the reply events of a saga's commands and compensations.
func (s *script) learn(saga sagas.Saga) {
	var walk func(steps []sagas.Step)
	walk = func(steps []sagas.Step) {
		for _, st := range steps {
			if st.Command.Type != "" {
				s.replies[st.Command.Type] = st.Command.ReplyEvent
			}
			if c := st.Compensation; c != nil && c.IsCommand() {
				s.replies[c.Command.Type] = c.Command.ReplyEvent
			}
			walk(st.Parallel)
		}
	}
	walk(saga.Steps)
}

// OnCommand scripts the participant of one command type (the command's
// CloudEvent type, "payment.charge"): f answers every command of that
// type, forward or compensation, every attempt. It replaces an earlier
// script of the type.
func (e *Env) OnCommand(commandType string, f func(Command) Reply) {
	e.parts.mu.Lock()
	defer e.parts.mu.Unlock()
	e.parts.byType[commandType] = f
}

// Participant scripts every command no OnCommand covers. Without one,
// such a command is answered OK.
func (e *Env) Participant(f func(Command) Reply) {
	e.parts.mu.Lock()
	defer e.parts.mu.Unlock()
	e.parts.any = f
}

// deliver runs the script of a command when the broker stores it, and
// raises the reply on a goroutine, as a participant answers later.
func (s *script) deliver(topic string, ev topics.CloudEvent) {
	c, ok := decodeCommand(topic, ev)
	if !ok {
		return
	}
	s.mu.Lock()
	f := s.byType[ev.Type]
	if f == nil {
		f = s.any
	}
	known := s.replies[ev.Type]
	s.mu.Unlock()
	r := OK(nil)
	if f != nil {
		r = f(c)
	}
	if r.status == "" {
		return
	}
	if r.err != nil {
		s.e.t.Errorf("sagatest: reply to %s: payload: %v", ev.ID, r.err)
		return
	}
	event := r.event
	if event == "" {
		event = known
	}
	if event == "" {
		s.e.t.Errorf("sagatest: reply to %s (type %s): no reply event known; name it with Reply.As, or give the saga in Options.Sagas", ev.ID, ev.Type)
		return
	}
	reply := topics.Reply{InstanceID: c.InstanceID, Step: c.Step, CommandID: ev.ID, Status: r.status, Reason: r.reason, Payload: r.payload}
	s.inFlight.Add(1)
	s.e.Go(func() {
		defer s.inFlight.Add(-1)
		if r.wait != nil {
			r.wait()
		}
		s.e.Raise(c.InstanceID, event, reply)
	})
}

// String shows a reply in failure messages.
func (r Reply) String() string {
	switch r.status {
	case "":
		return "no reply"
	case topics.ReplyFailed:
		return fmt.Sprintf("failed (%s)", r.reason)
	}
	return "ok"
}
