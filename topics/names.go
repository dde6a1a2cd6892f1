package topics

// Default topic names. Every one of them can be changed in the config; these
// are what `sagabridge dev` and the examples use.
const (
	Outcomes   = "sagabridge.outcomes"
	DeadLetter = "sagabridge.dlq"
)

// Source is the CloudEvents source of everything sagabridge itself emits.
const Source = "sagabridge"
