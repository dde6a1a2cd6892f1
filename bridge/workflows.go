package bridge

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/engine"
	"github.com/sagabridge/sagabridge/bridge/route"
	"github.com/sagabridge/sagabridge/compensations"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/order"
)

// Workflows is the one list of the Go sagas this worker runs, each under
// the name routes start it by. Declarative sagas (the config's `sagas`
// files) join them under their own names.
func Workflows() map[string]workflow.Workflow {
	return map[string]workflow.Workflow{
		"OrderSaga": order.OrderSaga,
	}
}

// catalogue is every workflow a worker runs: the Go ones and the
// declarative sagas, one name space.
type catalogue struct {
	workflows map[string]workflow.Workflow
	defs      *sagas.Definitions
}

// newCatalogue joins the Go workflows with the declarative sagas of cfg,
// refusing a saga file that names a Go workflow.
func newCatalogue(cfg *config.Config, goWorkflows map[string]workflow.Workflow) (catalogue, error) {
	defs, err := declarative(cfg)
	if err != nil {
		return catalogue{}, err
	}
	all := maps.Clone(goWorkflows)
	if all == nil {
		all = map[string]workflow.Workflow{}
	}
	for name, w := range defs.Workflows() {
		if _, dup := all[name]; dup {
			return catalogue{}, fmt.Errorf("sagas: %s is declared in a saga file and is also a Go workflow; give one of them another name", name)
		}
		all[name] = w
	}
	return catalogue{workflows: all, defs: defs}, nil
}

// routeWorkflows is what routes may start: every name, with the loaded
// versions of declarative sagas.
func (c catalogue) routeWorkflows() route.Workflows {
	out := make(route.Workflows, len(c.workflows))
	for name := range c.workflows {
		out[name] = c.defs.Versions(name)
	}
	return out
}

// startInput turns a route's input into the start input of workflow wf:
// a declarative saga's input is pinned to a version (0: the latest
// loaded), anything else passes unchanged.
func (c catalogue) startInput(wf string, version int, input []byte) ([]byte, error) {
	if _, ok := c.defs.Latest(wf); !ok {
		return input, nil
	}
	return c.defs.StartInput(wf, version, input)
}

// Validate checks what New would refuse about cfg without connecting
// anything: the saga files, the routes (workflows and versions they start,
// CEL, access) and the workflows the engine cannot run (patches on
// daprd). opts.Workflows and opts.Patches are those of New.
func Validate(cfg *config.Config, opts Options) error {
	_, _, err := prepare(cfg, opts)
	return err
}

// prepare builds what New needs from the config alone: every workflow,
// the engine registry of them and the compiled routes.
func prepare(cfg *config.Config, opts Options) (catalogue, *route.Router, error) {
	goWorkflows := opts.Workflows
	if goWorkflows == nil {
		goWorkflows = Workflows()
	}
	cat, err := newCatalogue(cfg, goWorkflows)
	if err != nil {
		return catalogue{}, nil, err
	}
	patches := engine.CheckPatches(cfg.Engine.Kind, engine.Registry{Patches: opts.Patches})
	router, err := route.New(cfg, cat.routeWorkflows())
	if err := errors.Join(patches, err); err != nil {
		return catalogue{}, nil, err
	}
	return cat, router, nil
}

// sagaWorkflows are the registered workflows that run on the saga runtime
// (the built-in Go sagas and the declarative ones): only their start input
// may be wrapped with a trace context.
func (c catalogue) sagaWorkflows() map[string]bool {
	builtIn := Workflows()
	out := map[string]bool{}
	for _, name := range slices.Collect(maps.Keys(c.workflows)) {
		if _, ok := builtIn[name]; ok {
			out[name] = true
		}
		if _, ok := c.defs.Latest(name); ok {
			out[name] = true
		}
	}
	return out
}

// declarative loads the config's declarative saga files (`sagas`).
func declarative(cfg *config.Config) (*sagas.Definitions, error) {
	var defs []sagas.Definition
	if len(cfg.Sagas) > 0 {
		dir := filepath.Dir(cfg.File())
		more, err := sagas.LoadDefinitions(os.DirFS(dir), cfg.Sagas...)
		if err != nil {
			return nil, fmt.Errorf("sagas: %w", err)
		}
		defs = append(defs, more...)
	}
	return sagas.NewDefinitions(compensations.Orders(), defs...)
}
