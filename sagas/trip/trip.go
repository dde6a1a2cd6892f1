// Package trip is the second example saga: a trip booking declared in
// YAML only (trip.yaml), whose participants, a hotel and an airline, each
// speak their own messages (simulated/). bridge.yaml wires it.
package trip

import (
	_ "embed"

	"github.com/sagabridge/sagabridge/sagas/declarative"
)

//go:embed trip.yaml
var tripYAML []byte

//go:embed bridge.yaml
var bridgeYAML []byte

// YAML is trip.yaml.
func YAML() []byte { return append([]byte(nil), tripYAML...) }

// ConfigYAML is bridge.yaml: the routes of the TripSaga, naming trip.yaml.
func ConfigYAML() []byte { return append([]byte(nil), bridgeYAML...) }

// Definitions parses trip.yaml.
func Definitions() ([]declarative.Definition, error) {
	return declarative.ParseDefinitions("sagas/trip/trip.yaml", tripYAML)
}
