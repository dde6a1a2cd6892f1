package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// TestStartupFailuresSayWhy: a worker that cannot start exits 1 with the
// cause on stderr, not with a nil-pointer panic from its own cleanup: the
// database is held by another worker, dbPath cannot be a file, the Dapr
// API token file is missing, the token would go in plaintext to a daprd
// off loopback.
func TestStartupFailuresSayWhy(t *testing.T) {
	srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	broker := map[string]any{"kind": "nats", "nats": map[string]any{"url": srv.ClientURL()}}

	held := t.TempDir()
	ownerAdmin := freeAddr(t)
	heldCfg := writeConfig(t, held, broker, embeddedEngine(held), ownerAdmin)
	owner := startWorker(t, heldCfg, filepath.Join(held, "owner.log"))
	deadline := time.Now().Add(60 * time.Second)
	for !ready(ownerAdmin) {
		if time.Now().After(deadline) || owner.cmd.ProcessState != nil {
			t.Fatal("the first worker did not become ready")
		}
		time.Sleep(100 * time.Millisecond)
	}

	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("secret-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		eng   map[string]any
		words []string
	}{
		{name: "database held by another worker", eng: embeddedEngine(held), words: []string{"lock"}},
		{name: "dbPath under a file", eng: map[string]any{"kind": "embedded", "embedded": map[string]any{"dbPath": filepath.Join(notADir, "workflows.db")}},
			words: []string{notADir}},
		{name: "Dapr API token file missing", eng: map[string]any{"kind": "dapr", "dapr": map[string]any{
			"grpcEndpoint": "127.0.0.1:1", "apiTokenFile": filepath.Join(t.TempDir(), "no-such-token")}},
			words: []string{"api token", "no-such-token", "no such file"}},
		// 192.0.2.1 is TEST-NET-1: nothing answers there, and nothing is
		// sent: the worker refuses before it connects.
		{name: "Dapr API token for a daprd off loopback", eng: map[string]any{"kind": "dapr", "dapr": map[string]any{
			"grpcEndpoint": "192.0.2.1:50001", "apiTokenFile": tokenFile}},
			words: []string{"Dapr API token would be sent in plaintext to 192.0.2.1:50001"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfgPath := writeConfig(t, dir, broker, c.eng, "127.0.0.1:0")
			var stderr string
			code := -1
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("the worker panicked instead of saying why: %v", r)
					}
				}()
				_, stderr, code = cli{t: t}.run("", "run", "-c", cfgPath, "--log-level", "error")
			}()
			t.Logf("exit %d: %s", code, stderr)
			if code != exitFailure {
				t.Errorf("exit code %d, want %d", code, exitFailure)
			}
			for _, w := range c.words {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not say %q", stderr, w)
				}
			}
		})
	}
	if owner.cmd.ProcessState != nil {
		t.Errorf("the first worker stopped: %v", owner.cmd.ProcessState)
	}
}
