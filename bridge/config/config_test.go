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
		{"unknown key", "broker:\n  kind: nats\n  colour: red\n", []string{`bridge.yaml:3: unknown key "colour" (expected one of ackWait, concurrency, consumerGroup, embedded, kafka, kind,`}},
		{"unknown key in a route", "routes:\n  - name: a\n    topics: [t]\n    wat: 1\n    start: {workflow: W, instanceId: x}\n", []string{`bridge.yaml:4: unknown key "wat"`}},
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
		{"engine values", "engine:\n  embedded:\n    synchronous: sometimes\n    parallelism: -1\n  retention:\n    failed: -1h\n", []string{
			`bridge.yaml:3: synchronous "sometimes" is not normal or full`, "bridge.yaml:4: parallelism -1 is negative",
			"bridge.yaml:6: engine retention failed -1h0m0s is negative"}},
		{"broker values", "broker:\n  kind: nats\n  consumerGroup: a.b\n  ackWait: 500ms\n  concurrency: -2\n", []string{
			`bridge.yaml:3: consumerGroup "a.b" may not contain`, "bridge.yaml:4: ackWait 500ms is below 1s",
			"bridge.yaml:5: concurrency -2 must be at least 1"}},
		{"removed key", "engine:\n  embedded:\n    dbPath: x.db\n    idlePoll: 20ms\n", []string{
			"bridge.yaml:4: engine.embedded.idlePoll is no longer a setting: the embedded engine wakes its workers when work is written"}},
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
	for _, ok := range []string{`broker:
  kind: nats
  nats: {user: sb, passwordEnv: NATS_PASSWORD, tokenEnv: NATS_TOKEN}
`, `broker:
  kind: kafka
  kafka: {brokers: ["k:9092"], sasl: {mechanism: PLAIN, username: sb, passwordEnv: KAFKA_PASSWORD}}
`} {
		if _, err := config.Parse("bridge.yaml", []byte(ok)); err != nil {
			t.Fatalf("env secrets: %v", err)
		}
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
	if _, err := config.Parse("bridge.yaml", []byte("broker:\n  nats: {user: sb, password: hunter2}\n")); err == nil || !strings.Contains(err.Error(), `unknown key "password"`) {
		t.Errorf("a clear-text password was accepted: %v", err)
	}
}

// TestInterpolation: ${VAR} and ${VAR:-default} in values, numbers typed
// after expansion, errors that name the variable and never print a value.
func TestInterpolation(t *testing.T) {
	t.Setenv("SB_TEST_NATS_HOST", "nats.internal")
	t.Setenv("SB_TEST_CONC", "8")
	t.Setenv("SB_TEST_EMPTY", "")
	cfg, err := config.Parse("bridge.yaml", []byte(`broker:
  kind: nats
  concurrency: ${SB_TEST_CONC}
  ackWait: ${SB_TEST_UNSET_WAIT:-20s}
  nats:
    url: nats://${SB_TEST_NATS_HOST}:${SB_TEST_UNSET_PORT:-4222}
    name: "cost $$5 ${SB_TEST_EMPTY:-default}"
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Broker.Concurrency != 8 || cfg.Broker.AckWait != 20*time.Second || cfg.Broker.NATS.URL != "nats://nats.internal:4222" ||
		cfg.Broker.NATS.ConnectionTag != "cost $5 default" {
		t.Errorf("expanded: %+v", cfg.Broker)
	}

	t.Setenv("SB_TEST_SECRETISH", "hunter2-is-not-a-number")
	_, err = config.Parse("bridge.yaml", []byte(`broker:
  kind: nats
  concurrency: ${SB_TEST_SECRETISH}
  nats:
    url: nats://${SB_TEST_NOT_SET}:4222
    name: ${1BAD}
routing:
  mode: ${SB_TEST_SECRETISH}
`))
	for _, want := range []string{
		"bridge.yaml:5: ${SB_TEST_NOT_SET} is not set (set it, or give a default: ${SB_TEST_NOT_SET:-value})",
		`bridge.yaml:6: ${1BAD}: "1BAD" is not a variable name`,
		"bridge.yaml:3: cannot unmarshal !!str the value of ${SB_TEST_SECRETISH} into int",
		`routing mode "${SB_TEST_SECRETISH}" is not all or first`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Errorf("an error prints a variable's value: %v", err)
	}
}

// TestBrokerBlocksAndAddresses: a block of another broker kind, or an
// address the broker cannot use, is refused where it is written.
func TestBrokerBlocksAndAddresses(t *testing.T) {
	for _, c := range []struct {
		name, yaml, want string
	}{
		{"kafka block under nats", "broker:\n  kind: nats\n  kafka:\n    brokers: [k:9092]\n",
			`bridge.yaml:3: broker.kafka is set but broker.kind is "nats"`},
		{"nats block under kafka", "broker:\n  kind: kafka\n  kafka: {brokers: [k:9092]}\n  nats: {url: nats://n:4222}\n",
			`bridge.yaml:4: broker.nats is set but broker.kind is "kafka"`},
		{"nats block under the default embedded", "broker:\n  nats: {url: nats://n:4222}\n",
			`bridge.yaml:2: broker.nats is set but broker.kind is "embedded"`},
		{"http url", "broker:\n  kind: nats\n  nats: {url: 'http://n:4222'}\n",
			`bridge.yaml:3: nats url scheme "http": NATS speaks nats://, tls://, ws:// or wss://`},
		{"no scheme", "broker:\n  kind: nats\n  nats: {url: 'n:4222'}\n", `bridge.yaml:3: nats url`},
		{"kafka url", "broker:\n  kind: kafka\n  kafka:\n    brokers: [k1:9092, 'kafka://k2:9092']\n",
			`bridge.yaml:4: kafka broker "kafka://k2:9092" is not host:port`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Parse("bridge.yaml", []byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v lacks %q", err, c.want)
			}
		})
	}
	for _, ok := range []string{
		"broker:\n  kind: nats\n  nats: {url: 'tls://a:4222, nats://b:4222'}\n",
		"broker:\n  kind: kafka\n  kafka: {brokers: ['k1:9092', '[::1]:9093']}\n",
		"broker:\n  kind: embedded\n  embedded: {port: 4222}\n",
	} {
		if _, err := config.Parse("bridge.yaml", []byte(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// TestRemovedKeyReportedOnce: a removed key gets its own message, not a
// second "unknown key" one, and the rest of the file is still read.
func TestRemovedKeyReportedOnce(t *testing.T) {
	cfg, err := config.Parse("bridge.yaml", []byte("engine:\n  embedded:\n    idlePoll: 20ms\n    dbPath: x.db\n"))
	if err == nil || strings.Contains(err.Error(), "unknown key") || strings.Count(err.Error(), "idlePoll") != 1 {
		t.Fatalf("error %v: want idlePoll reported once, as removed", err)
	}
	if cfg == nil || cfg.Engine.Embedded.DBPath != "x.db" {
		t.Fatalf("config %+v: the other keys are still read", cfg)
	}
}

// TestKafkaConsumerGroupTakesDots: the NATS rule on consumer group names
// is not Kafka's.
func TestKafkaConsumerGroupTakesDots(t *testing.T) {
	if _, err := config.Parse("bridge.yaml", []byte("broker:\n  kind: kafka\n  consumerGroup: orders.v2\n  kafka:\n    brokers: [k:9092]\n")); err != nil {
		t.Fatal(err)
	}
}
