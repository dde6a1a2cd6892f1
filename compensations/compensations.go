// Package compensations holds the actions that undo saga steps and the
// registry that names them, so a saga written in Go and one declared in YAML
// refer to the same compensation by the same name.
//
// A compensation is either a command to a participant (release the stock,
// refund the charge) with the reply that confirms it, or a registered
// activity that undoes the step itself. Compensations must be idempotent:
// the saga retries one until it is confirmed, each attempt with a new
// deterministic command id, and a worker crash can repeat an attempt.
package compensations

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/sagabridge/sagabridge/topics"
)

// Compensation undoes one step.
type Compensation struct {
	Name string
	// Command is sent to a participant; the compensation is confirmed by a
	// reply with status "ok". A refusal is retried: the participant may be
	// able to undo later (a stock service restarting, say).
	Command topics.CommandSpec
	// Activity, instead of Command, is the registered name of an activity
	// that undoes the step; it gets a sagas.Request with Compensate set.
	// Returning nil confirms the compensation.
	Activity string
	// Timeout is how long one command attempt waits for the confirming
	// reply. For an activity it is optional and reaches the activity as
	// the request's deadline: the engine cannot cancel a running activity.
	Timeout time.Duration
	// MaxAttempts is how many attempts are made before the saga gives up
	// and ends "failed", listing this compensation as not undone. 0 means 1.
	MaxAttempts int
	// Backoff is the wait between attempts; zero retries at once.
	Backoff Backoff
}

// IsCommand reports whether the compensation is a command (not an activity).
func (c Compensation) IsCommand() bool { return c.Command != (topics.CommandSpec{}) }

// Attempts is MaxAttempts with 0 read as 1.
func (c Compensation) Attempts() int { return max(c.MaxAttempts, 1) }

// Validate reports every problem at once.
func (c Compensation) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("compensation: name is required"))
	}
	switch {
	case c.IsCommand() && c.Activity != "":
		errs = append(errs, fmt.Errorf("compensation %s: set command or activity, not both", c.Name))
	case c.IsCommand():
		if c.Command.Topic == "" || c.Command.Type == "" || c.Command.ReplyEvent == "" {
			errs = append(errs, fmt.Errorf("compensation %s: command needs topic, type and replyEvent", c.Name))
		}
		if c.Timeout <= 0 {
			errs = append(errs, fmt.Errorf("compensation %s: timeout must be positive", c.Name))
		}
	case c.Activity != "":
		if c.Timeout < 0 {
			errs = append(errs, fmt.Errorf("compensation %s: timeout must not be negative", c.Name))
		}
	default:
		errs = append(errs, fmt.Errorf("compensation %s: needs a command or an activity", c.Name))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("compensation %s: maxAttempts must not be negative", c.Name))
	}
	if err := c.Backoff.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("compensation %s: %w", c.Name, err))
	}
	return errors.Join(errs...)
}

// Registry names compensations.
type Registry struct {
	byName map[string]Compensation
}

// NewRegistry validates and indexes compensations; names must be unique.
func NewRegistry(cs ...Compensation) (*Registry, error) {
	r := &Registry{byName: make(map[string]Compensation, len(cs))}
	var errs []error
	for _, c := range cs {
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := r.byName[c.Name]; dup {
			errs = append(errs, fmt.Errorf("compensation %s: registered twice", c.Name))
			continue
		}
		r.byName[c.Name] = c
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// Get returns a compensation by name. A nil registry has none.
func (r *Registry) Get(name string) (Compensation, bool) {
	if r == nil {
		return Compensation{}, false
	}
	c, ok := r.byName[name]
	return c, ok
}

// Names lists the registered compensations, sorted.
func (r *Registry) Names() []string {
	if r == nil {
		return nil
	}
	out := make([]string, 0, len(r.byName))
	for n := range r.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
