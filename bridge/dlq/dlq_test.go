package dlq_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/kafka"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

func TestIdentifyUsesTheBrokersIdentity(t *testing.T) {
	same := []byte(`{"same":"body"}`)
	nats1 := message.NewMessage("", same)
	nats1.Metadata.Set(natsjs.MetaStream, "orders_placed")
	nats1.Metadata.Set(natsjs.MetaStreamSeq, "41")
	nats2 := message.NewMessage("", same)
	nats2.Metadata.Set(natsjs.MetaStream, "orders_placed")
	nats2.Metadata.Set(natsjs.MetaStreamSeq, "42")
	kaf := message.NewMessage("", same)
	kaf.Metadata.Set(kafka.MetadataTopic, "orders.placed")
	kaf.Metadata.Set(kafka.MetadataPartition, "3")
	kaf.Metadata.Set(kafka.MetadataOffset, "17")

	a, b := dlq.Identify("orders.placed", nats1, "", ""), dlq.Identify("orders.placed", nats2, "", "")
	if a.ID == b.ID {
		t.Errorf("two stored messages with one body share the id %q", a.ID)
	}
	if a.Pointer != "nats stream=orders_placed seq=41" {
		t.Errorf("pointer %q", a.Pointer)
	}
	if broker, at := dlq.ParsePointer(a.Pointer); broker != "nats" || at["stream"] != "orders_placed" || at["seq"] != "41" {
		t.Errorf("ParsePointer(%q) = %s %v", a.Pointer, broker, at)
	}
	if k := dlq.Identify("orders.placed", kaf, "", ""); k.Pointer != "kafka topic=orders.placed partition=3 offset=17" || k.ID == a.ID {
		t.Errorf("kafka identity %+v", k)
	}
	// Without a broker identity: the CloudEvent's source and id tell two
	// events with the same body apart; the payload alone never decides.
	c1 := dlq.Identify("t", message.NewMessage("", same), "src", "ev-1")
	c2 := dlq.Identify("t", message.NewMessage("", same), "src", "ev-2")
	if c1.ID == c2.ID {
		t.Errorf("events ev-1 and ev-2 share the id %q", c1.ID)
	}
	h1 := message.NewMessage("", same)
	h1.Metadata.Set("ce-id", "x-1")
	h2 := message.NewMessage("", same)
	h2.Metadata.Set("ce-id", "x-2")
	if dlq.Identify("t", h1, "", "").ID == dlq.Identify("t", h2, "", "").ID {
		t.Errorf("messages that differ in a header share an id")
	}
}

func TestClip(t *testing.T) {
	s := strings.Repeat("é", 50_000) // 100,000 bytes
	got := dlq.Clip(s, 4096)
	if len(got) > 4096 || !utf8.ValidString(got) || !strings.HasSuffix(got, "(100000 bytes)") {
		t.Errorf("Clip: %d bytes, valid %v, ends %q", len(got), utf8.ValidString(got), got[len(got)-20:])
	}
	if dlq.Clip("short", 10) != "short" {
		t.Error("Clip changed a short string")
	}
}

func TestNewMessageFitsOrTruncates(t *testing.T) {
	lim := topics.MessageLimits{MaxBytes: 1 << 20, MaxHeaderBytes: 64<<10 - 1}
	orig := message.NewMessage("u-1", []byte(strings.Repeat("p", 1_048_401)))
	orig.Metadata.Set(natsjs.MetaStream, "orders_placed")
	orig.Metadata.Set(natsjs.MetaStreamSeq, "7")
	orig.Metadata.Set("X-Custom", "v")
	f := dlq.Failure{Kind: dlq.KindEval, Reason: strings.Repeat("r", 70<<10), OriginTopic: "orders.placed",
		EventID: strings.Repeat("i", 70<<10), EventType: "t"}
	full, err := dlq.NewMessage(orig, f)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(full.Metadata.Get(dlq.MetaReason)); n > dlq.MaxReasonBytes {
		t.Errorf("reason header of %d bytes", n)
	}
	if full.Metadata.Get(natsjs.MetaStreamSeq) != "" {
		t.Error("the copy carries delivery metadata")
	}
	if dlq.Fits(full, lim) {
		t.Fatal("a 1,048,401-byte payload plus the failure fits in 1 MiB?")
	}
	cut, err := dlq.Truncated(orig, f, "too big")
	if err != nil {
		t.Fatal(err)
	}
	if !dlq.Fits(cut, lim) || len(cut.Payload) != 0 {
		t.Errorf("truncated copy does not fit or keeps the payload")
	}
	e, err := dlq.Parse(cut)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.Truncated, "payload (1048401 bytes) and 1 headers not stored: too big") ||
		e.Failure.Origin.Pointer != "nats stream=orders_placed seq=7" || e.Failure.Origin.ID != "nats-orders_placed-7" {
		t.Errorf("truncated entry: %q, %+v", e.Truncated, e.Failure.Origin)
	}
	if full.UUID != cut.UUID || full.UUID != "dlq-nats-orders_placed-7" {
		t.Errorf("message ids %q / %q, want both from the stream sequence", full.UUID, cut.UUID)
	}
}
