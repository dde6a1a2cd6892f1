package bridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/cmd/sagabridge/brokers"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/sagas/registry"
	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/kafka"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// brokerKit is one broker the end-to-end suite runs on.
type brokerKit struct {
	name string
	// configure points the bridge's config at the broker.
	configure func(cfg *config.Config)
	// pubsub connects a client with its own consumer group, for the
	// simulated services, the outcome watcher and the test's producer.
	pubsub func(t *testing.T, group string) bridge.Broker
}

// natsKit starts a real nats-server with JetStream in the test process.
func natsKit(t *testing.T) brokerKit {
	t.Helper()
	srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	url := srv.ClientURL()
	return brokerKit{
		name: "nats",
		configure: func(cfg *config.Config) {
			cfg.Broker.Kind = "nats"
			cfg.Broker.NATS.URL = url
		},
		pubsub: natsClients(url),
	}
}

// natsClients connects test clients over TCP to the NATS server at url.
func natsClients(url string) func(t *testing.T, group string) bridge.Broker {
	return func(t *testing.T, group string) bridge.Broker {
		ps, err := natsjs.New(natsjs.Config{URL: url, ConsumerGroup: group, Concurrency: 8})
		if err != nil {
			t.Fatalf("nats client: %v", err)
		}
		t.Cleanup(func() { _ = ps.Close() })
		return ps
	}
}

// embeddedKit is broker kind embedded on a port of its own.
func embeddedKit(t *testing.T) brokerKit {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	dir := t.TempDir()
	return brokerKit{
		name: "embedded",
		configure: func(cfg *config.Config) {
			cfg.Broker.Kind = "embedded"
			cfg.Broker.Embedded.DataDir = dir
			cfg.Broker.Embedded.Port = port
		},
		pubsub: natsClients(fmt.Sprintf("nats://127.0.0.1:%d", port)),
	}
}

// kafkaKit starts an in-process Kafka-protocol broker (kfake).
func kafkaKit(t *testing.T) brokerKit {
	t.Helper()
	k, err := kafka.StartEmbedded()
	if err != nil {
		t.Fatalf("start kafka: %v", err)
	}
	t.Cleanup(k.Close)
	brokers := k.Brokers()
	return brokerKit{
		name: "kafka",
		configure: func(cfg *config.Config) {
			cfg.Broker.Kind = "kafka"
			cfg.Broker.Kafka.Brokers = brokers
			cfg.Broker.Kafka.AutoCreateTopics = true
		},
		pubsub: func(t *testing.T, group string) bridge.Broker {
			ps, err := kafka.NewGroupClient(brokers, group)
			if err != nil {
				t.Fatalf("kafka client: %v", err)
			}
			t.Cleanup(func() { _ = ps.Close() })
			return ps
		},
	}
}

// devConfig is the dev wiring (routes of the OrderSaga) on a test broker and
// a fresh workflow database.
func devConfig(t *testing.T, kit brokerKit, dir string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("dev.yaml", order.BridgeYAML())
	if err != nil {
		t.Fatalf("dev config: %v", err)
	}
	kit.configure(cfg)
	cfg.Engine.Embedded.DBPath = filepath.Join(dir, "workflows.db")
	cfg.Engine.Dapr.RetentionDir = filepath.Join(dir, "retention")
	return cfg
}

// stack is a running bridge plus simulated services and an outcome watcher.
type stack struct {
	bridge  *bridge.Bridge
	parts   *simulated.Participants
	watcher *simulated.Watcher
	client  bridge.Broker
	cancel  context.CancelFunc
	done    sync.WaitGroup
	errs    chan error
}

type stackOptions struct {
	participants bool
	sim          simulated.Config
	// metrics, when set, receives the bridge's metrics (admin.Metrics to
	// read real Prometheus counters).
	metrics bridge.Metrics
	// tracer, when set, traces the bridge.
	tracer trace.TracerProvider
	// logger, when set, is the bridge's logger (a test reading its logs).
	logger *zap.Logger
	// sagas, when set, are the Go sagas the bridge runs in place of the
	// order demo's, as a main registers them.
	sagas *registry.Registry
}

func startStack(t *testing.T, kit brokerKit, cfg *config.Config, opts stackOptions) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := opts.logger
	if log == nil {
		log = zaptest.NewLogger(t).Named("bridge")
	}
	reg := opts.sagas
	if reg == nil {
		reg = orderSagas(t)
	}
	b, err := bridge.New(ctx, cfg, bridge.Options{Connect: brokers.Connect, Logger: log, Metrics: opts.metrics,
		TracerProvider: opts.tracer, Sagas: reg})
	if err != nil {
		cancel()
		t.Fatalf("bridge: %v", err)
	}
	s := &stack{bridge: b, cancel: cancel, errs: make(chan error, 4), watcher: simulated.NewWatcher(nil)}
	s.client = kit.pubsub(t, "test-client")
	run := func(f func() error) {
		s.done.Add(1)
		go func() {
			defer s.done.Done()
			if err := f(); err != nil && !errors.Is(err, context.Canceled) {
				s.errs <- err
			}
		}()
	}
	run(func() error { return b.Run(ctx) })
	// Up once every routed topic is subscribed (the routes check of
	// /readyz), so a test's first event and first readiness look find it so.
	for _, c := range b.ReadyChecks() {
		if c.Name == "routes" {
			testkit.WaitUntil(t, 30*time.Second, "the bridge to subscribe its topics", func() bool { return c.Run(ctx) == nil })
		}
	}
	watch := kit.pubsub(t, "test-watcher")
	run(func() error { return s.watcher.Run(ctx, watch.Subscriber(), cfg.Outcomes.Topic) })
	if opts.participants {
		legacy := kit.pubsub(t, "legacy-services")
		s.parts, err = simulated.New(opts.sim, legacy.Publisher(), legacy.Subscriber(), nil)
		if err != nil {
			t.Fatal(err)
		}
		run(func() error { return s.parts.Run(ctx) })
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *stack) stop(t *testing.T) {
	s.cancel()
	s.done.Wait()
	if err := s.bridge.Close(context.Background()); err != nil {
		t.Logf("bridge close: %v", err)
	}
	select {
	case err := <-s.errs:
		t.Errorf("component failed: %v", err)
	default:
	}
}

func publishOrder(t *testing.T, s *stack, eventID string, o simulated.Order) {
	t.Helper()
	if err := simulated.PublishOrder(s.client.Publisher(), "orders.placed", eventID, o); err != nil {
		t.Fatal(err)
	}
}

func orderID(run string, i int) string { return fmt.Sprintf("%s-%03d", run, i) }

// watchEvents hands fn every CloudEvent published on topic from now until
// the test ends; what is not a CloudEvent is skipped.
func watchEvents(t *testing.T, ps bridge.Broker, topic string, fn func(topics.CloudEvent)) {
	t.Helper()
	ch, err := ps.Subscriber().Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for msg := range ch {
			var ev topics.CloudEvent
			if json.Unmarshal(msg.Payload, &ev) == nil {
				fn(ev)
			}
			msg.Ack()
		}
	}()
}

// orderSagas registers the order demo's Go saga and compensations, as
// sagabridge's main does.
func orderSagas(t testing.TB) *registry.Registry {
	t.Helper()
	r, err := order.Sagas()
	if err != nil {
		t.Fatal(err)
	}
	return r
}
