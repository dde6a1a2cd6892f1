package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/topics"
)

// TestDeliveryContract: every message the subscriber hands out carries
// topics.Delivery: the Keyer's key and what it returned beside it (worked
// out once, handed back on the redelivery after a nack), the time Kafka
// stored the record, and a delivery count that grows with each resend.
func TestDeliveryContract(t *testing.T) {
	brokers := startCluster(t)
	pub := newPublisher(t, testPublisherConfig(brokers), watermill.NopLogger{})
	before := time.Now().Add(-time.Second)
	msg := message.NewMessage("m-1", []byte(`{"id":1}`))
	msg.Metadata.Set("partition_key", "record-key")
	if err := pub.Publish("delivery.contract", msg); err != nil {
		t.Fatal(err)
	}
	cfg := fastSubscriberConfig(brokers, "delivery-contract")
	keyed := 0
	cfg.Key = func(topic string, m *message.Message) (string, any) {
		keyed++
		return "instance-" + m.UUID, topic + "/" + string(m.Payload)
	}
	sub := newSubscriber(t, cfg, watermill.NopLogger{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := sub.Subscribe(ctx, "delivery.contract")
	if err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 2; want++ {
		var got *message.Message
		select {
		case got = <-ch:
		case <-ctx.Done():
			t.Fatalf("delivery %d never came", want)
		}
		d, ok := topics.DeliveryOf(got)
		if !ok {
			t.Fatalf("delivery %d: no topics.Delivery in the message's context", want)
		}
		if d.Count != want || d.Key != "instance-m-1" || d.Keyed != `delivery.contract/{"id":1}` || d.ReadError != "" {
			t.Fatalf("delivery %d: %+v, want count %d, key instance-m-1, keyed delivery.contract/{\"id\":1}", want, d, want)
		}
		if d.StoredAt.Before(before) || d.StoredAt.After(time.Now()) {
			t.Fatalf("delivery %d: stored at %s, not around the publish (%s)", want, d.StoredAt, before)
		}
		if want == 1 {
			got.Nack()
		} else {
			got.Ack()
		}
	}
	if keyed != 1 {
		t.Fatalf("the Keyer ran %d times for one record, want once", keyed)
	}
}
