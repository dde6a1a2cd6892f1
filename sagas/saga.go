package sagas

import (
	"errors"
	"fmt"
	"time"

	"github.com/sagabridge/sagabridge/compensations"
	"github.com/sagabridge/sagabridge/topics"
)

// Saga is a definition: a name (the workflow name it runs under) and steps.
type Saga struct {
	Name  string
	Steps []Step
	// OutcomeTopic receives the outcome event; default topics.Outcomes.
	OutcomeTopic string
}

// Step is one forward action and how to undo it.
type Step struct {
	Name string
	// Command is sent to a participant; the step waits for its reply.
	Command topics.CommandSpec
	// Timeout is how long one attempt waits for the reply.
	Timeout time.Duration
	// MaxAttempts is how many times the command is sent when no reply comes
	// in time. A reply with status "failed" is final and is not retried.
	MaxAttempts int
	// Compensation undoes the step; nil for steps with nothing to undo.
	Compensation *compensations.Compensation
}

// Validate reports every problem at once.
func (s Saga) Validate() error {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("saga: name is required"))
	}
	if len(s.Steps) == 0 {
		errs = append(errs, fmt.Errorf("saga %s: no steps", s.Name))
	}
	seen := map[string]bool{}
	for i, st := range s.Steps {
		where := fmt.Sprintf("saga %s step %d (%s)", s.Name, i+1, st.Name)
		if st.Name == "" {
			errs = append(errs, fmt.Errorf("%s: name is required", where))
		}
		if seen[st.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate step name", where))
		}
		seen[st.Name] = true
		if st.Command.Topic == "" || st.Command.Type == "" || st.Command.ReplyEvent == "" {
			errs = append(errs, fmt.Errorf("%s: command needs topic, type and replyEvent", where))
		}
		if st.Timeout <= 0 {
			errs = append(errs, fmt.Errorf("%s: timeout must be positive", where))
		}
		if st.MaxAttempts < 1 {
			errs = append(errs, fmt.Errorf("%s: maxAttempts must be at least 1", where))
		}
		if st.Compensation != nil {
			if err := st.Compensation.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (s Saga) outcomeTopic() string {
	if s.OutcomeTopic != "" {
		return s.OutcomeTopic
	}
	return topics.Outcomes
}
