package route_test

import (
	"errors"
	"testing"

	"github.com/sagabridge/sagabridge/bridge/envelope"
	"github.com/sagabridge/sagabridge/bridge/route"
)

// FuzzRoute feeds arbitrary bodies through decoding and the routes: the
// router either decides or fails with ErrEval / ErrDecode, and never panics.
func FuzzRoute(f *testing.F) {
	for _, s := range []string{
		ce("order.placed", "", `{"id":"7","total":20}`),
		ce("paid", "order-1", `{}`),
		ce("stock.x", "o", `{"ok":1}`),
		`{"kind":"begin"}`, `[]`, `{"specversion":"1.0"}`, "\xff",
	} {
		f.Add(s, "orders")
		f.Add(s, "replies")
	}
	cfgText := table
	f.Fuzz(func(t *testing.T, body, topic string) {
		r, err := compile(t, cfgText)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := envelope.Decode([]byte(body), nil)
		if err != nil {
			if !errors.Is(err, envelope.ErrDecode) {
				t.Fatalf("decode error not marked ErrDecode: %v", err)
			}
			return
		}
		ds, err := r.Route(topic, ev, nil)
		if err != nil {
			if !errors.Is(err, route.ErrEval) && !errors.Is(err, envelope.ErrDecode) {
				t.Fatalf("route error not marked: %v", err)
			}
			return
		}
		for _, d := range ds {
			if d.InstanceID == "" {
				t.Fatalf("decision without instance ID: %+v", d)
			}
		}
	})
}
