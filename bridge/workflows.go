package bridge

import (
	"github.com/dapr/go-sdk/workflow"

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

// WorkflowNames is the set of registered workflow names, for validation.
func WorkflowNames() map[string]bool { return workflowNames(Workflows()) }
