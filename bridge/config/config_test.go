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

// TestSecretsComeFromFilesOrEnvironment: each secret names one source; a
// password in the YAML itself is an unknown key, not a setting.
func TestSecretsComeFromFilesOrEnvironment(t *testing.T) {
	ok := `broker:
  kind: nats
  nats: {user: sb, passwordEnv: NATS_PASSWORD, tokenEnv: NATS_TOKEN}
  kafka: {sasl: {mechanism: PLAIN, username: sb, passwordEnv: KAFKA_PASSWORD}}
`
	if _, err := config.Parse("bridge.yaml", []byte(ok)); err != nil {
		t.Fatalf("env secrets: %v", err)
	}
	_, err := config.Parse("bridge.yaml", []byte(`broker:
  kind: nats
  nats:
    user: sb
    passwordFile: /run/secrets/nats
    passwordEnv: NATS_PASSWORD
    tokenEnv: "hunter2 is my token"
  kafka:
    sasl: {passwordEnv: KAFKA_PASSWORD, passwordFile: /x}
`))
	for _, want := range []string{
		"bridge.yaml:6: passwordFile and passwordEnv are both set",
		`bridge.yaml:7: tokenEnv "hunter2 is my token" is not an environment variable name`,
		"bridge.yaml:9: passwordFile and passwordEnv are both set",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	if _, err := config.Parse("bridge.yaml", []byte("broker:\n  nats: {passwordEnv: P}\n")); err == nil || !strings.Contains(err.Error(), "passwordEnv needs user") {
		t.Errorf("passwordEnv without user: %v", err)
	}
	if _, err := config.Parse("bridge.yaml", []byte("broker:\n  nats: {url: 'nats://sb:hunter2@nats:4222'}\n")); err == nil ||
		!strings.Contains(err.Error(), "bridge.yaml:2: nats url carries a password") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a password in the url: %v", err)
	}
	if _, err := config.Parse("bridge.yaml", []byte("broker:\n  nats: {user: sb, password: hunter2}\n")); err == nil || !strings.Contains(err.Error(), "field password not found") {
		t.Errorf("a clear-text password was accepted: %v", err)
	}
}
