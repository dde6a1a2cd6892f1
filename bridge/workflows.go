package bridge

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/dapr/go-sdk/workflow"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/compensations"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/order"
)

// Workflows is the one list of every workflow this worker runs; routes may
// start only these. Add a saga here after writing its workflow function.
func Workflows() []workflow.Workflow {
	return []workflow.Workflow{
		order.OrderSaga,
	}
}

// workflowNames indexes Workflows by the name go-sdk registers them under.
func workflowNames(ws []workflow.Workflow) map[string]bool {
	out := make(map[string]bool, len(ws))
	for _, w := range ws {
		out[sagas.FuncName(w)] = true
	}
	return out
}

// WorkflowNames is the set of registered workflow names, for validation:
// the Go workflows and the declarative orchestrator.
func WorkflowNames() map[string]bool {
	names := workflowNames(Workflows())
	names[sagas.DeclarativeWorkflow] = true
	return names
}

// sagaWorkflows are the registered workflows that run on the saga runtime
// (the built-in ones and the declarative orchestrator): only their start
// input may be wrapped with a trace context.
func sagaWorkflows(registered []workflow.Workflow) map[string]bool {
	known := WorkflowNames()
	out := map[string]bool{}
	for name := range workflowNames(registered) {
		if known[name] {
			out[name] = true
		}
	}
	return out
}

// declarative loads the declarative saga definitions: the built-in
// OrderSaga (sagas/order/order.yaml) and the config's `sagas` files.
func declarative(cfg *config.Config) (*sagas.Definitions, error) {
	defs, err := order.Definitions()
	if err != nil {
		return nil, err
	}
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
