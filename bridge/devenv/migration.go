package devenv

import (
	"bytes"
	_ "embed"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/sagabridge/sagabridge/bridge/config"
)

//go:embed migration.yaml
var migrationYAML []byte

// MigrationYAML is the embedded migration wiring of the OrderSaga.
func MigrationYAML() []byte { return append([]byte(nil), migrationYAML...) }

// WithMigration adds the OrderSaga's migration wiring to cfg: the route
// that raises legacy events on the saga, and the migration block set to
// mode (shadow, canary or active) with percent for canary.
func WithMigration(cfg *config.Config, mode string, percent int) error {
	var frag struct {
		Routes    []config.Route   `yaml:"routes"`
		Migration config.Migration `yaml:"migration"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(migrationYAML))
	dec.KnownFields(true)
	if err := dec.Decode(&frag); err != nil {
		return fmt.Errorf("migration.yaml: %w", err)
	}
	w := frag.Migration.Workflows["OrderSaga"]
	w.Mode, w.Percent = mode, percent
	frag.Migration.Workflows["OrderSaga"] = w
	cfg.Routes = append(cfg.Routes, frag.Routes...)
	cfg.Migration = frag.Migration
	return cfg.Normalize()
}
