package sagas_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics"
)

// orderReplies maps the OrderSaga's command types to the events a raise
// route would deliver their replies as.
var orderReplies = map[string]string{
	"inventory.reserve": order.ReserveInventoryReply,
	"payment.charge":    order.ChargePaymentReply,
	"shipping.create":   order.CreateShipmentReply,
	"inventory.release": order.ReleaseInventoryReply,
	"payment.refund":    order.RefundPaymentReply,
}

// answerOrders plays inventory, payment and shipping on the kit's broker.
func answerOrders(k *kit) {
	k.OnPublish(func(topic string, ev topics.CloudEvent) {
		switch topic {
		case order.InventoryCommands, order.PaymentCommands, order.ShippingCommands:
		default:
			return
		}
		var c topics.Command
		var o simulated.Order
		if json.Unmarshal(ev.Data, &c) != nil || json.Unmarshal(c.Payload, &o) != nil {
			return
		}
		reply := topics.Reply{InstanceID: c.InstanceID, Step: c.Step, CommandID: ev.ID, Status: topics.ReplyOK}
		switch {
		case ev.Type == "payment.charge" && o.FailPayment:
			reply.Status, reply.Reason = topics.ReplyFailed, "card declined"
		case ev.Type == "shipping.create" && o.FailShipping:
			reply.Status, reply.Reason = topics.ReplyFailed, "address not deliverable"
		}
		k.Go(func() { k.Raise(c.InstanceID, orderReplies[ev.Type], reply) })
	})
}

// TestDeclarativeOrderSagaMatchesGo runs the Go OrderSaga and order.yaml
// side by side: same outcomes, same commands (type, topic, id, payload).
func TestDeclarativeOrderSagaMatchesGo(t *testing.T) {
	defs, err := order.Declarative()
	if err != nil {
		t.Fatal(err)
	}
	// One worker runs both: the YAML saga under its name, the Go one under
	// another.
	wfs := defs.Workflows()
	wfs["GoOrderSaga"] = order.OrderSaga
	k := newKit(t, kitOptions{workflows: wfs})
	answerOrders(k)
	orders := map[string]simulated.Order{
		"ok":       {OrderID: "ok", Amount: 3},
		"declined": {OrderID: "declined", Amount: 4, FailPayment: true},
		"refused":  {OrderID: "refused", Amount: 5, FailShipping: true},
	}
	for name, o := range orders {
		k.Start("GoOrderSaga", "go-"+name, o)
		raw, _ := json.Marshal(o)
		in, err := startInput(defs, "OrderSaga", 0, raw)
		if err != nil {
			t.Fatal(err)
		}
		k.StartRaw("OrderSaga", "yaml-"+name, in)
	}
	for name := range orders {
		t.Run(name, func(t *testing.T) {
			g, _ := json.Marshal(sameParts(k.Outcome("go-" + name)))
			y, _ := json.Marshal(sameParts(k.Outcome("yaml-" + name)))
			if string(g) != string(y) {
				t.Errorf("outcomes differ:\n go:   %s\n yaml: %s", g, y)
			}
			eq(t, "commands", orderCommands(k, "yaml-"+name), orderCommands(k, "go-"+name))
			if name == "refused" {
				eq(t, "compensated", k.Outcome("yaml-refused").Compensated, []string{"charge-payment", "reserve-inventory"})
			}
		})
	}
}

// sameParts drops what differs between two instances of one saga.
func sameParts(o topics.Outcome) topics.Outcome {
	o.InstanceID = ""
	o.StartedAt, o.FinishedAt = time.Time{}, time.Time{}
	return o
}

// orderCommands lists an instance's commands as topic|type|id-suffix|payload.
func orderCommands(k *kit, id string) []string {
	var out []string
	for _, topic := range []string{order.InventoryCommands, order.PaymentCommands, order.ShippingCommands} {
		for _, ev := range distinct(k.Published(topic)) {
			var c topics.Command
			if json.Unmarshal(ev.Data, &c) != nil || c.InstanceID != id {
				continue
			}
			out = append(out, topic+"|"+ev.Type+"|"+strings.TrimPrefix(ev.ID, id)+"|"+string(c.Payload)+"|"+c.Saga)
		}
	}
	return out
}
