package declarative

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/google/cel-go/cel"

	"github.com/sagabridge/sagabridge/compensations"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/topics"
)

// compile turns a definition into a Saga, resolving compensation names in
// comps. It returns the definition with those names written out (what the
// digest is computed over) and every problem, each with file:line.
func (d Definition) compile(comps *compensations.Registry) (sagas.Saga, Definition, []error) {
	c := &compiler{def: d, comps: comps, lines: map[*sagas.Step]int{}}
	where := func(st *sagas.Step) string {
		return c.at(c.lines[st]) + fmt.Sprintf(": saga %s v%d step %s", d.Name, d.Version, st.Name)
	}
	if d.Name == "" {
		c.errs = append(c.errs, fmt.Errorf("%s: saga name is required", c.at(0)))
	} else if !topics.ValidName(d.Name) {
		c.errs = append(c.errs, fmt.Errorf("%s: saga name %q may hold only letters, digits and _ . @ -", c.at(0), d.Name))
	}
	if d.Version < 1 {
		c.errs = append(c.errs, fmt.Errorf("%s: saga %s: version must be 1 or more", c.at(0), d.Name))
	}
	s := sagas.Saga{
		Name: d.Name, Version: d.Version,
		OutcomeTopic: d.OutcomeTopic, ProgressTopic: d.ProgressTopic, NoProgress: d.NoProgress,
	}
	resolved := d
	resolved.Steps = make([]StepDef, len(d.Steps))
	top := make([]string, len(d.Steps))
	for i := range d.Steps {
		top[i] = d.Steps[i].Name
	}
	s.Steps = make([]sagas.Step, len(d.Steps))
	for i, sd := range d.Steps {
		s.Steps[i], resolved.Steps[i] = c.step(sd, top[i+1:])
		c.mark(&s.Steps[i], sd)
	}
	if d.Name != "" && len(s.Steps) > 0 {
		if err := s.ValidateAt(where); err != nil {
			c.errs = append(c.errs, err)
		}
	} else if len(s.Steps) == 0 {
		c.errs = append(c.errs, fmt.Errorf("%s: saga %s: no steps", c.at(0), d.Name))
	}
	return s, resolved, c.errs
}

type compiler struct {
	def   Definition
	comps *compensations.Registry
	lines map[*sagas.Step]int // where each compiled step was written
	errs  []error
	cel   *cel.Env
}

// env is the CEL environment of the saga's expressions, made once.
func (c *compiler) env() *cel.Env {
	if c.cel == nil {
		env, err := stepEnv()
		if err != nil {
			panic(fmt.Sprintf("sagas: cel environment: %v", err)) // fixed declarations: a bug
		}
		c.cel = env
	}
	return c.cel
}

// mark records the lines of a compiled step and its members.
func (c *compiler) mark(st *sagas.Step, sd StepDef) {
	c.lines[st] = sd.line
	for k := range st.Parallel {
		if k < len(sd.Parallel) {
			c.mark(&st.Parallel[k], sd.Parallel[k])
		}
	}
}

// at is "file:line", or the definition's source when line is unknown.
func (c *compiler) at(line int) string {
	switch {
	case line > 0 && c.def.file != "":
		return fmt.Sprintf("%s:%d", c.def.file, line)
	case line > 0:
		return fmt.Sprintf("line %d", line)
	case c.def.Source != "":
		return c.def.Source
	}
	return "saga " + c.def.Name
}

func (c *compiler) fail(line int, step, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s: saga %s v%d step %s: %s",
		c.at(line), c.def.Name, c.def.Version, step, fmt.Sprintf(format, args...)))
}

// step compiles one step; later lists the top-level steps after it, the
// only places a goto may jump to.
func (c *compiler) step(sd StepDef, later []string) (sagas.Step, StepDef) {
	st := sagas.Step{Name: sd.Name, Timeout: time.Duration(sd.Timeout)}
	if sd.Command != nil {
		st.Command = sd.Command.spec()
		if st.Command == (topics.CommandSpec{}) {
			c.fail(sd.line, sd.Name, "command needs topic, type and replyEvent")
		}
		st.Message = messageOf(c.env(), sd.Command, func(key string, err error) {
			c.fail(lineOf(sd.Command.lines, key, sd.line), sd.Name, "command: %v", err)
		})
	}
	if sd.Reply != nil {
		st.Reply = sd.Reply.rule()
		rule, result := replyOf(c.env(), sd.Reply, func(key string, err error) {
			c.fail(lineOf(sd.Reply.lines, key, sd.line), sd.Name, "%v", err)
		})
		if rule != nil {
			st.Reply = rule
		}
		st.ReplyResult = result
	}
	if sd.Activity != nil {
		st.Activity = &sagas.Activity{Name: sd.Activity.Name, Params: sd.Activity.Params}
	}
	if sd.Child != nil {
		st.Child = &sagas.Child{Workflow: sd.Child.Workflow, Definition: sd.Child.Saga, Version: sd.Child.Version}
	}
	if sd.Wait != nil {
		d, err := ParseDecision(sd.Wait.OnTimeout, sd.Wait.Reason)
		if err != nil {
			c.fail(sd.line, sd.Name, "onTimeout: %v", err)
		}
		st.Wait = &sagas.Wait{Event: sd.Wait.Event, OnTimeout: d}
	}
	if sd.Retry != nil {
		st.MaxAttempts, st.Backoff = sd.Retry.MaxAttempts, sd.Retry.backoff()
	}
	rd := sd
	if sd.Parallel != nil {
		st.Parallel = make([]sagas.Step, len(sd.Parallel))
		rd.Parallel = make([]StepDef, len(sd.Parallel))
		for k, m := range sd.Parallel {
			st.Parallel[k], rd.Parallel[k] = c.step(m, nil)
		}
	}
	if sd.Compensation != nil {
		if comp, written, ok := c.compensation(sd); ok {
			st.Compensation, rd.Compensation = &comp, &written
		}
		if cmd := sd.Compensation.Command; cmd != nil {
			st.UndoMessage = messageOf(c.env(), cmd, func(key string, err error) {
				c.fail(lineOf(cmd.lines, key, sd.Compensation.line), sd.Name, "compensation command: %v", err)
			})
		}
		if rd := sd.Compensation.Reply; rd != nil {
			st.UndoReply = rd.rule()
			rule, result := replyOf(c.env(), rd, func(key string, err error) {
				c.fail(lineOf(rd.lines, key, sd.Compensation.line), sd.Name, "compensation %v", err)
			})
			if rule != nil {
				st.UndoReply = rule
			}
			if result != nil {
				c.fail(sd.Compensation.line, sd.Name, "compensation reply: a compensation has no result")
			}
		}
	}
	if len(sd.Decide) > 0 {
		st.Decide = c.rules(sd, later)
	}
	return st, rd
}

// lineOf is the line of key in a block, or def when it is not known.
func lineOf(lines map[string]int, key string, def int) int {
	if l, ok := lines[key]; ok {
		return l
	}
	return def
}

func (r *RetryDef) backoff() sagas.Backoff {
	return sagas.Backoff{Initial: time.Duration(r.Backoff), Max: time.Duration(r.MaxBackoff), Multiplier: r.Multiplier}
}

// compensation resolves a step's compensation; ok is false when the name
// it refers to is unknown (reported here, so validation does not repeat it).
func (c *compiler) compensation(sd StepDef) (compensations.Compensation, CompensationDef, bool) {
	cd := *sd.Compensation
	if cd.Ref != "" {
		comp, ok := c.comps.Get(cd.Ref)
		if !ok {
			c.fail(cd.line, sd.Name, "compensation %q is not registered (known: %s)", cd.Ref, strings.Join(c.comps.Names(), ", "))
			return comp, cd, false
		}
		written := CompensationDef{Name: comp.Name, Activity: comp.Activity, Timeout: Duration(comp.Timeout),
			Retry: &RetryDef{MaxAttempts: comp.MaxAttempts, Backoff: Duration(comp.Backoff.Initial),
				MaxBackoff: Duration(comp.Backoff.Max), Multiplier: comp.Backoff.Multiplier}}
		if comp.IsCommand() {
			cmd := comp.Command
			written.Command = &CommandDef{Topic: cmd.Topic, Type: cmd.Type, ReplyEvent: cmd.ReplyEvent}
		}
		return comp, written, true
	}
	comp := compensations.Compensation{Name: cd.Name, Activity: cd.Activity, Timeout: time.Duration(cd.Timeout)}
	if cd.Command != nil {
		comp.Command = cd.Command.spec()
	}
	if cd.Retry != nil {
		comp.MaxAttempts, comp.Backoff = cd.Retry.MaxAttempts, cd.Retry.backoff()
	}
	return comp, cd, true
}

// rules compiles decide rules into a Decide function. Decisions and goto
// targets are checked here, so a typo fails at load, not mid-saga.
func (c *compiler) rules(sd StepDef, later []string) func(*sagas.State) (sagas.Decision, error) {
	type rule struct {
		field  []string
		equals any
		always bool
		then   sagas.Decision
	}
	var rs []rule
	for _, rd := range sd.Decide {
		d, err := ParseDecision(rd.Then, rd.Reason)
		if err != nil {
			c.fail(sd.line, sd.Name, "decide: %v", err)
			continue
		}
		if d.Target() != "" && !contains(later, d.Target()) {
			c.fail(sd.line, sd.Name, "decide: goto %s is not a later step", d.Target())
		}
		r := rule{then: d, always: rd.When == nil}
		if rd.When != nil {
			if rd.When.Field == "" {
				c.fail(sd.line, sd.Name, "decide: when needs a field")
			}
			r.field = strings.Split(rd.When.Field, ".")
			r.equals = normalize(rd.When.Equals)
		}
		rs = append(rs, r)
	}
	name := sd.Name
	return func(s *sagas.State) (sagas.Decision, error) {
		var result any
		if raw := s.Results[name]; len(raw) > 0 {
			if err := json.Unmarshal(raw, &result); err != nil {
				return sagas.Decision{}, fmt.Errorf("result of %s is not JSON: %w", name, err)
			}
		}
		for _, r := range rs {
			if r.always || reflect.DeepEqual(lookup(result, r.field), r.equals) {
				return r.then, nil
			}
		}
		return sagas.Next(), nil
	}
}

func (r *ReplyDef) rule() sagas.ReplyRule {
	status, ok, reason := r.StatusField, r.OK, r.ReasonField
	if status == "" {
		status = "status"
	}
	if len(ok) == 0 {
		ok = []string{topics.ReplyOK}
	}
	if reason == "" {
		reason = "reason"
	}
	statusPath, reasonPath := strings.Split(status, "."), strings.Split(reason, ".")
	return func(payload json.RawMessage) (bool, string) {
		var v any
		if err := json.Unmarshal(payload, &v); err != nil {
			return false, "undecodable reply: " + err.Error()
		}
		got, _ := lookup(v, statusPath).(string)
		if contains(ok, got) {
			return true, ""
		}
		if why, _ := lookup(v, reasonPath).(string); why != "" {
			return false, why
		}
		return false, fmt.Sprintf("participant replied %s %q", status, got)
	}
}

// lookup follows a dotted path through decoded JSON; nil when absent.
func lookup(v any, path []string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// normalize gives a YAML value the shape encoding/json decodes JSON into,
// so that 5 in YAML equals 5 in a payload.
func normalize(v any) any {
	raw, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		return v
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// ParseDecision reads the YAML form of a decision (see String); reason is
// used by "fail".
func ParseDecision(s, reason string) (sagas.Decision, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "next":
		return sagas.Next(), nil
	case s == "complete":
		return sagas.Complete(), nil
	case s == "fail" || s == "":
		return sagas.Fail(reason), nil
	case strings.HasPrefix(s, "goto "):
		target := strings.TrimSpace(strings.TrimPrefix(s, "goto "))
		if target == "" {
			return sagas.Decision{}, fmt.Errorf("decision %q: goto needs a step name", s)
		}
		return sagas.Goto(target), nil
	}
	return sagas.Decision{}, fmt.Errorf("decision %q is not next, complete, fail or \"goto <step>\"", s)
}
