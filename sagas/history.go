package sagas

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// DefaultMaxHistoryBytes is a saga's history budget when Saga.MaxHistoryBytes
// is 0. Both engines hand a workflow's whole history to the worker in one
// gRPC message on every turn, and daprd 1.16 refuses messages over 4 MiB
// (its --max-body-size; gRPC's default elsewhere). A history past that can
// never be replayed: the instance stays RUNNING, with an error every few
// seconds and no outcome. The budget leaves a quarter of the message for
// what the estimate does not see (protocol framing, events raised that no
// step waits for).
const DefaultMaxHistoryBytes = 3 << 20

// historyEventBytes is what the estimate adds for each history event
// besides its payload: ids, names, timestamps, trace context.
const historyEventBytes = 256

// outcomeReserve is the part of the budget only the outcome's publish may
// use: a saga out of room still says how it ended.
const outcomeReserve = 64 << 10

// ErrHistoryFull is matched (errors.Is) by the failure of a step or
// compensation that the saga did not schedule because its history would
// have outgrown Saga.MaxHistoryBytes.
var ErrHistoryFull = errors.New("saga history full")

// historyFullMark travels in the error text: the engine hands the saga only
// an activity failure's message.
const historyFullMark = "saga history full: "

type historyFullError struct{ msg string }

func (e historyFullError) Error() string        { return historyFullMark + e.msg }
func (e historyFullError) Is(target error) bool { return target == ErrHistoryFull }

func isHistoryFull(err error) bool {
	return err != nil && (errors.Is(err, ErrHistoryFull) || strings.Contains(err.Error(), historyFullMark))
}

// Phases of a saga, each with its share of the history budget: going
// forward leaves a quarter for compensations, compensations leave
// outcomeReserve for the outcome.
const (
	phaseForward = iota
	phaseBackward
	phaseOutcome
)

// history estimates the bytes a saga's history holds, from the payloads
// it schedules and receives. Replay makes the same calls in the same
// order, so the estimate, and every decision taken on it, is the same in
// each replay.
type history struct {
	bytes int
	limit int
	phase int
}

func newHistory(limit, input int) *history {
	if limit <= 0 {
		limit = DefaultMaxHistoryBytes
	}
	return &history{limit: limit, bytes: input + historyEventBytes}
}

// room refuses to schedule n more bytes past the current phase's share.
func (h *history) room(what string, n int) error {
	share := h.limit
	switch h.phase {
	case phaseForward:
		share = h.limit - h.limit/4
	case phaseBackward:
		share = h.limit - outcomeReserve
	}
	if h.bytes+n+historyEventBytes <= share {
		return nil
	}
	return historyFullError{fmt.Sprintf("%s of %d bytes would take the saga's history to about %d bytes, past the %d allowed for %s (of Saga.MaxHistoryBytes %d, under the engine's 4 MiB message): the engine keeps every step's input and result, so a large saga input or event fills it",
		what, n, h.bytes+n+historyEventBytes, share, phaseName(h.phase), h.limit)}
}

func phaseName(p int) string {
	switch p {
	case phaseForward:
		return "its steps"
	case phaseBackward:
		return "its compensations"
	}
	return "its outcome"
}

func (h *history) add(n int) { h.bytes += n + historyEventBytes }

// sizedTask counts what a task brings back into the history (its result,
// its failure) when it is awaited.
type sizedTask struct {
	h *history
	t awaitable
}

func (s sizedTask) Await(v any) error {
	var raw json.RawMessage
	err := s.t.Await(&raw)
	if err != nil {
		s.h.add(len(err.Error()))
		return err
	}
	s.h.add(len(raw))
	if v == nil || len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, v)
}

// awaitable is the one method the saga needs from an engine task; naming
// it here keeps durabletask's task package out of the saga code.
type awaitable interface {
	Await(v any) error
}

// failedTask is a task that failed before it was scheduled.
type failedTask struct{ err error }

func (t failedTask) Await(any) error { return t.err }
