package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/registry"
)

// TestUsageErrorsExit2: every way of calling the CLI wrong exits 2 with
// a pointer to --help, cobra's own errors included, and every command
// group run alone prints its usage and exits 2.
func TestUsageErrorsExit2(t *testing.T) {
	c := cli{t: t}
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"worklfow"},
		{"workflow", "bogus"},
		{"dlq", "list", "--bogus"},
		{"workflow", "get"},
		{"workflow", "get", "a", "b"},
		{"version", "extra"},
		{"migrate", "bucket"},
		{"run", "--log-level", "nope"},
		{"dlq", "list", "--kind", "bogus"},
		{"dlq", "list", "-o", "xml"},
		{"version", "-o", "xml"},
		{"validate", "-o", "xml"},
		{"dev", "--broker", "bogus"},
		{"dev", "--rate", "fast"},
		{"bench", "--brokers", "bogus"},
		{"bench", "-o", "xml"},
		{"bench", "long", "-o", "xml"},
		{"vet", "-o", "xml"},
	} {
		if _, _, code := c.run("", args...); code != exitUsage {
			t.Errorf("sagabridge %s: exit %d, want %d", strings.Join(args, " "), code, exitUsage)
		}
	}
	if errOut := c.code(exitUsage, "worklfow"); !strings.Contains(errOut, "did you mean workflow") {
		t.Errorf("a misspelt command: %q", errOut)
	}
	var groups []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		if cmd.Annotations[groupAnnotation] == "true" {
			groups = append(groups, cmd)
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(newRoot(mustOwnSagas()))
	if len(groups) < 4 {
		t.Fatalf("groups %d: the walk found too few", len(groups))
	}
	for _, g := range groups {
		args := strings.Fields(g.CommandPath())[1:]
		out, errOut, code := c.run("", args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, "Available Commands:") || !strings.Contains(errOut, "needs a subcommand") {
			t.Errorf("sagabridge %s: exit %d, stdout %q, stderr %q: want usage on stderr and exit 2", g.CommandPath(), code, out, errOut)
		}
	}
}

// TestVersionAndOutputFormats: --version, and -o table|json|yaml on every
// command that has -o.
func TestVersionAndOutputFormats(t *testing.T) {
	c := cli{t: t}
	if out := c.must("--version"); out != "sagabridge "+version+"\n" {
		t.Errorf("--version: %q", out)
	}
	var v struct {
		Version string `yaml:"version"`
		Go      string `yaml:"go"`
	}
	if err := yaml.Unmarshal([]byte(c.must("version", "-o", "yaml")), &v); err != nil || v.Version != version || v.Go == "" {
		t.Errorf("version -o yaml: %+v %v", v, err)
	}
	var walk func(*cobra.Command)
	n := 0
	walk = func(cmd *cobra.Command) {
		if f := cmd.Flags().Lookup("output"); f != nil {
			n++
			if f.Shorthand != "o" || !strings.Contains(f.Usage, "table, json or yaml") {
				t.Errorf("%s: -o is %q (-%s)", cmd.CommandPath(), f.Usage, f.Shorthand)
			}
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(newRoot(mustOwnSagas()))
	if n < 12 {
		t.Errorf("%d commands take -o", n)
	}
	if out := c.must("migrate", "bucket", "order-1", "-o", "json"); !strings.Contains(out, `"bucket":`) {
		t.Errorf("migrate bucket -o json: %s", out)
	}

	// bench -o json: the report alone on stdout (its progress lines go
	// to stderr), from a real run of a few sagas.
	out, errOut, code := c.run("", "bench", "--brokers", "nats", "--modes", "direct", "--concurrency", "1",
		"--sagas", "3", "--parked", "0", "--data", t.TempDir(), "-o", "json")
	var rep struct {
		Machine string `json:"machine"`
		Results []struct {
			Broker, Mode string
			Sagas        int
			PerSecond    float64 `json:"sagasPerSecond"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitOK || len(rep.Results) != 1 ||
		rep.Results[0].Mode != "direct" || rep.Results[0].Sagas < 3 || rep.Results[0].PerSecond <= 0 || rep.Machine == "" {
		t.Errorf("bench -o json: exit %d, %+v (%v)\nstdout:\n%s\nstderr:\n%s", code, rep, err, out, errOut)
	}
	if !strings.Contains(errOut, "in flight") {
		t.Errorf("bench -o json: no progress line on stderr: %q", errOut)
	}
}

// TestEnvironmentStandsInForFlags: SAGABRIDGE_CONFIG and SAGABRIDGE_ADMIN
// are used when the flag is absent; a flag on the command line wins.
func TestEnvironmentStandsInForFlags(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	writeOpsConfig(t, good, map[string]any{"kind": "nats"}, filepath.Join(dir, "wf.db"), "127.0.0.1:0")
	c := cli{t: t}

	t.Setenv("SAGABRIDGE_CONFIG", good)
	if out := c.must("validate"); !strings.HasPrefix(out, good+": ok") {
		t.Errorf("validate with $SAGABRIDGE_CONFIG: %q", out)
	}
	t.Setenv("SAGABRIDGE_CONFIG", filepath.Join(dir, "missing.yaml"))
	if errOut := c.code(exitUsage, "validate"); !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("validate with $SAGABRIDGE_CONFIG naming a missing file: %q", errOut)
	}
	if out := c.must("validate", "-c", good); !strings.HasPrefix(out, good+": ok") {
		t.Errorf("-c given beside $SAGABRIDGE_CONFIG: %q", out)
	}
	// An operations command reads the env file too: a missing one is an
	// error, not the defaults a missing bridge.yaml would mean.
	if errOut := c.code(exitUsage, "workflow", "get", "x"); !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("workflow get with $SAGABRIDGE_CONFIG naming a missing file: %q", errOut)
	}

	t.Setenv("SAGABRIDGE_CONFIG", good)
	envAddr, flagAddr := freeAddr(t), freeAddr(t)
	t.Setenv("SAGABRIDGE_ADMIN", envAddr)
	if errOut := c.code(exitFailure, "workflow", "get", "x"); !strings.Contains(errOut, envAddr) {
		t.Errorf("workflow get with $SAGABRIDGE_ADMIN: %q does not name %s", errOut, envAddr)
	}
	if errOut := c.code(exitFailure, "workflow", "get", "x", "--admin", flagAddr); !strings.Contains(errOut, flagAddr) {
		t.Errorf("--admin beside $SAGABRIDGE_ADMIN: %q does not name %s", errOut, flagAddr)
	}
	help := c.must("workflow", "get", "--help")
	for _, env := range []string{"$SAGABRIDGE_CONFIG", "$SAGABRIDGE_ADMIN"} {
		if !strings.Contains(help, env) {
			t.Errorf("workflow get --help does not mention %s", env)
		}
	}
}

// TestDLQKindFlag: --kind takes exactly the kinds the worker writes, and
// its help lists every one.
func TestDLQKindFlag(t *testing.T) {
	help := cli{t: t}.must("dlq", "list", "--help")
	for _, k := range dlq.Kinds {
		if !strings.Contains(help, k) {
			t.Errorf("dlq list --help does not list kind %s", k)
		}
	}
	if errOut := (cli{t: t}).code(exitUsage, "dlq", "list", "--kind", "bogus"); !strings.Contains(errOut, dlq.KindDecode) {
		t.Errorf("--kind bogus: %q", errOut)
	}
}

// TestBrokerUnreachableNamed: a NATS URL with nothing listening fails at
// once, naming the URL and the refused connection.
func TestBrokerUnreachableNamed(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bridge.yaml")
	url := "nats://" + freeAddr(t)
	writeOpsConfig(t, cfg, map[string]any{"kind": "nats", "nats": map[string]any{"url": url}}, filepath.Join(dir, "wf.db"), "127.0.0.1:0")
	start := time.Now()
	errOut := cli{t: t, cfg: cfg}.code(exitFailure, "dlq", "list")
	if !strings.Contains(errOut, url) || !strings.Contains(errOut, "connection refused") || strings.Contains(errOut, "deadline") {
		t.Errorf("dlq list against %s: %q", url, errOut)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("dlq list took %s to say the broker is unreachable", d)
	}
}

// TestDevStopsCleanly runs `sagabridge dev` as a process: it prints where
// the broker, the admin API and the metrics are, serves the admin API
// there, and exits 0 on SIGINT and on SIGTERM.
func TestDevStopsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the dev environment")
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			addr := freeAddr(t)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), mainArgsEnv+"="+strings.Join([]string{
				"dev", "--orders", "0", "--rate", "5", "--data", t.TempDir(), "--admin", addr}, "\n"))
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill() }()
			lines := make(chan string, 64)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			urls := map[string]string{}
			deadline := time.After(60 * time.Second)
			for len(urls) < 3 {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("dev ended before printing its URLs; stderr:\n%s", stderr.String())
					}
					if f := strings.Fields(l); len(f) >= 2 {
						switch {
						case f[0] == "broker":
							urls["broker"] = f[1]
						case f[0] == "admin" && len(f) >= 3:
							urls["admin"] = f[2]
						case f[0] == "metrics":
							urls["metrics"] = f[1]
						}
					}
				case <-deadline:
					t.Fatalf("no URLs after 60s: %v; stderr:\n%s", urls, stderr.String())
				}
			}
			if !strings.HasPrefix(urls["broker"], "nats://127.0.0.1:") || urls["admin"] != "http://"+addr || urls["metrics"] != "http://"+addr+"/metrics" {
				t.Errorf("printed URLs %v", urls)
			}
			for _, u := range []string{urls["admin"] + "/v1/info", urls["metrics"]} {
				resp, err := http.Get(u)
				if err != nil {
					t.Fatalf("%s: %v", u, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || len(b) == 0 {
					t.Errorf("%s: %d %s", u, resp.StatusCode, b)
				}
			}
			// Let a saga or two finish, then stop it as a terminal would.
			testkit.WaitUntil(t, 30*time.Second, "an outcome line", func() bool {
				select {
				case l := <-lines:
					return strings.HasPrefix(l, "order-")
				default:
					return false
				}
			})
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			go func() {
				for range lines {
				}
			}()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				var ee *exec.ExitError
				if errors.As(err, &ee) || err != nil {
					t.Errorf("dev after %s: %v; stderr:\n%s", sig, err, stderr.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("dev still running 30s after %s", sig)
			}
		})
	}
}

// mustOwnSagas is what main registers.
func mustOwnSagas() *registry.Registry {
	r, err := ownSagas()
	if err != nil {
		panic(err)
	}
	return r
}
