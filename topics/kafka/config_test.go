package kafka_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/topics/kafka"
)

// joined returns the individual errors of an errors.Join result.
func joined(t *testing.T, err error) []error {
	t.Helper()
	if err == nil {
		t.Fatal("want an error, got nil")
	}
	var j interface{ Unwrap() []error }
	if !errors.As(err, &j) {
		return []error{err}
	}
	return j.Unwrap()
}

func assertProblems(t *testing.T, err error, want ...string) {
	t.Helper()
	errs := joined(t, err)
	if len(errs) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(errs), len(want), err)
	}
	for _, w := range want {
		found := false
		for _, e := range errs {
			if strings.Contains(e.Error(), w) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no problem mentions %q in:\n%v", w, err)
		}
	}
}

func TestPublisherConfigValidateReportsEveryProblem(t *testing.T) {
	cfg := kafka.PublisherConfig{
		Connection: kafka.Connection{
			Brokers:     []string{"localhost:9092", "no-port"},
			DialTimeout: -time.Second,
			TLS:         kafka.TLSConfig{CAFile: "/ca.pem", InsecureSkipVerify: true},
			SASL: kafka.SASLConfig{
				Mechanism: "GSSAPI", Password: "pw", PasswordFile: "/nonexistent/pw",
			},
		},
		TopicCreation: kafka.TopicCreation{TopicPartitions: -1, TopicReplicationFactor: -3},
		BatchTimeout:  -time.Millisecond,
	}
	err := cfg.Validate()
	assertProblems(t, err,
		`brokers[1]: "no-port" is not host:port`,
		"dial_timeout",
		"tls.ca_file: set but tls.enable is false",
		"tls.insecure_skip_verify: set but tls.enable is false",
		`sasl.mechanism: "GSSAPI" is not one of`,
		"sasl.username: required",
		"password and password_file are both set",
		"sasl.password_file:",
		"topic_partitions",
		"topic_replication_factor",
		"batch_timeout",
	)

	_, nerr := kafka.NewPublisher(cfg, nil)
	if nerr == nil || !strings.Contains(nerr.Error(), "batch_timeout") || !strings.Contains(nerr.Error(), "no-port") {
		t.Fatalf("NewPublisher did not refuse with every problem: %v", nerr)
	}
}

func TestSubscriberConfigValidateReportsEveryProblem(t *testing.T) {
	cfg := kafka.SubscriberConfig{
		Connection: kafka.Connection{
			TLS:  kafka.TLSConfig{Enable: true, CertFile: "/nonexistent/cert.pem"},
			SASL: kafka.SASLConfig{Mechanism: kafka.SASLScramSHA512, Username: "u"},
		},
		StartOffset:       "middle",
		CloseTimeout:      -time.Second,
		HeartbeatInterval: 10 * time.Second,
		SessionTimeout:    6 * time.Second,
		QueueCapacity:     -1,
	}
	err := cfg.Validate()
	assertProblems(t, err,
		"brokers: at least one broker address is required",
		"cert_file and key_file must be given together",
		"tls.cert_file:",
		"one of password or password_file is required",
		`start_offset: "middle"`,
		"close_timeout",
		"heartbeat_interval",
		"queue_capacity",
	)
	if _, nerr := kafka.NewSubscriber(cfg, nil); nerr == nil || !strings.Contains(nerr.Error(), "start_offset") {
		t.Fatalf("NewSubscriber did not refuse: %v", nerr)
	}
}

func TestConfigValidateAcceptsMinimalAndFullConfigs(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	minimal := kafka.SubscriberConfig{Connection: kafka.Connection{Brokers: []string{"127.0.0.1:9092"}}}
	if err := minimal.Validate(); err != nil {
		t.Fatalf("minimal subscriber config: %v", err)
	}
	full := kafka.PublisherConfig{
		Connection: kafka.Connection{
			Brokers: []string{"a:9092", "b:9093"},
			SASL:    kafka.SASLConfig{Mechanism: "scram-sha-256", Username: "u", PasswordFile: pwFile},
			TLS:     kafka.TLSConfig{Enable: true},
		},
		TopicCreation:    kafka.TopicCreation{AutoCreateTopics: true, TopicPartitions: 6, TopicReplicationFactor: 3},
		KeyMetadataField: "ce_subject",
	}
	if err := full.Validate(); err != nil {
		t.Fatalf("full publisher config: %v", err)
	}
	p, err := kafka.NewPublisher(full, nil)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	_ = p.Close()
}

func TestSASLPasswordFileMustBeReadable(t *testing.T) {
	cfg := kafka.PublisherConfig{Connection: kafka.Connection{
		Brokers: []string{"127.0.0.1:9092"},
		SASL:    kafka.SASLConfig{Mechanism: kafka.SASLPlain, Username: "u", PasswordFile: t.TempDir()},
	}}
	if _, err := kafka.NewPublisher(cfg, nil); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("want a directory problem, got %v", err)
	}
}
