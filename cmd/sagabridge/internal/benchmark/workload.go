// Package benchmark is `sagabridge bench`: it measures sagas per second and
// end-to-end latency through the bridge, next to the same workload driven
// directly against the engine in the same run, and writes a table, a JSON
// file and an SVG chart.
//
// The workload is the one the design's figures were measured with: a saga
// of three activities and one external event, whose outcome is published
// to a topic. Through the bridge, an order event starts it and an approval
// event on the same topic (same instance, so handled in order) raises the
// event; directly, the driver calls Start and Raise on the engine.
package benchmark

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/topics"
)

// Topics and names of the workload.
const (
	EventsTopic   = "bench.events"
	OutcomesTopic = "bench.outcomes"
	ApprovalEvent = "approval"
	OrderType     = "bench.order"
	ApprovalType  = "bench.approval"
	// Workflow and BenchStepActivity are the registered names.
	Workflow          = "BenchSaga"
	BenchStepActivity = "BenchStep"
)

// BenchSaga runs three activities, waits for the approval event, then
// publishes its outcome.
func BenchSaga(ctx *workflow.WorkflowContext) (any, error) {
	var in json.RawMessage
	if err := ctx.GetInput(&in); err != nil {
		return nil, err
	}
	started := ctx.CurrentTimeUTC()
	steps := make([]topics.StepResult, 0, 3)
	for i := 1; i <= 3; i++ {
		if err := ctx.CallActivity(BenchStepActivity, workflow.WithActivityInput(i)).Await(nil); err != nil {
			return nil, fmt.Errorf("step %d: %w", i, err)
		}
		steps = append(steps, topics.StepResult{Name: fmt.Sprintf("step-%d", i), Status: topics.StepDone})
	}
	if err := ctx.WaitForExternalEvent(ApprovalEvent, 10*time.Minute).Await(nil); err != nil {
		return nil, fmt.Errorf("approval: %w", err)
	}
	id := ctx.ID()
	out := topics.Outcome{Saga: Workflow, InstanceID: id, Status: topics.StatusCompleted, Steps: steps,
		StartedAt: started, FinishedAt: ctx.CurrentTimeUTC()}
	ev, err := topics.NewCloudEvent(topics.OutcomeID(id, out.Status), topics.Source, topics.OutcomeCompleted, id, out.FinishedAt, out)
	if err != nil {
		return nil, err
	}
	req := sagas.PublishRequest{Topic: OutcomesTopic, Key: id, Event: ev}
	if err := ctx.CallActivity(sagas.PublishActivity, workflow.WithActivityInput(req)).Await(nil); err != nil {
		return nil, fmt.Errorf("publish outcome: %w", err)
	}
	return nil, nil
}

// BenchStep stands in for a call to a service.
func BenchStep(ctx workflow.ActivityContext) (any, error) {
	var n int
	if err := ctx.GetInput(&n); err != nil {
		return nil, err
	}
	return n + 1, nil
}

const routesYAML = `
outcomes: {topic: bench.outcomes}
routes:
  - name: bench-start
    topics: [bench.events]
    match: event.type == "bench.order"
    start: {workflow: BenchSaga, instanceId: event.subject}
  - name: bench-approval
    topics: [bench.events]
    match: event.type == "bench.approval"
    raise: {instanceId: event.subject, eventName: approval}
`
