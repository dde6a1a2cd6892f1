package sagas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dapr/durabletask-go/workflow"
)

// Request is the input of every activity a saga step or compensation
// calls. It carries what a command event carries, so an activity and a
// participant behind a topic see the same thing.
type Request struct {
	// ID is deterministic, "<instance>/<step>/<attempt>" (with "/undo/"
	// for compensations), like a command's event id: dedupe on it. The
	// engine runs an activity at least once: a worker that dies while an
	// activity runs makes the engine run it again.
	ID string `json:"id"`
	// IdempotencyKey is the same for every attempt of the step, also
	// across worker restarts ("<instance>/<step>", "<instance>/<step>/undo"
	// for a compensation): dedupe on it to act once per step.
	IdempotencyKey string `json:"idempotencyKey"`
	InstanceID     string `json:"instanceId"`
	Saga           string `json:"saga"`
	Step           string `json:"step"`
	Attempt        int    `json:"attempt"`
	Compensate     bool   `json:"compensate,omitempty"`
	// Deadline is when the step's timeout ends (zero: none). The engine
	// cannot cancel a running activity; the activity honours it, best with
	// RequestContext.
	Deadline time.Time `json:"deadline,omitzero"`
	// Payload is the step's input: the saga's input unless Step.Input says
	// otherwise.
	Payload json.RawMessage `json:"payload,omitempty"`
	// Params are the fixed parameters of Activity.Params.
	Params json.RawMessage `json:"params,omitempty"`
	// Result, for a compensation, is the result of the step it undoes.
	Result json.RawMessage `json:"result,omitempty"`
	// TraceParent is the W3C trace context the saga was started with, for
	// an activity that makes its own spans; empty when tracing is off.
	TraceParent string `json:"traceparent,omitempty"`
}

// DecodeRequest reads an activity's Request.
func DecodeRequest(ctx workflow.ActivityContext) (Request, error) {
	var req Request
	if err := ctx.GetInput(&req); err != nil {
		return Request{}, fmt.Errorf("decode saga request: %w", err)
	}
	return req, nil
}

// RequestContext is the activity's context bounded by the request's
// deadline.
func RequestContext(ctx workflow.ActivityContext, req Request) (context.Context, context.CancelFunc) {
	if req.Deadline.IsZero() {
		return context.WithCancel(ctx.Context())
	}
	return context.WithDeadline(ctx.Context(), req.Deadline)
}

// permanentMark travels in the error text: the engine hands the saga only
// the message of an activity's error.
const permanentMark = "[permanent] "

// Permanent marks an activity error as final: the step fails without the
// remaining attempts (a declined card, not a network blip).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return permanentMark + e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err, or the activity failure it describes,
// was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p) || (err != nil && strings.Contains(err.Error(), permanentMark))
}

// activityError strips the engine's wrapping from an activity failure.
func activityError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "task failed with an error: ")
	return strings.TrimPrefix(msg, permanentMark)
}
