package sagatest_test

import (
	"slices"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/compensations"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/sagatest"
	"github.com/sagabridge/sagabridge/topics"
)

// orderSaga reserves stock, then charges the card; the reservation is
// released if the charge fails.
func orderSaga() sagas.Saga {
	release := compensations.Compensation{
		Name:    "release-stock",
		Command: topics.CommandSpec{Topic: "stock.commands", Type: "stock.release", ReplyEvent: "stock.released"},
		Timeout: time.Minute,
	}
	return sagas.Saga{Name: "Order", Steps: []sagas.Step{
		{
			Name:         "reserve",
			Command:      topics.CommandSpec{Topic: "stock.commands", Type: "stock.reserve", ReplyEvent: "stock.reserved"},
			Timeout:      time.Minute,
			Compensation: &release,
		},
		{
			Name:    "charge",
			Command: topics.CommandSpec{Topic: "payment.commands", Type: "payment.charge", ReplyEvent: "payment.charged"},
			Timeout: time.Minute,
		},
	}}
}

// testPaymentDeclined is a saga's unit test: the card is declined, so the
// stock reserved before it is released.
func testPaymentDeclined(t *testing.T) {
	env := sagatest.New(t, sagatest.Options{Sagas: []sagas.Saga{orderSaga()}})
	env.OnCommand("payment.charge", func(sagatest.Command) sagatest.Reply {
		return sagatest.Failed("card declined")
	})
	env.Start("Order", "order-1", map[string]int{"amount": 30})

	out := env.Outcome("order-1")
	if out.Status != topics.StatusCompensated || out.Error != "step charge failed: card declined" {
		t.Errorf("outcome %s (%s)", out.Status, out.Error)
	}
	want := []string{"stock.reserve#1", "payment.charge#1", "stock.release#1"}
	if got := env.Commands("order-1"); !slices.Equal(got, want) {
		t.Errorf("commands %v, want %v", got, want)
	}
}

// An Env needs the test's *testing.T: in a _test.go file,
// testPaymentDeclined is the body of func TestPaymentDeclined(t
// *testing.T), which is how this package's tests run it.
func Example() {
	_ = testPaymentDeclined
}
