package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
)

// TestWorkerStoppedAndContinuedHandlesOnce: a worker process SIGSTOPped
// while it holds events, for longer than the broker waits for it (several
// NATS ack waits, so JetStream redelivers them to it; a Kafka session
// timeout, so the group takes its partitions and gives them back from the
// last commit), handles each event once after SIGCONT, not once per
// delivery: it knows the redeliveries of what it holds or has acked by
// their stream sequence or partition and offset.
func TestWorkerStoppedAndContinuedHandlesOnce(t *testing.T) {
	for _, c := range []struct {
		broker func(*testing.T, string) crashBroker
		stop   time.Duration
	}{{natsCrashBroker, 8 * time.Second}, {kafkaCrashBroker, 10 * time.Second}} {
		dir := t.TempDir()
		br := c.broker(t, dir)
		t.Run(br.name, func(t *testing.T) { stoppedAndContinued(t, dir, br, c.stop) })
	}
}

func stoppedAndContinued(t *testing.T, dir string, br crashBroker, stop time.Duration) {
	adminAddr := freeAddr(t)
	broker := map[string]any{"concurrency": 16}
	for k, v := range br.yaml {
		broker[k] = v
	}
	broker["ackWait"] = "2s"
	if k, ok := broker["kafka"].(map[string]any); ok {
		k["sessionTimeout"] = "6s" // kfake's least
	}
	cfgPath := writeConfig(t, dir, broker, embeddedEngine(dir), adminAddr)
	w := startWorker(t, cfgPath, filepath.Join(dir, "worker.log"))
	deadline := time.Now().Add(60 * time.Second)
	for !ready(adminAddr) {
		if time.Now().After(deadline) {
			t.Fatal("the worker did not become ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, watcher := runLegacyServices(t, br.connect, simulated.Config{})
	client := br.connect(t, "stop-test")
	o := simulated.Order{OrderID: "stop-1", Amount: 1, Quantity: 1, SKU: "sku-1"}
	if err := simulated.PublishOrder(client.Publisher(), order.OrdersPlaced, "evt-stop-1", o); err != nil {
		t.Fatal(err)
	}
	for len(watcher.Outcomes()["order-stop-1"]) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no outcome for the order")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Late replies for the finished saga: the route drops each one it
	// handles, and counts it.
	const route = "payment-charged-or-declined"
	dropped := func() float64 { return metric(t, adminAddr, "sagabridge_events_dropped_finished_total", route) }
	time.Sleep(time.Second)
	before := dropped()

	if err := w.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	const replies = 20
	for i := range replies {
		body, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": fmt.Sprintf("late-%d", i), "source": "payment",
			"type": "payment.charged", "data": map[string]any{"orderId": o.OrderID}})
		m := message.NewMessage(fmt.Sprintf("late-%d", i), body)
		m.Metadata.Set("partition_key", o.OrderID)
		if err := client.Publisher().Publish(order.PaymentReplies, m); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(stop)
	if err := w.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stable, last := time.Now(), before
	for time.Since(stable) < 6*time.Second {
		if n := dropped(); n != last {
			stable, last = time.Now(), n
		}
		if time.Since(stable) > 90*time.Second {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d late replies published while the worker was stopped; handled %v times", replies, last-before)
	if got := last - before; got != replies {
		t.Errorf("the %d replies were handled %v times", replies, got)
	}
}

// metric reads one series (by its route label) from the worker's /metrics.
func metric(t *testing.T, adminAddr, name, route string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	prefix := name + `{route="` + route + `"} `
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}
