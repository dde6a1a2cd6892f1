package devenv

import (
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/sagas/order"
)

// WithMigration adds the OrderSaga's migration wiring to cfg, set to mode
// (shadow, canary or active) with percent for canary.
func WithMigration(cfg *config.Config, mode string, percent int) error {
	return cfg.MergeMigration("sagas/order/migration.yaml", order.MigrationYAML(), "OrderSaga", mode, percent)
}
