package config

import (
	"bytes"
	"fmt"
	"reflect"
	"sort"
	"time"

	"gopkg.in/yaml.v3"
)

// Migration moves workflows off a legacy choreography one at a time: per
// workflow, shadow (observe the legacy flow, send nothing), canary (drive a
// stable share of instances, observe the rest) or active (drive all).
//
// Mode and percent can change while the bridge runs (SIGHUP re-reads the
// file): each instance keeps the mode it started with.
type Migration struct {
	// ShadowOutcomesTopic receives shadow instances' would-be outcomes;
	// default sagabridge.shadow.outcomes.
	ShadowOutcomesTopic string `yaml:"shadowOutcomesTopic"`
	// DivergencesTopic receives one event per divergence; default
	// sagabridge.divergences.
	DivergencesTopic string `yaml:"divergencesTopic"`
	// Workflows maps a workflow name (as start routes name it) to its
	// migration.
	Workflows map[string]MigratingWorkflow `yaml:"workflows"`
}

// MigratingWorkflow is one workflow's place on the way from choreography.
type MigratingWorkflow struct {
	// Mode is shadow, canary or active.
	Mode string `yaml:"mode" enum:"shadow,canary,active" required:"true"`
	// Percent is the canary share (0..100) of instances the saga drives,
	// chosen by a stable hash of the instance ID.
	Percent int `yaml:"percent"`
	// HandoffTopic receives the start event of every instance the saga does
	// not drive, byte for byte: the legacy flow's first service consumes
	// it instead of the original topic, so it never sees the instances the
	// saga drives. Required for canary.
	HandoffTopic string `yaml:"handoffTopic"`
	// ObserveEvent is the external event name the observation routes raise
	// legacy events as; default "legacy".
	ObserveEvent string `yaml:"observeEvent"`
	// Timeout is how long the legacy flow may take for one step before a
	// shadow instance calls it stuck; default: the step's own timeout ×
	// attempts.
	Timeout time.Duration `yaml:"timeout"`
	// Steps maps the saga's step names to the legacy event types that show
	// the step done, failed or undone.
	Steps map[string]LegacyStep `yaml:"steps"`
}

// LegacyStep lists legacy event types (CloudEvent type attributes).
type LegacyStep struct {
	// Done are the types that show the step succeeded.
	Done []string `yaml:"done"`
	// Failed are the types that show the step failed.
	Failed []string `yaml:"failed"`
	// Undone are the types that show the step was compensated.
	Undone []string `yaml:"undone"`
}

// Migration modes.
const (
	MigrationShadow = "shadow"
	MigrationCanary = "canary"
	MigrationActive = "active"
)

func (m *Migration) setDefaults() {
	if m.ShadowOutcomesTopic == "" {
		m.ShadowOutcomesTopic = "sagabridge.shadow.outcomes"
	}
	if m.DivergencesTopic == "" {
		m.DivergencesTopic = "sagabridge.divergences"
	}
	for name, w := range m.Workflows {
		if w.ObserveEvent == "" {
			w.ObserveEvent = "legacy"
		}
		m.Workflows[name] = w
	}
}

func (c *Config) validateMigration(bad badFunc) {
	names := make([]string, 0, len(c.Migration.Workflows))
	for name := range c.Migration.Workflows {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		w := c.Migration.Workflows[name]
		at := func(k ...any) []any { return append([]any{"migration", "workflows", name}, k...) }
		switch w.Mode {
		case MigrationShadow, MigrationActive:
			if w.Percent != 0 {
				bad(at("percent"), "workflow %s: percent applies to canary mode only", name)
			}
		case MigrationCanary:
			if w.Percent < 0 || w.Percent > 100 {
				bad(at("percent"), "workflow %s: percent %d is not within 0..100", name, w.Percent)
			}
			if w.HandoffTopic == "" {
				bad(at(), "workflow %s: canary needs a handoffTopic: the legacy flow must start from it, or it would also run the instances the saga drives", name)
			}
		default:
			bad(at("mode"), "workflow %s: mode %q is not shadow, canary or active", name, w.Mode)
		}
		if (w.Mode == MigrationShadow || w.Mode == MigrationCanary) && len(w.Steps) == 0 {
			bad(at(), "workflow %s: %s mode needs steps: which legacy events show each step", name, w.Mode)
		}
		if w.Timeout < 0 {
			bad(at("timeout"), "workflow %s: timeout must not be negative", name)
		}
		seen := map[string]string{}
		steps := make([]string, 0, len(w.Steps))
		for s := range w.Steps {
			steps = append(steps, s)
		}
		sort.Strings(steps)
		for _, s := range steps {
			ls := w.Steps[s]
			if len(ls.Done) == 0 && len(ls.Failed) == 0 {
				bad(at("steps", s), "workflow %s: step %s lists no done or failed event types", name, s)
			}
			for _, t := range append(append(append([]string(nil), ls.Done...), ls.Failed...), ls.Undone...) {
				if prev, dup := seen[t]; dup {
					bad(at("steps", s), "workflow %s: event type %q shows both %s and %s", name, t, prev, s)
				}
				seen[t] = s
			}
		}
		if !c.startsWorkflow(name) {
			bad(at(), "workflow %s: no start or startOrRaise route starts it", name)
		}
	}
}

func (c *Config) startsWorkflow(name string) bool {
	for _, r := range c.Routes {
		if (r.Start != nil && r.Start.Workflow == name) || (r.StartOrRaise != nil && r.StartOrRaise.Workflow == name) {
			return true
		}
	}
	return false
}

// MigrationChanges says whether next differs from c only where the bridge
// can apply it while running: each workflow's mode and percent. Anything
// else (topics, steps, the set of workflows) needs a restart.
func (c *Config) MigrationChanges(next *Config) error {
	a, b := c.Migration, next.Migration
	if a.ShadowOutcomesTopic != b.ShadowOutcomesTopic || a.DivergencesTopic != b.DivergencesTopic {
		return fmt.Errorf("migration topics changed: restart to apply")
	}
	if len(a.Workflows) != len(b.Workflows) {
		return fmt.Errorf("the set of migrating workflows changed: restart to apply")
	}
	for name, w := range a.Workflows {
		n, ok := b.Workflows[name]
		if !ok {
			return fmt.Errorf("workflow %s left the migration: restart to apply", name)
		}
		w.Mode, w.Percent, n.Mode, n.Percent = "", 0, "", 0
		if !reflect.DeepEqual(w, n) {
			return fmt.Errorf("workflow %s: only mode and percent change without a restart", name)
		}
	}
	return nil
}

// MergeMigration adds a fragment's routes and migration block (named name
// in errors) to c, sets workflow's mode and percent, and checks the whole
// again: a base config and a migration fragment load as one file would.
func (c *Config) MergeMigration(name string, fragment []byte, workflow, mode string, percent int) error {
	var frag struct {
		Routes    []Route   `yaml:"routes"`
		Migration Migration `yaml:"migration"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(fragment))
	dec.KnownFields(true)
	if err := dec.Decode(&frag); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	w, ok := frag.Migration.Workflows[workflow]
	if !ok {
		return fmt.Errorf("%s: no migration for workflow %q", name, workflow)
	}
	w.Mode, w.Percent = mode, percent
	frag.Migration.Workflows[workflow] = w
	c.Routes = append(c.Routes, frag.Routes...)
	c.Migration = frag.Migration
	return c.Normalize()
}
