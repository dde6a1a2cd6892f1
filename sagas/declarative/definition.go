package declarative

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sagabridge/sagabridge/topics"
)

// Definition is a saga declared in YAML. It compiles to a Saga, so a
// declarative saga runs on exactly the runtime a Go saga does, as a
// workflow of its own name (Definitions.Workflows).
// The YAML schema is in sagas/README.md.
type Definition struct {
	Name string `yaml:"name" json:"name"`
	// Version pins what an instance runs: an instance keeps the version it
	// started with. Change a definition by adding a version.
	Version       int       `yaml:"version" json:"version"`
	Description   string    `yaml:"description,omitempty" json:"description,omitempty"`
	OutcomeTopic  string    `yaml:"outcomeTopic,omitempty" json:"outcomeTopic,omitempty"`
	ProgressTopic string    `yaml:"progressTopic,omitempty" json:"progressTopic,omitempty"`
	NoProgress    bool      `yaml:"noProgress,omitempty" json:"noProgress,omitempty"`
	Steps         []StepDef `yaml:"steps" json:"steps"`

	// Source is where the definition was read ("order.yaml:3").
	Source string `yaml:"-" json:"-"`
	file   string
}

// StepDef is one step: exactly one of command, activity, child, wait or
// parallel, or only decide (a branch).
type StepDef struct {
	Name     string       `yaml:"name" json:"name"`
	Command  *CommandDef  `yaml:"command,omitempty" json:"command,omitempty"`
	Reply    *ReplyDef    `yaml:"reply,omitempty" json:"reply,omitempty"`
	Activity *ActivityDef `yaml:"activity,omitempty" json:"activity,omitempty"`
	Child    *ChildDef    `yaml:"child,omitempty" json:"child,omitempty"`
	Wait     *WaitDef     `yaml:"wait,omitempty" json:"wait,omitempty"`
	Parallel []StepDef    `yaml:"parallel,omitempty" json:"parallel,omitempty"`
	Timeout  Duration     `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Retry    *RetryDef    `yaml:"retry,omitempty" json:"retry,omitempty"`
	// Compensation is the name of a registered compensation, or one
	// written out in place.
	Compensation *CompensationDef `yaml:"compensation,omitempty" json:"compensation,omitempty"`
	// Decide picks the next step from the step's result: the first rule
	// whose condition holds wins; no rule matching goes on.
	Decide []RuleDef `yaml:"decide,omitempty" json:"decide,omitempty"`

	line int
	// decodeErrs are the step's type errors ("line N: …"), kept here so
	// that the step itself is kept: the decoder drops a list item that
	// fails, and the step's other problems would go unreported.
	decodeErrs []string
}

// keep stashes a decoding's type errors in errs and reports success, so
// that the value is kept with what did decode; other errors pass.
func keep(err error, errs *[]string) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		*errs = append(*errs, te.Errors...)
		return nil
	}
	return err
}

// UnmarshalYAML records the step's line for messages.
func (s *StepDef) UnmarshalYAML(n *yaml.Node) error {
	type plain StepDef
	err := n.Decode((*plain)(s))
	s.line = n.Line
	return keep(err, &s.decodeErrs)
}

// Command formats.
const (
	// FormatCloudEvents sends a CloudEvent in structured mode (the default).
	FormatCloudEvents = "cloudevents"
	// FormatJSON sends the data alone, as plain JSON.
	FormatJSON = "json"
)

// CommandDef is where a command goes, what it looks like, and the event
// its reply comes back as. Without format, data and headers it is the
// default command: a CloudEvent of type Type whose data is a
// topics.Command carrying the saga's input.
type CommandDef struct {
	// Topic receives the command.
	Topic string `yaml:"topic" json:"topic"`
	// Type is the CloudEvent type (format cloudevents).
	Type string `yaml:"type" json:"type"`
	// ReplyEvent is the event the step waits for: a raise route raises
	// the participant's reply on the instance under this name.
	ReplyEvent string `yaml:"replyEvent" json:"replyEvent"`
	// Format is cloudevents (default) or json: the data alone, no envelope.
	Format string `yaml:"format,omitempty" json:"format,omitempty" enum:",cloudevents,json"`
	// Data is CEL building the command's data (the whole body for format
	// json) from input, results, instanceId, saga, step, attempt,
	// idempotencyKey and commandId; empty sends a topics.Command.
	Data string `yaml:"data,omitempty" json:"data,omitempty"`
	// Headers are message headers, each a CEL string expression over the
	// same variables.
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`

	// lines are where each key was written ("headers.X" for a header),
	// for messages.
	lines map[string]int
}

// UnmarshalYAML records the keys' lines.
func (c *CommandDef) UnmarshalYAML(n *yaml.Node) error {
	type plain CommandDef
	err := n.Decode((*plain)(c))
	c.lines = keyLines(n)
	return err
}

// keyLines maps each key of a mapping, and of the mappings in it
// ("headers.X"), to its line.
func keyLines(n *yaml.Node) map[string]int {
	out := map[string]int{}
	if n.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		out[k.Value] = k.Line
		if v.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(v.Content); j += 2 {
				out[k.Value+"."+v.Content[j].Value] = v.Content[j].Line
			}
		}
	}
	return out
}

// spec is the runtime's part of it.
func (c CommandDef) spec() topics.CommandSpec {
	return topics.CommandSpec{Topic: c.Topic, Type: c.Type, ReplyEvent: c.ReplyEvent}
}

// ReplyDef says how to read a command's reply payload. The defaults read a
// topics.Reply: status "ok" succeeds, reason says why not. Success,
// reason and result are CEL over reply (the reply's payload), the
// alternative to the field names.
type ReplyDef struct {
	StatusField string   `yaml:"statusField,omitempty" json:"statusField,omitempty"`
	OK          []string `yaml:"ok,omitempty" json:"ok,omitempty"`
	ReasonField string   `yaml:"reasonField,omitempty" json:"reasonField,omitempty"`
	// Success is CEL (bool) over reply: true completes the step, false
	// fails it for good.
	Success string `yaml:"success,omitempty" json:"success,omitempty"`
	// Reason is CEL (string) over reply: why a reply is a failure.
	Reason string `yaml:"reason,omitempty" json:"reason,omitempty"`
	// Result is CEL over reply: the step's result, what later steps read
	// as results.<step>; default the whole reply.
	Result string `yaml:"result,omitempty" json:"result,omitempty"`

	lines map[string]int
}

// UnmarshalYAML records the keys' lines.
func (r *ReplyDef) UnmarshalYAML(n *yaml.Node) error {
	type plain ReplyDef
	err := n.Decode((*plain)(r))
	r.lines = keyLines(n)
	return err
}

// ActivityDef calls an activity by the name it is registered under.
type ActivityDef struct {
	Name   string `yaml:"name" json:"name"`
	Params any    `yaml:"params,omitempty" json:"params,omitempty"`
}

// ChildDef runs a child saga: a registered workflow, or a declarative saga
// by name and version.
type ChildDef struct {
	Workflow string `yaml:"workflow,omitempty" json:"workflow,omitempty"`
	Saga     string `yaml:"saga,omitempty" json:"saga,omitempty"`
	Version  int    `yaml:"version,omitempty" json:"version,omitempty"`
}

// WaitDef waits for an external event; the step's timeout bounds the wait.
type WaitDef struct {
	Event string `yaml:"event" json:"event"`
	// OnTimeout is next, complete, fail (the default) or "goto <step>".
	OnTimeout string `yaml:"onTimeout,omitempty" json:"onTimeout,omitempty"`
	Reason    string `yaml:"reason,omitempty" json:"reason,omitempty"`
}

// RetryDef is a step's or compensation's attempts and backoff.
type RetryDef struct {
	MaxAttempts int      `yaml:"maxAttempts,omitempty" json:"maxAttempts,omitempty"`
	Backoff     Duration `yaml:"backoff,omitempty" json:"backoff,omitempty"`
	MaxBackoff  Duration `yaml:"maxBackoff,omitempty" json:"maxBackoff,omitempty"`
	Multiplier  float64  `yaml:"multiplier,omitempty" json:"multiplier,omitempty"`
}

// CompensationDef is a compensation by reference ("release-inventory") or
// written out.
type CompensationDef struct {
	Ref     string      `yaml:"-" json:"ref,omitempty"`
	Name    string      `yaml:"name" json:"name,omitempty"`
	Command *CommandDef `yaml:"command,omitempty" json:"command,omitempty"`
	// Reply reads the compensation command's reply, as a step's does.
	Reply    *ReplyDef `yaml:"reply,omitempty" json:"reply,omitempty"`
	Activity string    `yaml:"activity,omitempty" json:"activity,omitempty"`
	Timeout  Duration  `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Retry    *RetryDef `yaml:"retry,omitempty" json:"retry,omitempty"`

	line       int
	decodeErrs []string
}

// UnmarshalYAML accepts a name or a mapping.
func (c *CompensationDef) UnmarshalYAML(n *yaml.Node) error {
	c.line = n.Line
	if n.Kind == yaml.ScalarNode {
		c.Ref = n.Value
		return nil
	}
	type plain CompensationDef
	line := c.line
	err := n.Decode((*plain)(c))
	c.line = line
	return keep(err, &c.decodeErrs)
}

// RuleDef is one decision rule.
type RuleDef struct {
	When *CondDef `yaml:"when,omitempty" json:"when,omitempty"`
	// Then is next, complete, fail or "goto <step>".
	Then   string `yaml:"then" json:"then"`
	Reason string `yaml:"reason,omitempty" json:"reason,omitempty"`
}

// CondDef holds when the value at Field (a dotted path into the step's
// result) equals Equals.
type CondDef struct {
	Field  string `yaml:"field" json:"field"`
	Equals any    `yaml:"equals" json:"equals"`
}

// Duration is a duration written with its unit ("30s", "24h"); a bare
// number is refused, since YAML would read 30 as 30 nanoseconds.
type Duration time.Duration

// UnmarshalYAML parses "30s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	// A *yaml.TypeError lets the decoder go on and report the other
	// problems of the file too.
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: a duration is a string such as 30s", n.Line)}}
	}
	if n.Value == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: duration %q: write it with a unit, such as 30s or 5m", n.Line, n.Value)}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes "30s".
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalJSON writes "30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }
