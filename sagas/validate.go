package sagas

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sagabridge/sagabridge/topics"
)

// Validate reports every problem at once. Run validates too (the check is
// pure, so replays repeat it harmlessly), but a saga's tests should call
// Validate so that a broken definition fails before it is deployed.
func (s Saga) Validate() error {
	return s.ValidateAt(func(st *Step) string {
		return fmt.Sprintf("saga %s step %s", s.Name, st.Name)
	})
}

// ValidateAt is Validate with each step named by where in the messages: a
// loader of declared sagas puts the step's file:line there.
func (s Saga) ValidateAt(where func(*Step) string) error {
	return errors.Join(s.problems(where)...)
}

// problems lists what is wrong; where names a step in a message (the
// declarative loader puts file:line there).
func (s Saga) problems(where func(*Step) string) []error {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("saga: name is required"))
	}
	if len(s.Steps) == 0 {
		errs = append(errs, fmt.Errorf("saga %s: no steps", s.Name))
	}
	seen := map[string]bool{}
	index := map[string]int{}
	for i := range s.Steps {
		index[s.Steps[i].Name] = i
	}
	for i := range s.Steps {
		st := &s.Steps[i]
		errs = append(errs, st.problems(where, true, seen)...)
		if st.Wait != nil && st.Wait.OnTimeout.kind == decideGoto {
			if j, ok := index[st.Wait.OnTimeout.target]; !ok || j <= i {
				errs = append(errs, fmt.Errorf("%s: onTimeout: goto %s is not a later step", where(st), st.Wait.OnTimeout.target))
			}
		}
	}
	return errs
}

func (st *Step) problems(where func(*Step) string, top bool, seen map[string]bool) []error {
	var errs []error
	w := where(st)
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{w}, args...)...))
	}
	switch {
	case st.Name == "":
		add("name is required")
	case !topics.ValidName(st.Name):
		add("name %q may hold only letters, digits and _ . @ -", st.Name)
	case seen[st.Name]:
		add("duplicate step name")
	}
	seen[st.Name] = true

	kinds := st.kinds()
	switch {
	case len(kinds) > 1:
		add("has several actions (%s); give it one", strings.Join(kinds, ", "))
	case len(kinds) == 0 && st.Decide == nil:
		add("needs an action: command, activity, child, wait, parallel or func")
	}
	if st.MaxAttempts < 0 {
		add("maxAttempts must not be negative")
	}
	if err := st.Backoff.Validate(); err != nil {
		add("%v", err)
	}
	if st.Compensation != nil {
		if err := st.Compensation.Validate(); err != nil {
			add("%v", err)
		}
	}
	if st.Reply != nil && !st.isCommand() {
		add("a reply rule needs a command")
	}
	if !top && st.Decide != nil {
		add("only top-level steps decide")
	}
	if st.Kind() == KindParallel {
		return append(errs, st.groupProblems(where, top, seen)...)
	}
	st.kindProblems(top, add)
	if k := st.Kind(); k == KindWait || k == KindBranch {
		errs = append(errs, noInput(st, w)...)
	}
	return errs
}

// kindProblems checks what the step's kind asks of it (but a parallel
// group's, which groupProblems checks).
func (st *Step) kindProblems(top bool, add func(format string, args ...any)) {
	switch st.Kind() {
	case KindCommand:
		if st.Command.Topic == "" || st.Command.Type == "" || st.Command.ReplyEvent == "" {
			add("command needs topic, type and replyEvent")
		}
		if st.Timeout <= 0 {
			add("timeout must be positive")
		}
	case KindActivity:
		if st.Activity.Name == "" {
			add("activity needs a name")
		}
		if st.Timeout < 0 {
			add("timeout must not be negative")
		}
	case KindChild:
		if st.Child.Workflow == "" && st.Child.Definition == "" {
			add("child needs a workflow or a definition")
		}
		if st.Child.Definition != "" && st.Child.Version < 1 {
			add("child definition %s needs a version (1 or more)", st.Child.Definition)
		}
		if st.Timeout != 0 {
			add("a child step takes no timeout: bound the child's own steps")
		}
	case KindWait:
		if st.Wait.Event == "" {
			add("wait needs an event")
		}
		if st.Timeout <= 0 {
			add("timeout must be positive")
		}
		if st.MaxAttempts > 1 {
			add("a wait is never repeated; maxAttempts must be 0 or 1")
		}
	case KindFunc:
		if !top {
			add("a func step cannot be a member of a parallel group")
		}
	case KindBranch:
		if st.Timeout != 0 || st.MaxAttempts != 0 || st.Compensation != nil {
			add("a branch step takes no timeout, retries or compensation")
		}
	}
}

func (st *Step) groupProblems(where func(*Step) string, top bool, seen map[string]bool) []error {
	var errs []error
	w := where(st)
	if !top {
		errs = append(errs, fmt.Errorf("%s: parallel groups do not nest", w))
	}
	if len(st.Parallel) == 0 {
		errs = append(errs, fmt.Errorf("%s: parallel group has no members", w))
	}
	if st.Timeout != 0 || st.MaxAttempts != 0 || st.Backoff != (Backoff{}) || st.Compensation != nil {
		errs = append(errs, fmt.Errorf("%s: a parallel group takes no timeout, retries or compensation; its members do", w))
	}
	errs = append(errs, noInput(st, w)...)
	events := map[string]string{}
	for k := range st.Parallel {
		m := &st.Parallel[k]
		errs = append(errs, m.problems(where, false, seen)...)
		mw := where(m)
		switch m.Kind() {
		case KindCommand, KindActivity, KindChild, KindWait:
		case "":
		default:
			errs = append(errs, fmt.Errorf("%s: a parallel member is a command, activity, child or wait", mw))
		}
		if m.Wait != nil && m.Wait.OnTimeout.kind != decideFail {
			errs = append(errs, fmt.Errorf("%s: a parallel member's wait cannot decide on timeout", mw))
		}
		for _, ev := range []string{m.Command.ReplyEvent, waitEvent(m)} {
			if ev == "" {
				continue
			}
			key := strings.ToUpper(ev) // the engine matches event names without case
			if other, dup := events[key]; dup {
				errs = append(errs, fmt.Errorf("%s: waits for event %s like member %s; the engine could not tell their replies apart", mw, ev, other))
			}
			events[key] = m.Name
		}
	}
	return errs
}

func noInput(st *Step, w string) []error {
	if st.Input != nil {
		return []error{fmt.Errorf("%s: a %s step sends nothing, so it takes no input", w, st.Kind())}
	}
	return nil
}

func waitEvent(st *Step) string {
	if st.Wait == nil {
		return ""
	}
	return st.Wait.Event
}
