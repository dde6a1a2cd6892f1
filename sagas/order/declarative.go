package order

import (
	_ "embed"

	"github.com/sagabridge/sagabridge/sagas"
)

//go:embed order.yaml
var orderYAML []byte

// YAML is the declarative OrderSaga (order.yaml), the same saga as Saga.
func YAML() []byte { return append([]byte(nil), orderYAML...) }

// Definitions parses order.yaml.
func Definitions() ([]sagas.Definition, error) {
	return sagas.ParseDefinitions("sagas/order/order.yaml", orderYAML)
}

// Declarative loads the declarative OrderSaga with the compensations it
// names. A worker that also loads other definitions builds one
// sagas.Definitions with all of them instead.
func Declarative() (*sagas.Definitions, error) {
	defs, err := Definitions()
	if err != nil {
		return nil, err
	}
	return sagas.NewDefinitions(Compensations(), defs...)
}
