// Package brokers connects the broker a worker's config describes (NATS
// JetStream, an embedded nats-server, or Kafka) and answers what the worker
// asks of it beside publishing and consuming: health, the progress feed,
// dead letters, lag and outcome reads. It is the composition root's part:
// the bridge owns the interfaces and imports no broker package.
package brokers

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/topics/kafka"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// Connector connects brokers; its Connect is a bridge.Connect.
type Connector struct {
	// NATSServer is a nats-server running in this process that the
	// configured NATS URL points at (dev, the benchmark): the worker
	// connects to it in-process, as it does to the server it starts for
	// broker kind embedded.
	NATSServer *natsjs.Server
}

// Connect connects the broker p.Config describes.
func (c Connector) Connect(_ context.Context, p bridge.BrokerParams) (bridge.Broker, error) {
	switch p.Config.Kind {
	case "kafka":
		return connectKafka(p)
	case "embedded", "nats":
		return connectNATS(p, c.NATSServer)
	}
	return nil, fmt.Errorf("broker: kind %q is not supported", p.Config.Kind)
}

// Connect connects the broker p.Config describes, without an in-process
// nats-server.
func Connect(ctx context.Context, p bridge.BrokerParams) (bridge.Broker, error) {
	return Connector{}.Connect(ctx, p)
}

func connectNATS(p bridge.BrokerParams, inProcess *natsjs.Server) (bridge.Broker, error) {
	bc := p.Config
	br := &natsBroker{group: bc.ConsumerGroup, url: bc.NATS.URL}
	var opts []nats.Option
	if bc.Kind == "embedded" {
		srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: bc.Embedded.DataDir, Port: bc.Embedded.Port})
		if err != nil {
			return nil, err
		}
		br.server, br.url = srv, srv.ClientURL()
		opts = append(opts, srv.InProcess())
		p.Log.Info("embedded nats-server started", zap.String("url", br.url), zap.String("dir", bc.Embedded.DataDir))
	} else {
		var err error
		if opts, err = NATSOptions(bc.NATS); err != nil {
			return nil, err
		}
		if inProcess != nil {
			opts = append(opts, inProcess.InProcess())
		}
	}
	ps, err := natsjs.New(natsjs.Config{
		URL:           br.url,
		ConsumerGroup: bc.ConsumerGroup,
		Concurrency:   bc.Concurrency,
		MaxBacklog:    bc.MaxBacklog,
		AckWait:       bc.AckWait,
		Key:           p.Key,
		Options:       opts,
		Logger:        p.Watermill,
	})
	if err != nil {
		if br.server != nil {
			br.server.Shutdown()
		}
		return nil, err
	}
	br.PubSub = ps
	return br, nil
}

func connectKafka(p bridge.BrokerParams) (bridge.Broker, error) {
	bc := p.Config
	// KafkaConnection reads the variable; an empty one is an error that
	// names it here, not a vague "password required" later.
	if _, err := secret("", bc.Kafka.SASL.PasswordEnv); err != nil {
		return nil, fmt.Errorf("broker: kafka: sasl password: %w", err)
	}
	if bc.Kafka.TLS.InsecureSkipVerify {
		p.Log.Warn("kafka: TLS without certificate verification (broker.kafka.tls.insecureSkipVerify): anyone between the worker and the brokers can read and change the events and the SASL exchange")
	}
	sc := kafkaSubscriberConfig(bc)
	sc.Key = p.Key
	ps, err := kafka.NewPubSub(kafka.PublisherConfig{Connection: KafkaConnection(bc.Kafka), TopicCreation: kafkaTopics(bc.Kafka)}, sc, p.Watermill)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	return &kafkaBroker{PubSub: ps, cfg: bc, wm: p.Watermill}, nil
}

// KafkaConnection builds the connection settings of a Kafka broker config
// (TLS, SASL); a SASL password named by passwordEnv is read from the
// environment (a file is read by the kafka package).
func KafkaConnection(k config.Kafka) kafka.Connection {
	var password string
	if k.SASL.PasswordEnv != "" {
		password = strings.TrimSpace(os.Getenv(k.SASL.PasswordEnv))
	}
	return kafka.Connection{
		Brokers:  k.Brokers,
		ClientID: k.ClientID,
		TLS: kafka.TLSConfig{
			Enable: k.TLS.Enable, CAFile: k.TLS.CAFile, CertFile: k.TLS.CertFile,
			KeyFile: k.TLS.KeyFile, InsecureSkipVerify: k.TLS.InsecureSkipVerify,
		},
		SASL: kafka.SASLConfig{Mechanism: k.SASL.Mechanism, Username: k.SASL.Username, PasswordFile: k.SASL.PasswordFile, Password: kafka.Secret(password)},
	}
}

func kafkaTopics(k config.Kafka) kafka.TopicCreation {
	return kafka.TopicCreation{AutoCreateTopics: k.AutoCreateTopics, TopicPartitions: k.TopicPartitions}
}

func kafkaSubscriberConfig(bc config.Broker) kafka.SubscriberConfig {
	return kafka.SubscriberConfig{
		Connection:    KafkaConnection(bc.Kafka),
		TopicCreation: kafkaTopics(bc.Kafka),
		ConsumerGroup: bc.ConsumerGroup,
		GroupPerTopic: true,
		// Up to this many at once, one at a time per ordering key (the
		// worker orders by workflow instance, as on NATS).
		Concurrency: bc.Concurrency,
		MaxBacklog:  bc.MaxBacklog,
		// A nacked event (parked, engine down) is resent after 100 ms
		// doubling to 10 s, as JetStream redelivers it on NATS.
		NackResendSleep: 100 * time.Millisecond,
		NackResendMax:   10 * time.Second,
		// Heartbeats at a tenth of the session timeout notice a rebalance
		// promptly; the timeout bounds redelivery after a crash.
		SessionTimeout:    bc.Kafka.SessionTimeout,
		HeartbeatInterval: max(bc.Kafka.SessionTimeout/10, 100*time.Millisecond),
		// A fetch returns as soon as one record is there; this only bounds
		// how long shutdown and rebalances wait on an idle topic.
		MaxWait: 200 * time.Millisecond,
	}
}

// NATSOptions are the connection options (credentials, TLS, name) of a
// NATS broker config, for the worker and for tools that connect on their
// own. Secrets are read from their files and never logged.
func NATSOptions(c config.NATS) ([]nats.Option, error) {
	var opts []nats.Option
	if c.ConnectionTag != "" {
		opts = append(opts, nats.Name(c.ConnectionTag))
	}
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.NKeySeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats: nkey seed: %w", err)
		}
		opts = append(opts, o)
	}
	if c.User != "" {
		pw, err := secret(c.PasswordFile, c.PasswordEnv)
		if err != nil {
			return nil, fmt.Errorf("nats: password: %w", err)
		}
		opts = append(opts, nats.UserInfo(c.User, pw))
	}
	if c.TokenFile != "" || c.TokenEnv != "" {
		tok, err := secret(c.TokenFile, c.TokenEnv)
		if err != nil {
			return nil, fmt.Errorf("nats: token: %w", err)
		}
		opts = append(opts, nats.Token(tok))
	}
	if c.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(c.TLSCAFile))
	}
	if c.TLSCertFile != "" || c.TLSKeyFile != "" {
		opts = append(opts, nats.ClientCert(c.TLSCertFile, c.TLSKeyFile))
	}
	return opts, nil
}

// secret reads a secret from its file or, failing that, from the
// environment variable named; "" when neither is configured. Errors name
// the file or variable, never the value.
func secret(file, env string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	if env == "" {
		return "", nil
	}
	v := strings.TrimSpace(os.Getenv(env))
	if v == "" {
		return "", fmt.Errorf("environment variable %s is empty or unset", env)
	}
	return v, nil
}
