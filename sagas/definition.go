package sagas

import (
	"encoding/json"
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
	Name     string              `yaml:"name" json:"name"`
	Command  *topics.CommandSpec `yaml:"command,omitempty" json:"command,omitempty"`
	Reply    *ReplyDef           `yaml:"reply,omitempty" json:"reply,omitempty"`
	Activity *ActivityDef        `yaml:"activity,omitempty" json:"activity,omitempty"`
	Child    *ChildDef           `yaml:"child,omitempty" json:"child,omitempty"`
	Wait     *WaitDef            `yaml:"wait,omitempty" json:"wait,omitempty"`
	Parallel []StepDef           `yaml:"parallel,omitempty" json:"parallel,omitempty"`
	Timeout  Duration            `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Retry    *RetryDef           `yaml:"retry,omitempty" json:"retry,omitempty"`
	// Compensation is the name of a registered compensation, or one
	// written out in place.
	Compensation *CompensationDef `yaml:"compensation,omitempty" json:"compensation,omitempty"`
	// Decide picks the next step from the step's result: the first rule
	// whose condition holds wins; no rule matching goes on.
	Decide []RuleDef `yaml:"decide,omitempty" json:"decide,omitempty"`

	line int
}

// UnmarshalYAML records the step's line for messages.
func (s *StepDef) UnmarshalYAML(n *yaml.Node) error {
	type plain StepDef
	if err := n.Decode((*plain)(s)); err != nil {
		return err
	}
	s.line = n.Line
	return nil
}

// ReplyDef says how to read a command's reply payload. The defaults read a
// topics.Reply: status "ok" succeeds, reason says why not.
type ReplyDef struct {
	StatusField string   `yaml:"statusField,omitempty" json:"statusField,omitempty"`
	OK          []string `yaml:"ok,omitempty" json:"ok,omitempty"`
	ReasonField string   `yaml:"reasonField,omitempty" json:"reasonField,omitempty"`
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
	Ref      string              `yaml:"-" json:"ref,omitempty"`
	Name     string              `yaml:"name" json:"name,omitempty"`
	Command  *topics.CommandSpec `yaml:"command,omitempty" json:"command,omitempty"`
	Activity string              `yaml:"activity,omitempty" json:"activity,omitempty"`
	Timeout  Duration            `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Retry    *RetryDef           `yaml:"retry,omitempty" json:"retry,omitempty"`

	line int
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
	if err := n.Decode((*plain)(c)); err != nil {
		return err
	}
	c.line = line
	return nil
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
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration is a string such as 30s", n.Line)
	}
	if n.Value == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: duration %q: write it with a unit, such as 30s or 5m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes "30s".
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalJSON writes "30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }
