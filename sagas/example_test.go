package sagas_test

import (
	"fmt"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/progress"
)

// Loading declarative sagas and building the input that starts one,
// pinned to the latest loaded version.
func ExampleDefinitions_Start() {
	defs, err := sagas.ParseDefinitions("order.yaml", order.YAML())
	if err != nil {
		panic(err)
	}
	registry, err := sagas.NewDefinitions(order.Compensations(), defs...)
	if err != nil {
		panic(err)
	}
	in, err := registry.Start("OrderSaga", 0, []byte(`{"orderId":"o-1"}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(registry.Keys(), registry.Names(), in.Version, string(in.Input))
	// Output: [OrderSaga@1] [OrderSaga] 1 {"orderId":"o-1"}
}

// A progress event, as `sagabridge workflow get` would print it.
func ExampleProgress_String() {
	p := progress.Progress{
		Saga: "OrderSaga", InstanceID: "order-1", Seq: 2, Status: progress.Running,
		Step: "charge-payment", Kind: sagas.KindCommand, Attempt: 2,
		WaitingFor: []string{"event charge-payment.reply"},
	}
	fmt.Println(p)
	// Output: running charge-payment (command, attempt 2): waiting for event charge-payment.reply since 0001-01-01T00:00:00Z
}
