package registry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/registry"
)

func TestRegistry(t *testing.T) {
	r := registry.New()
	if err := order.Register(r); err != nil {
		t.Fatal(err)
	}
	if err := order.RegisterCompensations(r); !errors.Is(err, registry.ErrDuplicate) || !strings.Contains(err.Error(), `compensation "release-inventory"`) {
		t.Errorf("a compensation registered twice: %v", err)
	}
	if err := r.RegisterWorkflow("Plain", order.OrderSaga); err != nil {
		t.Fatal(err)
	}
	if !r.RunsSaga("OrderSaga") || r.RunsSaga("Plain") || r.RunsSaga("Unknown") {
		t.Error("RunsSaga")
	}
	if _, ok := r.Sagas()["OrderSaga"]; !ok || len(r.Sagas()) != 1 || len(r.Workflows()) != 2 {
		t.Errorf("sagas %v, workflows %v", r.Sagas(), r.Workflows())
	}
	comps, err := r.Compensations()
	if _, ok := comps.Get("refund-payment"); err != nil || !ok {
		t.Errorf("compensations: %v", err)
	}
	bad := order.Saga(0)
	bad.Name = "Bad"
	if err := r.RegisterSaga(bad); err == nil || !strings.HasPrefix(err.Error(), `registry: saga "Bad": `) {
		t.Errorf("an invalid saga: %v", err)
	}
	if err := r.Register("", order.OrderSaga); err == nil {
		t.Error("a workflow without a name")
	}
	var none *registry.Registry
	if len(none.Workflows()) != 0 || none.RunsSaga("OrderSaga") {
		t.Error("a nil registry registers nothing")
	}
}
