package route_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/envelope"
	"github.com/sagabridge/sagabridge/bridge/route"
)

// TestShardExamplePartitionsByKey: the two shard configs of docs/sizing.md
// (docs/examples/sharding) hand every event of the order saga, the start
// and each kind of reply, to exactly one shard, the same one for all of an
// order's events, with the instance ID of the unsharded routes; and both
// shards get a share.
func TestShardExamplePartitionsByKey(t *testing.T) {
	var shards []*route.Router
	for _, name := range []string{"shard-a", "shard-b"} {
		path := "../../docs/examples/sharding/" + name + ".yaml"
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Parse(path, b)
		if err != nil {
			t.Fatal(err)
		}
		r, err := route.New(cfg, registered)
		if err != nil {
			t.Fatal(err)
		}
		shards = append(shards, r)
	}
	events := []struct{ topic, typ string }{
		{"orders.placed", "order.placed"},
		{"inventory.replies", "inventory.reserved"}, {"inventory.replies", "inventory.released"},
		{"payment.replies", "payment.charged"}, {"payment.replies", "payment.declined"}, {"payment.replies", "payment.refunded"},
		{"shipping.replies", "shipping.created"}, {"shipping.replies", "shipping.refused"},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	share := make([]int, len(shards))
	for i := range 500 {
		// UUID-like keys in both cases, as producers write them.
		id := fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff)
		if i%2 == 1 {
			id = strings.ToUpper(id)
		}
		owner := -1
		for _, e := range events {
			data, _ := json.Marshal(map[string]any{"orderId": id})
			ev := envelope.Event{Mode: "structured", SpecVersion: "1.0", ID: "e-" + id, Source: "legacy", Type: e.typ, Data: data}
			takers := 0
			for s, r := range shards {
				ds, err := r.Route(e.topic, ev, nil)
				if err != nil {
					t.Fatalf("%s %s on shard %d: %v", e.typ, id, s, err)
				}
				if len(ds) == 0 {
					continue
				}
				takers++
				if ds[0].InstanceID != "order-"+id {
					t.Errorf("%s %s: instance %q", e.typ, id, ds[0].InstanceID)
				}
				if owner == -1 {
					owner = s
					share[s]++
				} else if owner != s {
					t.Errorf("order %s: %s went to shard %d, its other events to shard %d", id, e.typ, s, owner)
				}
			}
			if takers != 1 {
				t.Errorf("%s of order %s taken by %d shards, want exactly 1", e.typ, id, takers)
			}
		}
	}
	t.Logf("orders per shard: %v", share)
	for s, n := range share {
		if n < 150 {
			t.Errorf("shard %d took %d of 500 orders: the split is lopsided", s, n)
		}
	}
}
