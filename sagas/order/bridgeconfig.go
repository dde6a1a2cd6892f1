package order

import _ "embed"

//go:embed bridge.yaml
var bridgeYAML []byte

//go:embed migration.yaml
var migrationYAML []byte

// BridgeYAML is the worker configuration that routes the OrderSaga's
// events: the one `sagabridge dev` runs and the project's tests start from.
func BridgeYAML() []byte { return append([]byte(nil), bridgeYAML...) }

// MigrationYAML is the OrderSaga's migration wiring beside the legacy
// choreography: a fragment (routes and a migration block) that
// config.Config.MergeMigration adds to BridgeYAML.
func MigrationYAML() []byte { return append([]byte(nil), migrationYAML...) }
