package route_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/envelope"
	"github.com/sagabridge/sagabridge/bridge/route"
)

// BenchmarkRoute100 measures routing decisions per second with 100 routes
// on one topic, the event matching the last of them: the worst case, every
// match expression evaluated.
func BenchmarkRoute100(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("routes:\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&sb, "  - name: r%d\n    topics: [orders]\n    match: event.type == \"t%d\" && event.data.total > 10\n"+
			"    start: {workflow: OrderSaga, instanceId: '\"order-\" + event.data.id'}\n", i, i)
	}
	cfg, err := config.Parse("bench.yaml", []byte(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	r, err := route.New(cfg, registered)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(ce("t99", "", `{"id":"42","total":50,"items":[{"sku":"a","qty":1},{"sku":"b","qty":2}]}`))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev, err := envelope.Decode(body, nil)
		if err != nil {
			b.Fatal(err)
		}
		ds, err := r.Route("orders", ev, nil)
		if err != nil || len(ds) != 1 {
			b.Fatalf("decisions %d err %v", len(ds), err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// BenchmarkRouteStartAndRaise routes the two events of `sagabridge bench`'s
// saga (an order that starts it, an approval raised on it) with its two
// routes on one topic: what the bridge spends routing one saga's events.
func BenchmarkRouteStartAndRaise(b *testing.B) {
	cfg, err := config.Parse("bench.yaml", []byte(`
routes:
  - name: start
    topics: [events]
    match: event.type == "order"
    start: {workflow: OrderSaga, instanceId: event.subject}
  - name: approval
    topics: [events]
    match: event.type == "approval"
    raise: {instanceId: event.subject, eventName: approval}
`))
	if err != nil {
		b.Fatal(err)
	}
	r, err := route.New(cfg, registered)
	if err != nil {
		b.Fatal(err)
	}
	bodies := [][]byte{[]byte(ce("order", "direct-32-7-1234", `{"id":"direct-32-7-1234"}`)),
		[]byte(ce("approval", "direct-32-7-1234", `{"id":"direct-32-7-1234"}`))}
	b.ReportAllocs()
	for b.Loop() {
		for _, body := range bodies {
			ev, err := envelope.Decode(body, nil)
			if err != nil {
				b.Fatal(err)
			}
			ds, err := r.Route("events", ev, nil)
			if err != nil || len(ds) != 1 {
				b.Fatalf("decisions %d err %v", len(ds), err)
			}
		}
	}
}
