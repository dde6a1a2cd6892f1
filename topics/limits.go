package topics

import "errors"

// MessageLimits are the largest message a broker stores. A publisher that
// knows them says so (an optional MessageLimits method), so a caller that
// must not fail, like the dead-letter writer, can make its message fit
// before it publishes.
type MessageLimits struct {
	// MaxBytes bounds headers and payload together (NATS max_payload, the
	// Kafka producer's batch size); 0 means unknown.
	MaxBytes int
	// MaxHeaderBytes bounds the encoded header block on its own (JetStream
	// stores at most 64 KiB of headers); 0 means only MaxBytes applies.
	MaxHeaderBytes int
}

// ErrTooLarge marks a publish the broker or client refused because of the
// message's size: publishing the same message again cannot succeed.
var ErrTooLarge = errors.New("message too large for the broker")
