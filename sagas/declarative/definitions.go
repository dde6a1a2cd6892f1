package declarative

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/compensations"
	"github.com/sagabridge/sagabridge/sagas"
)

// Errors of the declarative orchestrator.
var (
	// ErrUnknownDefinition: the instance names a definition this worker
	// has not loaded. Keep every version loaded while instances run it.
	ErrUnknownDefinition = errors.New("saga definition not loaded")
	// ErrDefinitionChanged: the loaded definition differs from the one the
	// instance started with. A version must never change once instances
	// run it; add a version instead.
	ErrDefinitionChanged = errors.New("saga definition changed since the instance started")
	// ErrVersionNotPinned: the start input names no version. An instance
	// must run one version for its whole life, so the version is chosen
	// when it starts (Definitions.Start), never while it replays.
	ErrVersionNotPinned = errors.New("saga version not pinned in the start input")
)

// Definitions holds every loaded version of every declarative saga; each
// saga runs as a workflow of its own name (Workflows). It is immutable once
// built, which is what makes the lookup while a saga replays deterministic.
type Definitions struct {
	byKey  map[string]loaded
	latest map[string]int
}

type loaded struct {
	def    Definition
	saga   sagas.Saga
	digest string
}

func key(name string, version int) string { return name + "@" + strconv.Itoa(version) }

// NewDefinitions compiles and validates definitions, resolving
// compensation names in comps (which may be nil if none are named). It
// reports every problem of every definition, each with file:line, and
// refuses two definitions with the same name and version.
func NewDefinitions(comps *compensations.Registry, defs ...Definition) (*Definitions, error) {
	d := &Definitions{byKey: map[string]loaded{}, latest: map[string]int{}}
	var errs []error
	for _, def := range defs {
		s, resolved, problems := def.compile(comps)
		if len(problems) > 0 {
			errs = append(errs, problems...)
			continue
		}
		k := key(def.Name, def.Version)
		if prev, dup := d.byKey[k]; dup {
			errs = append(errs, fmt.Errorf("%s: saga %s version %d is also defined at %s", def.Source, def.Name, def.Version, prev.def.Source))
			continue
		}
		raw, err := json.Marshal(resolved)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: saga %s: %w", def.Source, def.Name, err))
			continue
		}
		sum := sha256.Sum256(raw)
		d.byKey[k] = loaded{def: def, saga: s, digest: hex.EncodeToString(sum[:8])}
		d.latest[def.Name] = max(d.latest[def.Name], def.Version)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return d, nil
}

// Saga returns a loaded definition compiled; version 0 means the latest.
func (d *Definitions) Saga(name string, version int) (sagas.Saga, bool) {
	l, ok := d.get(name, version)
	return l.saga, ok
}

// Digest is a short hash of a definition as loaded (compensations written
// out); version 0 means the latest.
func (d *Definitions) Digest(name string, version int) (string, bool) {
	l, ok := d.get(name, version)
	return l.digest, ok
}

// Latest is the highest loaded version of a saga.
func (d *Definitions) Latest(name string) (int, bool) {
	v, ok := d.latest[name]
	return v, ok
}

// Keys lists the loaded definitions as "name@version", sorted.
func (d *Definitions) Keys() []string {
	out := make([]string, 0, len(d.byKey))
	for k := range d.byKey {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (d *Definitions) get(name string, version int) (loaded, bool) {
	if version == 0 {
		version = d.latest[name]
	}
	l, ok := d.byKey[key(name, version)]
	return l, ok
}

// Names lists the loaded sagas, sorted.
func (d *Definitions) Names() []string { return slices.Sorted(maps.Keys(d.latest)) }

// Topics lists, sorted and without repeats, the outcome and progress
// topics the loaded sagas name for themselves (outcomeTopic,
// progressTopic); sagas that name none use the worker's.
func (d *Definitions) Topics() (outcomes, progress []string) {
	for _, l := range d.byKey {
		if t := l.def.OutcomeTopic; t != "" {
			outcomes = append(outcomes, t)
		}
		if t := l.def.ProgressTopic; t != "" && !l.def.NoProgress {
			progress = append(progress, t)
		}
	}
	slices.Sort(outcomes)
	slices.Sort(progress)
	return slices.Compact(outcomes), slices.Compact(progress)
}

// Versions lists the loaded versions of a saga, in order.
func (d *Definitions) Versions(name string) []int {
	var out []int
	for _, l := range d.byKey {
		if l.def.Name == name {
			out = append(out, l.def.Version)
		}
	}
	slices.Sort(out)
	return out
}

// Start is the start of saga name's workflow: version 0 pins the latest
// loaded version (now, at start), and the digest pins its content. input
// is the saga's input (JSON, passed byte for byte).
func (d *Definitions) Start(name string, version int, input []byte) (sagas.Start, error) {
	l, ok := d.get(name, version)
	if !ok {
		return sagas.Start{}, fmt.Errorf("%w: %s version %d (loaded: %v)", ErrUnknownDefinition, name, version, d.Keys())
	}
	return sagas.Start{Version: l.def.Version, Digest: l.digest, Input: input}, nil
}

// Workflows are the workflows of the loaded sagas, one per saga under the
// saga's name; each runs the version its instance was started with.
func (d *Definitions) Workflows() map[string]workflow.Workflow {
	out := make(map[string]workflow.Workflow, len(d.latest))
	for name := range d.latest {
		out[name] = func(ctx *workflow.WorkflowContext) (any, error) { return d.run(ctx, name) }
	}
	return out
}

// run is the workflow of saga name. Its start pins a version; it runs
// that definition with Run's semantics. A definition that is missing or
// changed fails the instance (FAILED, no outcome) with an error saying
// which: running a different definition than the one recorded in the
// history would break replay.
func (d *Definitions) run(ctx *workflow.WorkflowContext, name string) (any, error) {
	var raw json.RawMessage
	if err := ctx.GetInput(&raw); err != nil {
		return nil, fmt.Errorf("saga %s: decode input: %w", name, err)
	}
	st, err := sagas.DecodeStart(raw)
	if err == nil {
		st, err = st.Pinned()
	}
	if err != nil {
		return nil, fmt.Errorf("saga %s: %w", name, err)
	}
	if st.Version == 0 {
		return nil, fmt.Errorf("saga %s: %w", name, ErrVersionNotPinned)
	}
	l, ok := d.byKey[key(name, st.Version)]
	if !ok {
		return nil, fmt.Errorf("%w: %s version %d", ErrUnknownDefinition, name, st.Version)
	}
	if st.Digest != "" && st.Digest != l.digest {
		return nil, fmt.Errorf("%w: %s version %d was %s, is %s (%s)", ErrDefinitionChanged, name, st.Version, st.Digest, l.digest, l.def.Source)
	}
	out, err := sagas.RunStart(ctx, l.saga, st)
	if err != nil {
		return nil, err
	}
	return out, nil
}
