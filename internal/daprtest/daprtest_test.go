package daprtest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/internal/daprtest"
)

// metadata fetches daprd's /v1.0/metadata; code 0 means no answer.
func metadata(t *testing.T, s *daprtest.Sidecar) (int, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.HTTPAddr()+"/v1.0/metadata", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var md map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatalf("metadata: %v", err)
	}
	return resp.StatusCode, md
}

func TestSidecarStartsKillsAndRestarts(t *testing.T) {
	s := daprtest.Start(t, daprtest.Options{})
	if !s.Running() {
		t.Fatal("daprd not running after Start")
	}
	code, md := metadata(t, s)
	if code != http.StatusOK || md["id"] != s.AppID() || md["runtimeVersion"] != "1.14.0" {
		t.Fatalf("metadata: %d %v", code, md)
	}

	s.Kill()
	if s.Running() {
		t.Fatal("daprd still running after Kill")
	}
	if code, _ := metadata(t, s); code != 0 {
		t.Fatalf("metadata answered %d after Kill", code)
	}

	s.Restart()
	if code, md := metadata(t, s); code != http.StatusOK || md["id"] != s.AppID() {
		t.Fatalf("metadata after restart: %d %v", code, md)
	}
}

func TestReplicasShareControlPlane(t *testing.T) {
	shared := daprtest.Options{
		Placement: daprtest.StartPlacement(t),
		Scheduler: daprtest.StartScheduler(t),
		Redis:     daprtest.StartRedis(t),
		AppID:     daprtest.NewAppID(),
	}
	a := daprtest.Start(t, shared)
	b := daprtest.Start(t, shared)
	if a.GRPCAddr() == b.GRPCAddr() || a.AppID() != b.AppID() || a.Placement() != b.Placement() {
		t.Fatalf("replicas: %s %s and %s %s", a.AppID(), a.GRPCAddr(), b.AppID(), b.GRPCAddr())
	}
	for _, s := range []*daprtest.Sidecar{a, b} {
		if code, md := metadata(t, s); code != http.StatusOK || md["actorRuntime"].(map[string]any)["placement"] != "placement: connected" {
			t.Fatalf("%s: %d %v", s.GRPCAddr(), code, md)
		}
	}
}

// TestOwnRedisServer is the path of a machine without a Redis service.
func TestOwnRedisServer(t *testing.T) {
	r := daprtest.StartRedisServer(t)
	if r.Addr() == "127.0.0.1:6379" {
		t.Fatalf("own server on the machine's port")
	}
	s := daprtest.Start(t, daprtest.Options{Redis: r})
	if code, md := metadata(t, s); code != http.StatusOK || len(md["components"].([]any)) != 1 {
		t.Fatalf("metadata: %d %v", code, md)
	}
}
