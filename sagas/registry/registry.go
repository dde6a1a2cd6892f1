// Package registry is where a worker's main says which Go sagas,
// workflows and compensations it runs, by name. The worker (bridge.New)
// runs them beside the declarative sagas of its config, which are always
// on; sagabridge's own main registers the order demo this way, as any
// user's main registers theirs. A test registers the same with the test
// kit (sagas/sagatest).
package registry

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/compensations"
	"github.com/sagabridge/sagabridge/sagas"
)

// Registry holds what a main registers. The zero value is not ready: use
// New. A nil *Registry registers nothing (a worker of declarative sagas
// only).
type Registry struct {
	workflows map[string]workflow.Workflow
	// runtime are the workflows run by the saga runtime, which reads the
	// start envelope (the trace context of what started the saga).
	runtime map[string]bool
	sagas   map[string]sagas.Saga
	comps   []compensations.Compensation
}

// New returns an empty Registry.
func New() *Registry {
	return &Registry{workflows: map[string]workflow.Workflow{}, runtime: map[string]bool{}, sagas: map[string]sagas.Saga{}}
}

// ErrDuplicate is the error of a name registered twice.
var ErrDuplicate = errors.New("registered twice")

func (r *Registry) add(name string, wf workflow.Workflow) error {
	if name == "" {
		return errors.New("registry: a workflow needs a name")
	}
	if wf == nil {
		return fmt.Errorf("registry: workflow %q: no function", name)
	}
	if _, dup := r.workflows[name]; dup {
		return fmt.Errorf("registry: workflow %q: %w", name, ErrDuplicate)
	}
	r.workflows[name] = wf
	return nil
}

// RegisterSaga registers a Go saga as the workflow of its Name. The
// worker checks its config against it (a raise of an event no saga waits
// for, a step timeout shorter than the broker's ack wait), and a test kit
// knows its commands' reply events.
func (r *Registry) RegisterSaga(s sagas.Saga) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("registry: saga %q: %w", s.Name, err)
	}
	if err := r.add(s.Name, func(ctx *workflow.WorkflowContext) (any, error) { return sagas.Run(ctx, s) }); err != nil {
		return err
	}
	r.runtime[s.Name] = true
	r.sagas[s.Name] = s
	return nil
}

// Register registers a Go saga written as a workflow function that runs
// the saga runtime (sagas.Run or sagas.RunInput): one whose steps depend
// on more than a fixed Saga value.
func (r *Registry) Register(name string, wf workflow.Workflow) error {
	if err := r.add(name, wf); err != nil {
		return err
	}
	r.runtime[name] = true
	return nil
}

// RegisterWorkflow registers a workflow that does not run on the saga
// runtime (a child that reads its own input, a probe): it gets its start
// input exactly as a route made it.
func (r *Registry) RegisterWorkflow(name string, wf workflow.Workflow) error {
	return r.add(name, wf)
}

// RegisterCompensation names a compensation that declarative sagas refer
// to by name (`compensation: refund-payment`).
func (r *Registry) RegisterCompensation(c compensations.Compensation) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	for _, have := range r.comps {
		if have.Name == c.Name {
			return fmt.Errorf("registry: compensation %q: %w", c.Name, ErrDuplicate)
		}
	}
	r.comps = append(r.comps, c)
	return nil
}

// Workflows are the registered workflows by name (a copy).
func (r *Registry) Workflows() map[string]workflow.Workflow {
	if r == nil {
		return map[string]workflow.Workflow{}
	}
	return maps.Clone(r.workflows)
}

// Sagas are the sagas registered with RegisterSaga, by name.
func (r *Registry) Sagas() map[string]sagas.Saga {
	if r == nil {
		return map[string]sagas.Saga{}
	}
	return maps.Clone(r.sagas)
}

// RunsSaga reports whether workflow name runs on the saga runtime
// (RegisterSaga, Register).
func (r *Registry) RunsSaga(name string) bool { return r != nil && r.runtime[name] }

// Compensations are the registered compensations, for declarative sagas.
func (r *Registry) Compensations() (*compensations.Registry, error) {
	var cs []compensations.Compensation
	if r != nil {
		cs = slices.Clone(r.comps)
	}
	return compensations.NewRegistry(cs...)
}
