package main

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics/kafka"
)

// secretValue is a value that cannot appear in a log by chance.
func secretValue(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// authNATS starts nats-server with JetStream that requires user and
// password.
func authNATS(t *testing.T, dir, user, password string) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir,
		NoSigs: true, NoLog: true, Username: user, Password: password,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns.ClientURL()
}

func writeSecret(t *testing.T, dir, name, value string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// secretBroker is a broker that requires a password, for a worker
// process, and the test's own clients of it.
type secretBroker struct {
	name string
	// yaml is the config's broker section; the password is in passwordFile.
	yaml    func(passwordFile string) map[string]any
	connect func(t *testing.T, group string) bridge.Broker
}

func natsSecretBroker(t *testing.T, dir, user, password string) secretBroker {
	natsURL := authNATS(t, filepath.Join(dir, "nats"), user, password)
	// The test's own clients put the credentials in the URL; they print
	// nothing into the worker's output.
	authed, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	authed.User = url.UserPassword(user, password)
	return secretBroker{
		name: "nats",
		yaml: func(file string) map[string]any {
			return map[string]any{"kind": "nats", "nats": map[string]any{"url": natsURL, "user": user, "passwordFile": file}}
		},
		connect: func(t *testing.T, group string) bridge.Broker { return mustPubSub(t, authed.String(), group) },
	}
}

// kafkaSecretBroker is kfake with SASL (SCRAM-SHA-256) and one user.
func kafkaSecretBroker(t *testing.T, _, user, password string) secretBroker {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", user, password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	return secretBroker{
		name: "kafka",
		yaml: func(file string) map[string]any {
			return map[string]any{"kind": "kafka", "kafka": map[string]any{
				"brokers": brokers, "autoCreateTopics": true,
				"sasl": map[string]any{"mechanism": "SCRAM-SHA-256", "username": user, "passwordFile": file},
			}}
		},
		connect: func(t *testing.T, group string) bridge.Broker {
			conn := kafka.Connection{Brokers: brokers, ClientID: group,
				SASL: kafka.SASLConfig{Mechanism: "SCRAM-SHA-256", Username: user, Password: kafka.Secret(password)}}
			auto := kafka.TopicCreation{AutoCreateTopics: true}
			ps, err := kafka.NewPubSub(kafka.PublisherConfig{Connection: conn, TopicCreation: auto}, kafka.SubscriberConfig{
				Connection: conn, TopicCreation: auto, ConsumerGroup: group, GroupPerTopic: true,
				MaxWait: 100 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond, JoinGroupBackoff: 200 * time.Millisecond,
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ps.Close() })
			return ps
		},
	}
}

// TestSecretsNeverLogged runs a worker at debug level with every secret
// it takes in a file (the broker password against a broker that requires
// it: NATS user/password, Kafka SASL; the admin bearer token; the Dapr API
// token), drives orders and bad events through it, and greps everything
// the process printed for each secret. Then a worker whose NATS password
// (from the environment this time) is wrong: its error names the problem,
// not the password.
func TestSecretsNeverLogged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	const user = "sagabridge"
	for _, newBroker := range []func(*testing.T, string, string, string) secretBroker{natsSecretBroker, kafkaSecretBroker} {
		dir := t.TempDir()
		password := secretValue(t, "brokerpw-")
		br := newBroker(t, dir, user, password)
		t.Run(br.name, func(t *testing.T) { secretsNeverLogged(t, dir, br, password) })
	}
	t.Run("wrong password", wrongPasswordNotEchoed)
}

func secretsNeverLogged(t *testing.T, dir string, br secretBroker, password string) {
	adminToken := secretValue(t, "admintok-")
	daprToken := secretValue(t, "daprtok-")
	cfgPath := writeConfigSections(t, dir, map[string]any{
		"broker": br.yaml(writeSecret(t, dir, "broker.pass", password)),
		"engine": map[string]any{"kind": "embedded",
			"embedded": map[string]any{"dbPath": filepath.Join(dir, "workflows.db")},
			"dapr":     map[string]any{"apiTokenFile": writeSecret(t, dir, "dapr.token", daprToken)},
		},
		"admin": map[string]any{"listen": "127.0.0.1:0", "tokenFile": writeSecret(t, dir, "admin.token", adminToken)},
	})
	logPath := filepath.Join(dir, "worker.log")

	client := br.connect(t, "test-client")
	_, watcher := runLegacyServices(t, br.connect, simulated.Config{})

	w := startWorker(t, cfgPath, logPath, workerLogLevelEnv+"=debug")
	const n = 5
	for i := 1; i <= n; i++ {
		o := simulated.Order{OrderID: "secret-" + itoa(i), Amount: float64(i), FailPayment: i == 3}
		if err := simulated.PublishOrder(client.Publisher(), order.OrdersPlaced, "evt-"+o.OrderID, o); err != nil {
			t.Fatal(err)
		}
	}
	// Bad events: undecodable, and a CEL error at run time.
	for _, body := range []string{`{"specversion":"1.0","id":`, `{"specversion":"1.0","id":"e","source":"s","type":"order.placed","data":{"amount":1}}`} {
		if err := client.Publisher().Publish(order.OrdersPlaced, message.NewMessage(secretValue(t, "bad-"), []byte(body))); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitUntil(t, 90*time.Second, "every outcome", func() bool { return watcher.Count() >= n })
	testkit.WaitUntil(t, 30*time.Second, "the dead letters logged", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Count(string(b), "event dead-lettered") >= 2
	})
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = w.cmd.Wait()

	out, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	log := string(out)
	// The run logged at debug level (or the grep would prove little).
	for _, want := range []string{`"level":"debug"`, "workflow started", "event dead-lettered", "admin server listening"} {
		if !strings.Contains(log, want) {
			t.Errorf("the worker's output lacks %q", want)
		}
	}
	for name, s := range map[string]string{"broker password": password, "admin token": adminToken, "dapr api token": daprToken} {
		if strings.Contains(log, s) {
			t.Errorf("the %s appears in the worker's output", name)
		}
	}
	t.Logf("worker output: %d bytes, %d lines, no secret in it", len(log), strings.Count(log, "\n"))
}

func wrongPasswordNotEchoed(t *testing.T) {
	const user = "sagabridge"
	password := secretValue(t, "natspw-")
	natsURL := authNATS(t, filepath.Join(t.TempDir(), "nats"), user, password)
	// A wrong password, from the environment: the worker fails on it and
	// says so without echoing either password.
	wrong := secretValue(t, "wrongpw-")
	badDir := t.TempDir()
	badCfg := writeConfigSections(t, badDir, map[string]any{
		"broker": map[string]any{"kind": "nats", "nats": map[string]any{"url": natsURL, "user": user, "passwordEnv": "SAGABRIDGE_TEST_NATS_PASSWORD"}},
		"engine": map[string]any{"kind": "embedded", "embedded": map[string]any{"dbPath": filepath.Join(badDir, "workflows.db")}},
		"admin":  map[string]any{"listen": "127.0.0.1:0"},
	})
	badLog := filepath.Join(badDir, "worker.log")
	bad := startWorker(t, badCfg, badLog, workerLogLevelEnv+"=debug", "SAGABRIDGE_TEST_NATS_PASSWORD="+wrong)
	exited := make(chan error, 1)
	go func() { exited <- bad.cmd.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Error("a worker with a wrong password exited 0")
		}
	case <-time.After(30 * time.Second):
		t.Error("a worker with a wrong password still runs after 30s")
		bad.kill()
	}
	b, _ := os.ReadFile(badLog)
	if !strings.Contains(strings.ToLower(string(b)), "authorization violation") {
		t.Errorf("the error does not say the credentials were refused:\n%s", b)
	}
	for name, s := range map[string]string{"wrong password": wrong, "nats password": password} {
		if strings.Contains(string(b), s) {
			t.Errorf("the %s appears in the failing worker's output", name)
		}
	}
	t.Logf("wrong password: %s", strings.TrimSpace(lastLine(string(b))))
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}
