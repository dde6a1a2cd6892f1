package config_test

import (
	"strings"
	"testing"

	"github.com/sagabridge/sagabridge/bridge/config"
)

const migratingRoutes = `routes:
  - name: start
    topics: [orders]
    start: {workflow: OrderSaga, instanceId: '"order-" + event.data.orderId'}
`

func TestMigrationIsValidated(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		want       []string
	}{
		{"bad mode and percent", migratingRoutes + `migration:
  workflows:
    OrderSaga:
      mode: big-bang
    Other:
      mode: shadow
      percent: 20
      steps: {a: {done: [x]}}
`, []string{`bridge.yaml:8: workflow OrderSaga: mode "big-bang"`, `bridge.yaml:11: workflow Other: percent applies to canary mode only`,
			"workflow Other: no start or startOrRaise route starts it"}},
		{"canary without hand-off or steps", migratingRoutes + `migration:
  workflows:
    OrderSaga:
      mode: canary
      percent: 130
`, []string{"percent 130 is not within 0..100", "canary needs a handoffTopic", "canary mode needs steps"}},
		{"one event type for two steps", migratingRoutes + `migration:
  workflows:
    OrderSaga:
      mode: shadow
      steps:
        a: {done: [x.done]}
        b: {done: [y], failed: [x.done]}
        c: {undone: [z]}
`, []string{`event type "x.done" shows both a and b`, "step c lists no done or failed event types"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Parse("bridge.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestMigrationChangesWithoutRestart(t *testing.T) {
	parse := func(mode, percent, timeout string) *config.Config {
		t.Helper()
		cfg, err := config.Parse("bridge.yaml", []byte(migratingRoutes+`migration:
  workflows:
    OrderSaga:
      mode: `+mode+`
      percent: `+percent+`
      handoffTopic: legacy.orders
      timeout: `+timeout+`
      steps: {reserve: {done: [reserved]}}
`))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cur := parse("canary", "30", "10s")
	if err := cur.MigrationChanges(parse("canary", "60", "10s")); err != nil {
		t.Errorf("raising the percentage: %v", err)
	}
	if err := cur.MigrationChanges(parse("active", "0", "10s")); err != nil {
		t.Errorf("going active: %v", err)
	}
	if err := cur.MigrationChanges(parse("canary", "30", "20s")); err == nil || !strings.Contains(err.Error(), "only mode and percent") {
		t.Errorf("changing the timeout: %v, want a restart required", err)
	}
}
