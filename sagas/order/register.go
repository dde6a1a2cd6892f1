package order

import (
	"github.com/sagabridge/sagabridge/compensations"
	"github.com/sagabridge/sagabridge/sagas/registry"
)

// Register registers the Go OrderSaga and the compensations order.yaml
// names, as a worker's main does (cmd/sagabridge's does).
func Register(r *registry.Registry) error {
	if err := r.RegisterSaga(Saga(DefaultStepTimeout)); err != nil {
		return err
	}
	return RegisterCompensations(r)
}

// RegisterCompensations registers only the compensations order.yaml
// names: a worker that runs the declarative OrderSaga, under the same
// name as the Go one.
func RegisterCompensations(r *registry.Registry) error {
	for _, c := range []func() compensations.Compensation{ReleaseInventory, RefundPayment} {
		if err := r.RegisterCompensation(c()); err != nil {
			return err
		}
	}
	return nil
}

// Sagas is a registry of the order demo alone, as sagabridge's main
// registers it.
func Sagas() (*registry.Registry, error) {
	r := registry.New()
	if err := Register(r); err != nil {
		return nil, err
	}
	return r, nil
}
