package progress_test

import (
	"fmt"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/progress"
)

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
