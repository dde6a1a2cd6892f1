package daprtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
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

// stateRoundTrip saves key through daprd's state API and reads it back.
func stateRoundTrip(t *testing.T, s *daprtest.Sidecar, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base := "http://" + s.HTTPAddr() + "/v1.0/state/statestore"
	body := fmt.Sprintf(`[{"key":%q,"value":{"saga":"order-1"}}]`, key)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("save state: %v", err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("save state: %d %s", resp.StatusCode, msg)
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, base+"/"+key, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("get state: %v", err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(bytes.TrimSpace(got), []byte(`{"saga":"order-1"}`)) {
		t.Fatalf("get state: %d %s", resp.StatusCode, got)
	}
}

// storedKeys counts the rows of daprd's state table whose key ends in key.
func storedKeys(t *testing.T, pg *daprtest.Postgres, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := pg.Query(ctx, "SELECT count(*) FROM state WHERE key LIKE '%||"+key+"'")
	if err != nil {
		t.Fatalf("query %s: %v", pg.Database(), err)
	}
	return rows[0][0]
}

func TestSidecarStartsKillsAndRestarts(t *testing.T) {
	s := daprtest.Start(t, daprtest.Options{})
	if !s.Running() {
		t.Fatal("daprd not running after Start")
	}
	code, md := metadata(t, s)
	if code != http.StatusOK || md["id"] != s.AppID() || md["runtimeVersion"] != strings.TrimPrefix(daprtest.Version, "v") {
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

func TestReplicasShareControlPlaneAndDatabase(t *testing.T) {
	pg := daprtest.StartPostgres(t)
	shared := daprtest.Options{
		Placement:  daprtest.StartPlacement(t),
		Scheduler:  daprtest.StartScheduler(t),
		StateStore: pg,
		AppID:      daprtest.NewAppID(),
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
	stateRoundTrip(t, a, "from-a")
	stateRoundTrip(t, b, "from-b")
	if n := storedKeys(t, pg, "from-%"); n != "2" {
		t.Fatalf("%s holds %s of the replicas' 2 keys", pg.Database(), n)
	}
}

// TestPostgresDatabasePerHarness: each harness works in a database of its
// own, gone when its test ends.
func TestPostgresDatabasePerHarness(t *testing.T) {
	server := daprtest.StartPostgres(t)
	var names []string
	t.Run("harness", func(t *testing.T) {
		a, b := server.NewDatabase(t), server.NewDatabase(t)
		if a.Database() == b.Database() || a.Database() == server.Database() {
			t.Fatalf("databases %s, %s beside %s", a.Database(), b.Database(), server.Database())
		}
		names = []string{a.Database(), b.Database()}
		if n := databases(t, server, names); n != "2" {
			t.Fatalf("%s of %v exist", n, names)
		}
	})
	if n := databases(t, server, names); n != "0" {
		t.Fatalf("%s of %v left after their test", n, names)
	}
}

func databases(t *testing.T, pg *daprtest.Postgres, names []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := pg.Query(ctx, "SELECT count(*) FROM pg_database WHERE datname IN ('"+strings.Join(names, "','")+"')")
	if err != nil {
		t.Fatal(err)
	}
	return rows[0][0]
}

// TestOwnPostgresServer is the path of a machine without a PostgreSQL
// service.
func TestOwnPostgresServer(t *testing.T) {
	pg := daprtest.StartPostgresServer(t)
	if pg.Addr() == "127.0.0.1:5432" {
		t.Fatalf("own server on the machine's port")
	}
	s := daprtest.Start(t, daprtest.Options{StateStore: pg})
	stateRoundTrip(t, s, "own-server")
	if n := storedKeys(t, pg, "own-server"); n != "1" {
		t.Fatalf("%s holds %s rows for the key", pg.Database(), n)
	}
}

// TestOwnRedisServer: Redis stays an option for the actor state store.
func TestOwnRedisServer(t *testing.T) {
	r := daprtest.StartRedisServer(t)
	if r.Addr() == "127.0.0.1:6379" {
		t.Fatalf("own server on the machine's port")
	}
	s := daprtest.Start(t, daprtest.Options{StateStore: r})
	if code, md := metadata(t, s); code != http.StatusOK || len(md["components"].([]any)) != 1 {
		t.Fatalf("metadata: %d %v", code, md)
	}
	stateRoundTrip(t, s, "on-redis")
}
