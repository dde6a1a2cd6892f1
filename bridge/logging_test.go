package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/sagabridge/sagabridge/sagas/order"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/cmd/sagabridge/brokers"
)

func TestRepeatLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := bridge.NewRepeatLimiter(30*time.Second, func() time.Time { return now })
	step := func(d time.Duration, kind string, wantOK bool, wantHeld int) {
		t.Helper()
		now = now.Add(d)
		if ok, held := l.Allow(kind); ok != wantOK || held != wantHeld {
			t.Errorf("at %s, %s: allow %v held %d, want %v %d", now.Sub(time.Unix(0, 0)), kind, ok, held, wantOK, wantHeld)
		}
	}
	step(0, "a", true, 0)
	step(time.Second, "a", false, 0)
	step(time.Second, "b", true, 0) // another kind is not held back
	step(time.Second, "a", false, 0)
	step(28*time.Second, "a", true, 2)
	step(time.Second, "a", false, 0)
	step(31*time.Second, "a", true, 1)
	step(31*time.Second, "a", true, 0)
}

func TestIsConnectionError(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{fmt.Errorf("fetch: %w", syscall.ECONNRESET), true},
		{errors.New("failed to dial: failed to open connection to 127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused"), true},
		{errors.New("Unable to establish connection to consumer group coordinator for group g"), true},
		{errors.New("route order-placed: no such workflow"), false},
		{nil, false},
	} {
		if got := bridge.IsConnectionError(c.err); got != c.want {
			t.Errorf("IsConnectionError(%v) = %v", c.err, got)
		}
	}
}

// TestUnreachableKafkaLogsEachKindOnce runs the bridge against a Kafka
// address nobody listens on: its readers retry, and the log says so once
// per kind of failure, at warn, not once per retry at error.
func TestUnreachableKafkaLogsEachKindOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cfg, err := config.Parse("dev.yaml", order.BridgeYAML())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Broker.Kind = "kafka"
	cfg.Broker.Kafka.Brokers = []string{addr}
	cfg.Engine.Embedded.DBPath = filepath.Join(t.TempDir(), "wf.db")
	core, logs := observer.New(zapcore.DebugLevel)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := bridge.New(ctx, cfg, bridge.Options{Connect: brokers.Connect, Logger: zap.New(core), Sagas: orderSagas(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	runCtx, stop := context.WithTimeout(ctx, 4*time.Second)
	defer stop()
	_ = b.Run(runCtx)

	kinds := map[string]int{}
	refused := false
	for _, e := range logs.All() {
		if e.Level >= zapcore.ErrorLevel {
			t.Errorf("logged at %s: %s %v", e.Level, e.Message, e.ContextMap())
		}
		if e.Level != zapcore.WarnLevel {
			continue
		}
		kinds[e.LoggerName+" "+e.Message]++
		refused = refused || strings.Contains(fmt.Sprint(e.ContextMap()["error"]), "connection refused")
	}
	if !refused {
		t.Errorf("no warning names the refused connection: %v", kinds)
	}
	for k, n := range kinds {
		if n > 1 {
			t.Errorf("%q logged %d times in 4s", k, n)
		}
	}
}
