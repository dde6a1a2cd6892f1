package embedded_test

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sagabridge/sagabridge/engine/embedded"
)

// TestLoggerLevels: durabletask's lines keep their level, but for the
// notices it prints while a worker stops (through either of its print
// styles), which come out at debug.
func TestLoggerLevels(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := embedded.NewLogger(zap.New(core))
	l.Info("worker started")
	l.Warn("failed to complete activity task: context canceled")
	l.Warnf("%s: failed before receiving orchestration result", "order-1")
	l.Warnf("%s/%s#%d: failed before receiving activity result", "order-1", "Publish", 3)
	l.Warnf("received grpc error code %v", "Unavailable")
	l.Warn("received unknown work item type")
	l.Error("stream error: context canceled")
	l.Errorf("background processor received stream error: %v", "EOF")
	want := []struct {
		level zapcore.Level
		msg   string
	}{
		{zapcore.InfoLevel, "worker started"},
		{zapcore.DebugLevel, "failed to complete activity task: context canceled"},
		{zapcore.DebugLevel, "order-1: failed before receiving orchestration result"},
		{zapcore.DebugLevel, "order-1/Publish#3: failed before receiving activity result"},
		{zapcore.WarnLevel, "received grpc error code Unavailable"},
		{zapcore.WarnLevel, "received unknown work item type"},
		{zapcore.DebugLevel, "stream error: context canceled"},
		{zapcore.ErrorLevel, "background processor received stream error: EOF"},
	}
	got := logs.All()
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Level != w.level || got[i].Message != w.msg {
			t.Errorf("line %d: %s %q, want %s %q", i, got[i].Level, got[i].Message, w.level, w.msg)
		}
	}
}
