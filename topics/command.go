package topics

import (
	"encoding/json"
	"strconv"
)

// Command is the data of a command event that a saga step sends to a
// participant. The event id is derived from instance, step and attempt, so a
// participant that sees the same id twice can answer without acting twice.
type Command struct {
	InstanceID string `json:"instanceId"`
	Saga       string `json:"saga"`
	Step       string `json:"step"`
	// IdempotencyKey is the same for every attempt of the step, also
	// across worker restarts: "<instance>/<step>" ("<instance>/<step>/undo"
	// for its compensation). Participants dedupe on it: a reply to any
	// attempt completes the step.
	IdempotencyKey string          `json:"idempotencyKey"`
	Attempt        int             `json:"attempt"`
	Compensate     bool            `json:"compensate,omitempty"`
	Payload        json.RawMessage `json:"payload,omitempty"`
}

// Reply is the data a participant sends back. The bridge raises it on the
// saga instance through a raise route; the saga reads Status.
type Reply struct {
	InstanceID string          `json:"instanceId"`
	Step       string          `json:"step"`
	CommandID  string          `json:"commandId,omitempty"`
	Status     string          `json:"status"` // ReplyOK or ReplyFailed
	Reason     string          `json:"reason,omitempty"`
	Payload    json.RawMessage `json:"payload,omitempty"`
}

// Reply statuses.
const (
	ReplyOK     = "ok"
	ReplyFailed = "failed"
)

// CommandSpec says where a command goes and how its reply comes back: the
// bridge raises the participant's reply on the saga instance as ReplyEvent
// (through a raise route), and the saga waits for that event.
type CommandSpec struct {
	Topic      string `json:"topic" yaml:"topic"`
	Type       string `json:"type" yaml:"type"`
	ReplyEvent string `json:"replyEvent" yaml:"replyEvent"`
}

// IdempotencyKey is the key a command carries for every attempt of its
// step (or of the step's compensation).
func IdempotencyKey(instanceID, step string, compensate bool) string {
	if compensate {
		return instanceID + "/" + step + "/undo"
	}
	return instanceID + "/" + step
}

// CommandID is the deterministic CloudEvent id of a command: participants
// dedupe on it.
func CommandID(instanceID, step string, compensate bool, attempt int) string {
	if compensate {
		return instanceID + "/" + step + "/undo/" + strconv.Itoa(attempt)
	}
	return instanceID + "/" + step + "/" + strconv.Itoa(attempt)
}

// ValidName reports whether s may name a saga or a step: letters, digits
// and _ . @ -. Names go into command ids and child instance IDs, which
// the bridge restricts to [A-Za-z0-9_.:@-].
func ValidName(s string) bool {
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '.', c == '@', c == '-':
		default:
			return false
		}
	}
	return s != ""
}
