package topics

import (
	"time"
)

// Outcome event types. A saga instance emits exactly one outcome per status
// change; consumers dedupe on the CloudEvent id, which OutcomeID derives from
// the instance ID and status.
const (
	// OutcomeCompleted: every step succeeded.
	OutcomeCompleted = "sagabridge.saga.completed"
	// OutcomeCompensated: a step failed and every completed step was undone.
	OutcomeCompensated = "sagabridge.saga.compensated"
	// OutcomeFailed: a step failed and at least one compensation did not
	// finish; Outcome.NotUndone says what a person must look at.
	OutcomeFailed = "sagabridge.saga.failed"
)

// Saga statuses as they appear in Outcome.Status.
const (
	StatusCompleted   = "completed"
	StatusCompensated = "compensated"
	StatusFailed      = "failed"
)

// OutcomeType maps a status to its CloudEvent type.
func OutcomeType(status string) string {
	switch status {
	case StatusCompleted:
		return OutcomeCompleted
	case StatusCompensated:
		return OutcomeCompensated
	default:
		return OutcomeFailed
	}
}

// OutcomeID is the stable CloudEvent id of an instance's outcome.
func OutcomeID(instanceID, status string) string {
	return instanceID + "/" + status
}

// Outcome is the data of an outcome event (subject = instance ID).
type Outcome struct {
	Saga        string       `json:"saga"`
	InstanceID  string       `json:"instanceId"`
	Status      string       `json:"status"`
	Steps       []StepResult `json:"steps"`
	Compensated []string     `json:"compensated,omitempty"`
	NotUndone   []string     `json:"notUndone,omitempty"`
	Error       string       `json:"error,omitempty"`
	StartedAt   time.Time    `json:"startedAt"`
	FinishedAt  time.Time    `json:"finishedAt"`
	TraceParent string       `json:"traceparent,omitempty"`
	// Migration is set for instances of a saga under migration.
	Migration *Migration `json:"migration,omitempty"`
}

// StepResult is what happened to one step.
type StepResult struct {
	Name   string `json:"name"`
	Status string `json:"status"` // one of the Step statuses below
	Error  string `json:"error,omitempty"`
}

// Step statuses in an outcome.
const (
	StepDone               = "done"
	StepFailed             = "failed"
	StepTimedOut           = "timed-out"
	StepCompensated        = "compensated"
	StepCompensationFailed = "compensation-failed"
	// StepMissing is a shadow outcome's status for a step the legacy flow
	// went past without performing.
	StepMissing = "missing"
)
