// Package workflow is a minimal stand-in for
// github.com/dapr/durabletask-go/workflow (v0.11.0) used only by the
// workflowcheck tests, so that analysistest can type-check testdata in
// GOPATH mode without the real SDK and its gRPC dependencies. Only the
// identifiers the analyzer and tests refer to exist.
package workflow

import (
	"context"
	"time"
)

// Task mirrors durabletask's task.Task.
type Task interface {
	Await(v any) error
}

// CallActivityOption, ChildWorkflowOption, CreateTimerOption and
// ContinueAsNewOption mirror the SDK's option types.
type (
	CallActivityOption  func(any) error
	ChildWorkflowOption func(any) error
	CreateTimerOption   func(any) error
	ContinueAsNewOption func(any)
)

// WorkflowContext mirrors the orchestrator context handed to workflows.
type WorkflowContext struct{}

func (*WorkflowContext) GetInput(v any) error                                        { return nil }
func (*WorkflowContext) Name() string                                                { return "" }
func (*WorkflowContext) ID() string                                                  { return "" }
func (*WorkflowContext) CurrentTimeUTC() time.Time                                   { return time.Time{} }
func (*WorkflowContext) IsReplaying() bool                                           { return false }
func (*WorkflowContext) IsPatched(name string) bool                                  { return false }
func (*WorkflowContext) SetCustomStatus(cs string)                                   {}
func (*WorkflowContext) CallActivity(activity any, opts ...CallActivityOption) Task  { return nil }
func (*WorkflowContext) CallChildWorkflow(w any, opts ...ChildWorkflowOption) Task   { return nil }
func (*WorkflowContext) CreateTimer(d time.Duration, opts ...CreateTimerOption) Task { return nil }
func (*WorkflowContext) WaitForExternalEvent(name string, d time.Duration) Task      { return nil }
func (*WorkflowContext) ContinueAsNew(newInput any, opts ...ContinueAsNewOption)     {}

// ActivityContext mirrors the context handed to activities (an interface).
type ActivityContext interface {
	GetInput(v any) error
	Context() context.Context
}

// Workflow and Activity mirror the SDK's registration signatures.
type (
	Workflow func(ctx *WorkflowContext) (any, error)
	Activity func(ctx ActivityContext) (any, error)
)

// WithActivityInput mirrors the SDK's CallActivity option.
func WithActivityInput(input any) CallActivityOption { return nil }

// WithChildWorkflowInput mirrors the SDK's CallChildWorkflow option.
func WithChildWorkflowInput(input any) ChildWorkflowOption { return nil }
