package order

import (
	_ "embed"

	"github.com/sagabridge/sagabridge/sagas/declarative"
)

//go:embed order.yaml
var orderYAML []byte

// YAML is the declarative OrderSaga (order.yaml), the same saga as Saga.
func YAML() []byte { return append([]byte(nil), orderYAML...) }

// Definitions parses order.yaml.
func Definitions() ([]declarative.Definition, error) {
	return declarative.ParseDefinitions("sagas/order/order.yaml", orderYAML)
}

// Declarative loads the declarative OrderSaga with the compensations it
// names. A worker that also loads other definitions builds one
// declarative.Definitions with all of them instead.
func Declarative() (*declarative.Definitions, error) {
	defs, err := Definitions()
	if err != nil {
		return nil, err
	}
	return declarative.NewDefinitions(Compensations(), defs...)
}
