package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/bridge/migrate"
	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/kafka"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// TestMigrateReport publishes shadow and active outcomes to a real NATS
// server and to a Kafka-protocol broker (kfake), and reads them back with
// `sagabridge migrate report`.
func TestMigrateReport(t *testing.T) {
	t.Run("nats", func(t *testing.T) {
		dir := t.TempDir()
		srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: filepath.Join(dir, "nats")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
		migrateReport(t, fmt.Sprintf("broker:\n  kind: nats\n  nats: {url: %q}\n", srv.ClientURL()),
			mustPubSub(t, srv.ClientURL(), "test-publisher").Publisher())
	})
	t.Run("kafka", func(t *testing.T) {
		k, err := kafka.StartEmbedded()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(k.Close)
		migrateReport(t, fmt.Sprintf("broker:\n  kind: kafka\n  kafka: {brokers: [%q], autoCreateTopics: true}\n", k.Brokers()[0]),
			mustKafkaClient(t, k.Brokers(), "test-publisher").Publisher())
	})
}

func migrateReport(t *testing.T, cfgYAML string, pub message.Publisher) {
	cfgPath := filepath.Join(t.TempDir(), "bridge.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	send := func(topic, id, mode, status string, divs ...topics.Divergence) {
		t.Helper()
		out := topics.Outcome{Saga: "OrderSaga", InstanceID: id, Status: status, StartedAt: now, FinishedAt: now,
			Migration: &topics.Migration{Mode: mode, Stage: "canary", Percent: 30, Bucket: migrate.Bucket(id), Divergences: divs}}
		ev, err := topics.NewCloudEvent(topics.OutcomeID(id, status), topics.Source, topics.OutcomeType(status), id, now, out)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := ev.Marshal()
		if err := pub.Publish(topic, message.NewMessage(ev.ID, b)); err != nil {
			t.Fatal(err)
		}
	}
	send(topics.Outcomes, "order-a", topics.ModeActive, topics.StatusCompleted)
	send(topics.Outcomes, "order-b", topics.ModeActive, topics.StatusCompensated)
	send(topics.ShadowOutcomes, "order-c", topics.ModeShadow, topics.StatusCompleted)
	send(topics.ShadowOutcomes, "order-d", topics.ModeShadow, topics.StatusCompensated,
		topics.Divergence{Kind: topics.DivergenceCompensationMissing, Step: "reserve-inventory"})
	send(topics.ShadowOutcomes, "order-e", topics.ModeShadow, topics.StatusCompensated,
		topics.Divergence{Kind: topics.DivergenceStuck, Step: "charge-payment"})

	c := cli{t: t, cfg: cfgPath}
	var rep migrate.Report
	if err := json.Unmarshal([]byte(c.must("migrate", "report", "--since", "1h", "-o", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Sagas) != 1 {
		t.Fatalf("report %+v", rep)
	}
	r := rep.Sagas[0]
	if r.Instances != 5 || r.Active != 2 || r.Shadow != 3 || r.Agreeing != 1 || r.Diverging != 2 || r.Stuck != 1 ||
		r.ByKind[topics.DivergenceCompensationMissing] != 1 || r.ActiveStatus[topics.StatusCompensated] != 1 || r.Percent != 30 {
		t.Errorf("report %+v", r)
	}
	table := c.must("migrate", "report", "--since", "1h")
	for _, want := range []string{"OrderSaga (canary 30%)", "compensation-missing", "e.g. order-d", "stuck"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	// A window that ended before these instances finished is empty.
	if out := c.must("migrate", "report", "--since", "2h", "--until", "1h"); !strings.Contains(out, "no instance of a migrating saga finished") {
		t.Errorf("empty window printed:\n%s", out)
	}
	if out := (cli{t: t}).must("migrate", "bucket", "order-a"); !strings.Contains(out, fmt.Sprintf("order-a\t%d", migrate.Bucket("order-a"))) {
		t.Errorf("bucket printed %q", out)
	}
}
