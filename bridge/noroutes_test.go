package bridge_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/cmd/sagabridge/brokers"
)

// TestRunWithoutRoutesStops: a bridge whose config routes nothing (a
// worker deployed before its routes) consumes nothing, and Run returns
// when its context ends, as a SIGTERM does, instead of waiting forever for
// a handler that never comes.
func TestRunWithoutRoutesStops(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse("noroutes.yaml", []byte(`
broker: {kind: embedded, embedded: {dataDir: `+filepath.Join(dir, "nats")+`}}
engine: {embedded: {dbPath: `+filepath.Join(dir, "workflows.db")+`}}
routes: []
`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := bridge.New(context.Background(), cfg, bridge.Options{Connect: brokers.Connect, Logger: zaptest.NewLogger(t), Sagas: orderSagas(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	time.Sleep(500 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Run returned before its context ended: %v", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still running 10 s after its context ended")
	}
}
