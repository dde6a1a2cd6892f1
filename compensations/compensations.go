// Package compensations holds the actions that undo saga steps and the
// registry that names them, so a saga written in Go and one declared in YAML
// refer to the same compensation by the same name.
//
// A compensation here is a command to a participant (release the stock,
// refund the charge) and the reply that confirms it. Compensations must be
// idempotent on the participant's side: the saga retries one until it is
// confirmed, and each attempt carries a new deterministic command id.
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
	Name    string
	Command topics.CommandSpec
	// Timeout is how long one attempt waits for the confirming reply.
	Timeout time.Duration
	// MaxAttempts is how many commands are sent before the saga gives up
	// and ends "failed", listing this compensation as not undone.
	MaxAttempts int
}

// Validate reports every problem at once.
func (c Compensation) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("compensation: name is required"))
	}
	if c.Command.Topic == "" || c.Command.Type == "" || c.Command.ReplyEvent == "" {
		errs = append(errs, fmt.Errorf("compensation %s: command needs topic, type and replyEvent", c.Name))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("compensation %s: timeout must be positive", c.Name))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("compensation %s: maxAttempts must be at least 1", c.Name))
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

// Get returns a compensation by name.
func (r *Registry) Get(name string) (Compensation, bool) {
	c, ok := r.byName[name]
	return c, ok
}

// Names lists the registered compensations, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.byName))
	for n := range r.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
