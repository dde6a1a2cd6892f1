package sagas_test

import (
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/sagabridge/sagabridge/compensations"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/sagatest"
	"github.com/sagabridge/sagabridge/topics"
)

// cmdTopic carries the test sagas' commands. A command of type T is
// answered with the event T+".reply".
const cmdTopic = "test.commands"

// plan tells the participants how to answer one instance. It travels in
// the saga's input, so every command carries it.
type plan struct {
	Fail       []string `json:"fail,omitempty"`       // steps whose participant refuses
	Silent     []string `json:"silent,omitempty"`     // steps whose participant never answers
	RefuseUndo []string `json:"refuseUndo,omitempty"` // steps whose participant refuses to undo
	// After holds a step's reply until the commands of the listed steps
	// have arrived: a reply that needs them proves they were sent at once.
	After map[string][]string `json:"after,omitempty"`
}

// participants answer commands. They act once per command id (a repeated
// id is answered again, not acted on again) and count what they did.
type participants struct {
	mu sync.Mutex
	// seen counts deliveries per command id.
	seen map[string]int
	// effects counts distinct command ids acted on, by "<instance>/<step>"
	// and "<instance>/<step>/undo".
	effects map[string]int
	// sent records "<instance>/<step>" of every forward command seen.
	sent map[string]bool
	// gateTimeouts counts replies whose After steps never came.
	gateTimeouts int
	// hook sees every delivered command before it is answered.
	hook func(c topics.Command, ev topics.CloudEvent)
}

func newParticipants() *participants {
	return &participants{seen: map[string]int{}, effects: map[string]int{}, sent: map[string]bool{}}
}

func (p *participants) setHook(h func(c topics.Command, ev topics.CloudEvent)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hook = h
}

// handle answers a command of cmdTopic as its plan says; a command of type
// T is answered with the event T+".reply".
func (p *participants) handle(cmd sagatest.Command) sagatest.Reply {
	if cmd.Topic != cmdTopic {
		return sagatest.NoReply()
	}
	c, ev := cmd.Command, cmd.Event
	var pl plan
	_ = json.Unmarshal(c.Payload, &pl) // steps with their own input carry no plan
	reply := sagatest.OK(nil)
	acted := true
	switch {
	case !c.Compensate && slices.Contains(pl.Silent, c.Step):
		reply, acted = sagatest.NoReply(), false
	case !c.Compensate && slices.Contains(pl.Fail, c.Step):
		reply, acted = sagatest.Failed(c.Step+" refused"), false
	case c.Compensate && slices.Contains(pl.RefuseUndo, c.Step):
		reply, acted = sagatest.Failed("cannot undo "+c.Step), false
	}
	key := c.InstanceID + "/" + c.Step
	if c.Compensate {
		key += "/undo"
	}
	p.mu.Lock()
	if !c.Compensate {
		p.sent[c.InstanceID+"/"+c.Step] = true
	}
	p.seen[ev.ID]++
	if p.seen[ev.ID] == 1 && acted {
		p.effects[key]++
	}
	hook := p.hook
	p.mu.Unlock()
	if hook != nil {
		hook(c, ev)
	}
	var after []string
	if !c.Compensate {
		after = pl.After[c.Step]
	}
	return reply.As(ev.Type + ".reply").After(func() {
		if !p.awaitSent(c.InstanceID, after) {
			p.mu.Lock()
			p.gateTimeouts++
			p.mu.Unlock()
		}
	})
}

// awaitSent waits until the commands of steps have been seen.
func (p *participants) awaitSent(instance string, steps []string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.mu.Lock()
		all := true
		for _, s := range steps {
			all = all && p.sent[instance+"/"+s]
		}
		p.mu.Unlock()
		if all {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gateMisses counts replies sent without their After steps.
func (p *participants) gateMisses() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gateTimeouts
}

// deliveries lists how often each command id arrived.
func (p *participants) deliveries() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.seen))
	for k, v := range p.seen {
		out[k] = v
	}
	return out
}

// effect is how many distinct commands were acted on for a key.
func (p *participants) effect(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.effects[key]
}

// cmd is a command step answered by the participants, with a compensation.
func cmd(name string) sagas.Step {
	return sagas.Step{
		Name:         name,
		Command:      topics.CommandSpec{Topic: cmdTopic, Type: name + ".do", ReplyEvent: name + ".do.reply"},
		Timeout:      10 * time.Second,
		MaxAttempts:  2,
		Compensation: undo(name),
	}
}

func undo(name string) *compensations.Compensation {
	return &compensations.Compensation{
		Name:        "undo-" + name,
		Command:     topics.CommandSpec{Topic: cmdTopic, Type: name + ".undo", ReplyEvent: name + ".undo.reply"},
		Timeout:     10 * time.Second,
		MaxAttempts: 3,
		Backoff:     sagas.Backoff{Initial: 20 * time.Millisecond},
	}
}
