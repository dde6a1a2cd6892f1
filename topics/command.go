package topics

import "encoding/json"

// Command is the data of a command event that a saga step sends to a
// participant. The event id is derived from instance, step and attempt, so a
// participant that sees the same id twice can answer without acting twice.
type Command struct {
	InstanceID string          `json:"instanceId"`
	Saga       string          `json:"saga"`
	Step       string          `json:"step"`
	Attempt    int             `json:"attempt"`
	Compensate bool            `json:"compensate,omitempty"`
	Payload    json.RawMessage `json:"payload,omitempty"`
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
