package bridge_test

import (
	"context"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/cmd/sagabridge/brokers"
)

// TestKafkaInsecureSkipVerifyWarns: turning off the brokers' certificate
// check is allowed (test clusters) but never silent: the worker says so at
// warn level when it connects.
func TestKafkaInsecureSkipVerifyWarns(t *testing.T) {
	kit := kafkaKit(t)
	cfg := devConfig(t, kit, t.TempDir())
	cfg.Broker.Kafka.TLS.Enable = true
	cfg.Broker.Kafka.TLS.InsecureSkipVerify = true
	core, logs := observer.New(zapcore.InfoLevel)
	b, err := bridge.New(context.Background(), cfg, bridge.Options{Connect: brokers.Connect, Logger: zap.New(core), Sagas: orderSagas(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close(context.Background()) }()
	if n := logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("insecureSkipVerify").Len(); n != 1 {
		t.Errorf("%d warnings about insecureSkipVerify, want 1", n)
	}
}
