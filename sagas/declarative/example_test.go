package declarative_test

import (
	"fmt"

	"github.com/sagabridge/sagabridge/sagas/declarative"
	"github.com/sagabridge/sagabridge/sagas/order"
)

// Loading declarative sagas and building the input that starts one,
// pinned to the latest loaded version.
func ExampleDefinitions_Start() {
	defs, err := declarative.ParseDefinitions("order.yaml", order.YAML())
	if err != nil {
		panic(err)
	}
	registry, err := declarative.NewDefinitions(order.Compensations(), defs...)
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
