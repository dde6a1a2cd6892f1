package kafka

import (
	"fmt"
	"log/slog"
)

const redacted = "[REDACTED]"

// Secret is a credential. It is a string underneath so that a config can
// be written as a literal, but every way of printing it (any fmt verb,
// %#v, JSON/YAML/text marshalling, slog) yields [REDACTED], so a config
// that ends up in a log line or an error message cannot leak it. Use Reveal
// where the value is really needed.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String redacts.
func (s Secret) String() string { return redacted }

// GoString redacts, for %#v.
func (s Secret) GoString() string { return redacted }

// Format redacts for every verb, including the ones (%d, %x) for which fmt
// would otherwise print the raw string inside its bad-verb notice.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalText redacts, which also covers encoding/json and yaml.v3 output.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue redacts for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }
