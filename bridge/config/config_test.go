package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/bridge/config"
)

func TestParseReportsEveryProblemWithFileAndLine(t *testing.T) {
	for _, c := range []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown key", "broker:\n  kind: nats\n  colour: red\n", []string{"bridge.yaml:3: field colour not found"}},
		{"unknown key in a route", "routes:\n  - name: a\n    topics: [t]\n    wat: 1\n    start: {workflow: W, instanceId: x}\n", []string{"bridge.yaml:4: field wat not found"}},
		{"bad kinds", "broker:\n  kind: rabbit\nengine:\n  kind: temporal\n", []string{
			"bridge.yaml:2: broker kind \"rabbit\"", "bridge.yaml:4: engine kind \"temporal\""}},
		{"duplicate route names", `routes:
  - name: a
    topics: [t]
    start: {workflow: W, instanceId: x}
  - name: a
    topics: [t]
    start: {workflow: W, instanceId: x}
`, []string{`bridge.yaml:5: route name "a" is also used by route 1`}},
		{"no action and two actions", `routes:
  - name: none
    topics: [t]
  - name: two
    topics: [t]
    start: {workflow: W, instanceId: x}
    purge: {instanceId: x}
`, []string{`bridge.yaml:2: route "none" has no action`, `bridge.yaml:4: route "two" has 2 actions (start, purge)`}},
		{"no topics and bad policy", `routes:
  - name: r
    onFinished: shrug
    raise: {instanceId: x, eventName: e}
`, []string{`route "r" lists no topics`, `bridge.yaml:3: route "r": onFinished "shrug"`}},
		{"type error", "broker:\n  concurrency: lots\n", []string{"bridge.yaml:2: cannot unmarshal"}},
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

func TestDefaults(t *testing.T) {
	cfg, err := config.Parse("empty.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Broker.Kind != "embedded" || cfg.Engine.Kind != "embedded" || cfg.Engine.Embedded.DBPath != "data/workflows.db" ||
		cfg.Routing.Mode != "all" || cfg.Limits.MaxPayloadBytes != 1<<20 || cfg.Broker.AckWait != 10*time.Second ||
		cfg.Admin.Listen != "127.0.0.1:9464" {
		t.Fatalf("defaults %+v", cfg)
	}
}
