package bridge_test

import (
	"errors"
	"github.com/sagabridge/sagabridge/sagas/order"
	"strings"
	"testing"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/cmd/sagabridge/brokers"
	"github.com/sagabridge/sagabridge/engine"
)

// TestPatchedWorkflowRefusedOnDaprd: a Go workflow that declares patches
// (IsPatched) passes validation on the embedded engine, which records
// patches, and is refused with the reason on engine.kind dapr, whose daprd
// 1.16 does not: by Validate (`sagabridge validate`) and by New (`run`),
// before anything connects.
func TestPatchedWorkflowRefusedOnDaprd(t *testing.T) {
	opts := bridge.Options{Sagas: orderSagas(t), Connect: brokers.Connect, Patches: map[string][]string{"OrderSaga": {"fraud-check"}}}
	for _, kind := range []string{"embedded", "dapr"} {
		cfg, err := config.Parse("bridge.yaml", order.BridgeYAML())
		if err != nil {
			t.Fatal(err)
		}
		cfg.Engine.Kind = kind
		err = bridge.Validate(cfg, opts)
		if kind == "embedded" {
			if err != nil {
				t.Errorf("embedded: %v", err)
			}
			continue
		}
		want := "workflow OrderSaga uses patches [fraud-check] and engine.kind is dapr"
		if !errors.Is(err, engine.ErrPatchesUnsupported) || !strings.Contains(err.Error(), want) {
			t.Errorf("dapr: got %v, want %q", err, want)
		}
		if _, err := bridge.New(t.Context(), cfg, opts); !errors.Is(err, engine.ErrPatchesUnsupported) {
			t.Errorf("New on dapr: %v", err)
		}
	}
}
