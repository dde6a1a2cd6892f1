// Package progress is where saga instances are: the progress event the
// saga runtime publishes and keeps as its workflow's custom status, and
// the read model that folds those events (Board) for `sagabridge workflow
// get`, the admin API and the console.
package progress

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sagabridge/sagabridge/topics"
)

// Progress is where a saga instance is. A saga keeps it as its workflow's
// custom status (JSON), which both engines store with the instance, so
// `sagabridge workflow get` reads it from the engine alone; when it
// finishes, the custom status holds the outcome's status (compensated,
// failed), which the engine's own runtime status (COMPLETED) does not say.
//
// For subscribers, a saga also publishes each position as a progress
// event, a CloudEvent of type Type on the saga's progress topic
// (default DefaultTopic), subject = instance ID; the outcome event
// is the last word (Board folds them). A command step's progress
// rides in the Publish activity that sends the command, so it costs the
// engine nothing; other steps publish it from an activity the saga does
// not wait for. Progress events are advisory: one the broker refuses is
// dropped (and reported to a ProgressFailureObserver), never retried, and
// never holds the saga up. Saga.NoProgress turns the events off (not the
// custom status).
type Progress struct {
	Saga       string `json:"saga"`
	Version    int    `json:"version,omitempty"`
	InstanceID string `json:"instanceId"`
	// Seq grows with each event of the instance; keep the highest (events
	// from concurrent activities can arrive out of order).
	Seq int `json:"seq"`
	// Status is running, compensating, or the outcome's status.
	Status string `json:"status"`
	// Step is the step (or parallel group) running or being undone.
	Step string `json:"step,omitempty"`
	// Kind is the step's kind, or "compensation".
	Kind    string `json:"kind,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	// WaitingFor says what the saga waits for: "event <name>", "activity
	// <name>", "child <instance ID>", "func <step>".
	WaitingFor []string `json:"waitingFor,omitempty"`
	// Since is when this wait began (workflow time).
	Since time.Time `json:"since"`
	// Done lists the steps finished so far, in order.
	Done []string `json:"done,omitempty"`
	// Outcome is set on the final state, read from an outcome event or
	// the workflow's output.
	Outcome *topics.Outcome `json:"outcome,omitempty"`
}

// Progress statuses besides the outcome statuses.
const (
	Running      = "running"
	Compensating = "compensating"
)

// Type is the CloudEvent type of progress events.
const Type = "sagabridge.saga.progress"

// DefaultTopic receives progress events unless a saga names another.
const DefaultTopic = "sagabridge.progress"

// ID is the deterministic CloudEvent id of an instance's seq'th
// progress event; a re-run activity re-sends the same id.
func ID(instanceID string, seq int) string {
	return instanceID + "/progress/" + strconv.Itoa(seq)
}

// ErrNotProgress is returned for events that say nothing about progress.
var ErrNotProgress = errors.New("not a progress or outcome event")

// Decode reads a progress event or an outcome event.
func Decode(ev topics.CloudEvent) (Progress, error) {
	switch ev.Type {
	case Type:
		var p Progress
		if err := json.Unmarshal(ev.Data, &p); err != nil {
			return Progress{}, fmt.Errorf("progress event %s: %w", ev.ID, err)
		}
		return p, nil
	case topics.OutcomeCompleted, topics.OutcomeCompensated, topics.OutcomeFailed:
		var o topics.Outcome
		if err := json.Unmarshal(ev.Data, &o); err != nil {
			return Progress{}, fmt.Errorf("outcome event %s: %w", ev.ID, err)
		}
		return FromOutcome(o), nil
	}
	return Progress{}, fmt.Errorf("event %s of type %s: %w", ev.ID, ev.Type, ErrNotProgress)
}

// FromOutput reads a finished saga workflow's output (the outcome
// Run returns), as `sagabridge workflow get` has it from the engine.
func FromOutput(output string) (Progress, error) {
	var o topics.Outcome
	if err := json.Unmarshal([]byte(output), &o); err != nil {
		return Progress{}, fmt.Errorf("saga output: %w", err)
	}
	if o.Status == "" {
		return Progress{}, errors.New("saga output: no outcome status")
	}
	return FromOutcome(o), nil
}

// Of answers "where is this instance?" for `sagabridge workflow
// get` from what the engine keeps: its runtime status, output and custom
// status (engine.Status). A finished saga's outcome wins; a running one
// shows the position its custom status holds; without either, the
// runtime status is all there is, and known is false.
func Of(instanceID, runtimeStatus, output, customStatus string) (p Progress, known bool) {
	if output != "" {
		if p, err := FromOutput(output); err == nil {
			return p, true
		}
	}
	if customStatus != "" {
		var p Progress
		if err := json.Unmarshal([]byte(customStatus), &p); err == nil && p.Status != "" {
			return p, true
		}
	}
	return Progress{InstanceID: instanceID, Status: strings.ToLower(runtimeStatus)}, false
}

// progressSeqFinal orders an outcome after every progress event.
const progressSeqFinal = int(^uint(0) >> 1)

// FromOutcome is the final position of a finished instance.
func FromOutcome(o topics.Outcome) Progress {
	p := Progress{
		Saga: o.Saga, InstanceID: o.InstanceID, Seq: progressSeqFinal,
		Status: o.Status, Since: o.FinishedAt, Outcome: &o,
	}
	for _, s := range o.Steps {
		if s.Status == topics.StepDone {
			p.Done = append(p.Done, s.Name)
		}
	}
	return p
}

// Newer reports whether p supersedes q (same instance, later event).
func (p Progress) Newer(q Progress) bool { return p.Seq > q.Seq }

// Finished reports whether p is the final state.
func (p Progress) Finished() bool { return p.Outcome != nil }

// String is one line for a CLI: "charge-payment (command, attempt 2):
// waiting for event charge-payment.reply since 12:00:01".
func (p Progress) String() string {
	if p.Finished() {
		s := p.Status
		if p.Outcome.Error != "" {
			s += ": " + p.Outcome.Error
		}
		return s
	}
	s := p.Status + " " + p.Step + " (" + p.Kind
	if p.Attempt > 1 {
		s += ", attempt " + strconv.Itoa(p.Attempt)
	}
	s += ")"
	if len(p.WaitingFor) > 0 {
		s += ": waiting for " + strings.Join(p.WaitingFor, ", ")
	}
	return s + " since " + p.Since.Format(time.RFC3339)
}
