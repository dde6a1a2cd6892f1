package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/bridge/dlqstore"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/topics/kafka"
)

// TestDLQOnKafka drives publish and dlq list / show / replay / purge
// against a worker process on a Kafka-protocol broker (kfake): what replay
// and purge handle is acknowledged on the compacted acknowledgement topic
// and no longer listed, and a replayed event really reaches its topic
// again (here it fails again, as its saga is still missing).
func TestDLQOnKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a worker process")
	}
	dir := t.TempDir()
	k, err := kafka.StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	adminAddr := freeAddr(t)
	cfgPath := filepath.Join(dir, "bridge.yaml")
	writeOpsConfig(t, cfgPath, map[string]any{"kind": "kafka", "kafka": map[string]any{"brokers": k.Brokers(), "autoCreateTopics": true}},
		filepath.Join(dir, "workflows.db"), adminAddr)
	logPath := filepath.Join(dir, "worker.log")
	startReadyWorker(t, cfgPath, logPath, adminAddr, "", 60*time.Second)
	c := cli{t: t, cfg: cfgPath}

	// Two events whose instance ID cannot be computed (a number where the
	// route adds a string): dead-lettered as route-eval.
	for _, id := range []string{"evt-bad-1", "evt-bad-2"} {
		c.must("publish", "--topic", order.OrdersPlaced, "--type", "order.placed", "--id", id, "--data", `{"orderId":7}`)
	}
	var views []dlqstore.View
	testkit.WaitUntil(t, 30*time.Second, "two dead letters", func() bool {
		views = decodeJSON[[]dlqstore.View](t, c.must("dlq", "list", "-o", "json"))
		return len(views) == 2
	})
	// The gauges on Kafka: the depth counts what is not acknowledged, the
	// lag what the group has not committed.
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"sagabridge_dlq_messages 2\n", `sagabridge_consumer_lag_messages{topic="orders.placed"} 0`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, v := range views {
		if v.Kind != dlq.KindEval || v.OriginTopic != order.OrdersPlaced || !strings.Contains(v.Ref, "/") {
			t.Errorf("dead letter %+v", v)
		}
	}
	if table := c.must("dlq", "list"); !strings.Contains(table, views[0].Ref) || !strings.Contains(table, "2 message(s)") {
		t.Errorf("dlq list table:\n%s", table)
	}
	shown := decodeJSON[dlqstore.View](t, c.must("dlq", "show", views[0].Ref, "-o", "json"))
	if shown.EventID != "evt-bad-1" || !strings.Contains(string(shown.Payload), `"orderId"`) {
		t.Errorf("dlq show: %+v", shown)
	}
	c.code(exitNotFound, "dlq", "show", "0/999")
	if got := decodeJSON[[]dlqstore.View](t, c.must("dlq", "list", "--kind", dlq.KindDecode, "-o", "json")); len(got) != 0 {
		t.Errorf("--kind decode listed %d", len(got))
	}

	// Dry run: nothing changes.
	type replayOut struct {
		DryRun bool `json:"dryRun"`
		dlqstore.ReplayResult
	}
	if r := decodeJSON[replayOut](t, c.must("dlq", "replay", "--dry-run", "-o", "json", "--no-progress")); !r.DryRun || r.Replayed != 2 {
		t.Errorf("dry run: %+v", r)
	}
	// Replay one: it is acknowledged, re-published, and dead-lettered
	// again under a new ref (the saga it raises on still does not exist).
	r := decodeJSON[replayOut](t, c.must("dlq", "replay", "--limit", "1", "-o", "json", "--no-progress"))
	if r.Replayed != 1 || r.Topics[order.OrdersPlaced] != 1 {
		t.Errorf("replay: %+v", r)
	}
	testkit.WaitUntil(t, 30*time.Second, "the replayed event dead-lettered again", func() bool {
		views = decodeJSON[[]dlqstore.View](t, c.must("dlq", "list", "-o", "json"))
		return len(views) == 2 && views[0].Ref != shown.Ref && views[1].Ref != shown.Ref
	})
	attempts := map[string]int{}
	for _, v := range views {
		attempts[v.EventID] = v.Attempts
	}
	if _, ok := attempts["evt-bad-1"]; !ok {
		t.Errorf("the replayed event is not back on the DLQ: %+v", views)
	}

	// Purge with a filter, then everything.
	if out := c.must("dlq", "purge", "--yes", "--reason", "no such overload", "--since", "1h", "-o", "json"); !strings.Contains(out, `"purged": 2`) {
		t.Errorf("purge: %s", out)
	}
	if got := decodeJSON[[]dlqstore.View](t, c.must("dlq", "list", "-o", "json")); len(got) != 0 {
		t.Errorf("after purge %d listed", len(got))
	}
	if out := c.must("dlq", "purge", "-o", "json"); !strings.Contains(out, `"purged": 0`) {
		t.Errorf("purge of an empty DLQ: %s", out)
	}
}
