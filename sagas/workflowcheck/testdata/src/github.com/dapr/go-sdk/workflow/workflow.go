// Package workflow is a minimal stand-in for github.com/dapr/go-sdk/workflow
// (v1.11.0) used only by the workflowcheck tests, so that analysistest can
// type-check testdata in GOPATH mode without the real SDK and its gRPC
// dependencies. Only the identifiers the analyzer and tests refer to exist.
package workflow

import "time"

// Task mirrors durabletask's task.Task.
type Task interface {
	Await(v any) error
}

// WorkflowContext mirrors the orchestrator context handed to workflows.
type WorkflowContext struct{}

func (*WorkflowContext) GetInput(v any) error                                   { return nil }
func (*WorkflowContext) Name() string                                           { return "" }
func (*WorkflowContext) InstanceID() string                                     { return "" }
func (*WorkflowContext) CurrentUTCDateTime() time.Time                          { return time.Time{} }
func (*WorkflowContext) IsReplaying() bool                                      { return false }
func (*WorkflowContext) CallActivity(activity any, opts ...any) Task            { return nil }
func (*WorkflowContext) CallChildWorkflow(workflow any, opts ...any) Task       { return nil }
func (*WorkflowContext) CreateTimer(d time.Duration) Task                       { return nil }
func (*WorkflowContext) WaitForExternalEvent(name string, d time.Duration) Task { return nil }
func (*WorkflowContext) ContinueAsNew(newInput any, keepEvents bool)            {}

// ActivityContext mirrors the context handed to activities (by value).
type ActivityContext struct{}

func (*ActivityContext) GetInput(v any) error { return nil }

// Workflow and Activity mirror the SDK's registration signatures.
type (
	Workflow func(ctx *WorkflowContext) (any, error)
	Activity func(ctx ActivityContext) (any, error)
)

// ActivityInput mirrors the SDK's CallActivity option.
func ActivityInput(input any) any { return input }
