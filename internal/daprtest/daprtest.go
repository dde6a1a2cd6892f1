// Package daprtest runs real Dapr for tests: placement, scheduler and
// daprd sidecars with a PostgreSQL actor state store (Redis on request).
// It uses the machine's PostgreSQL on 127.0.0.1:5432 when it answers, with
// a fresh database per test, and otherwise starts a server of its own.
// Everything listens on loopback ports picked at start, each test has its
// own app ID and database, and every process is stopped when the test
// ends, or killed when the test binary dies.
//
// The binaries are daprd, placement and scheduler of the pinned Dapr
// release, built into the repository's bin/ by `make dapr`
// (internal/daprtest/build-dapr.sh). A test that finds neither the
// binaries nor any PostgreSQL (a server on 5432 or Debian's postgresql
// binaries) skips with a message saying so; one that finds only one of the
// two fails, so a half-prepared machine is never mistaken for a passing
// run.
package daprtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Version is the Dapr release the harness runs; build-dapr.sh writes it to
// bin/.dapr-version.
const Version = "v1.16.0"

// ReadyTimeout bounds how long a process may take to become ready. The
// machines are small and shared, so it is generous.
const ReadyTimeout = 90 * time.Second

// Binaries locates daprd and placement: $DAPR_BIN_DIR, else bin/ at the
// root of this module. See the package comment for when it skips or fails.
func Binaries(t testing.TB) (daprd, placement string) {
	t.Helper()
	dir := binaries(t)
	return filepath.Join(dir, "daprd"), filepath.Join(dir, "placement")
}

func binaries(t testing.TB) string {
	t.Helper()
	dir, err := binDir()
	if err == nil {
		err = checkBinaries(dir)
	}
	if err != nil {
		if !postgresAvailable() {
			t.Skipf("daprtest: no Dapr test environment on this machine (%v; and no PostgreSQL on %s nor its binaries): run `make dapr` and install postgresql", err, machinePostgres)
		}
		t.Fatalf("daprtest: %v: run `make dapr`", err)
	}
	return dir
}

func binDir() (string, error) {
	if d := os.Getenv("DAPR_BIN_DIR"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/sagabridge/sagabridge\n")) {
			return filepath.Join(d, "bin"), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("module root not found above %s", wd)
		}
	}
}

func checkBinaries(dir string) error {
	for _, name := range []string{"daprd", "placement", "scheduler"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("%s not built in %s", name, dir)
		}
	}
	v, err := os.ReadFile(filepath.Join(dir, ".dapr-version"))
	if err != nil || strings.TrimSpace(string(v)) != Version {
		return fmt.Errorf("binaries in %s are not Dapr %s (bin/.dapr-version says %q)", dir, Version, strings.TrimSpace(string(v)))
	}
	return nil
}

// freePorts reserves n distinct loopback ports. They are released just
// before use, so another process can still take one; starts retry.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// NewAppID returns an app ID no other test uses; it prefixes the keys
// daprd writes to the state store.
func NewAppID() string { return uniqueID("sbtest-") }

func uniqueID(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// proc is one child process whose output goes to a log file.
type proc struct {
	name    string
	path    string
	args    []string
	attr    *syscall.SysProcAttr // nil: sysProcAttr()
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) start() error {
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "\n=== %s %s %s\n", time.Now().Format(time.RFC3339Nano), p.path, strings.Join(p.args, " "))
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = p.attr
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = sysProcAttr()
	}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = f.Close()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	return nil
}

// exited reports whether the current process has ended.
func (p *proc) exited() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// signal sends sig and waits for the process to end (SIGKILL after grace
// for any other signal).
func (p *proc) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	_ = cmd.Process.Kill()
	<-done
}

func (p *proc) kill() { p.signal(syscall.SIGKILL, 0) }

// pid is the running process's id, 0 when none runs.
func (p *proc) pid() int {
	if p == nil || p.exited() {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// send delivers sig and returns at once.
func (p *proc) send(sig syscall.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(sig)
	}
}

// tail returns the last n lines of the log.
func (p *proc) tail(n int) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// logOnFailure prints the tail of the log when the test failed, or always
// when DAPRTEST_LOGS is set (to the number of lines to print).
func (p *proc) logOnFailure(t testing.TB) {
	lines := 60
	always := false
	if n, err := strconv.Atoi(os.Getenv("DAPRTEST_LOGS")); err == nil && n > 0 {
		lines, always = n, true
	}
	t.Cleanup(func() {
		if always || t.Failed() {
			t.Logf("daprtest: last lines of %s (%s):\n%s", p.name, p.logPath, p.tail(lines))
		}
	})
}

// waitReady polls ready until it holds, the process exits, or the timeout.
func (p *proc) waitReady(ctx context.Context, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("%s exited before it was ready (last check: %v); log tail:\n%s", p.name, last, p.tail(30))
		}
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v", p.name, ReadyTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

func httpGet(ctx context.Context, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// Placement is a running Dapr placement service (in-memory Raft store).
type Placement struct {
	addr string
	p    *proc
}

// StartPlacement starts placement on free loopback ports and stops it when
// the test ends.
func StartPlacement(t testing.TB) *Placement {
	t.Helper()
	_, bin := Binaries(t)
	p, ports := startService(t, "placement", bin, 3, func(ports []int, _ string, _ int) []string {
		port, healthz, raft := ports[0], ports[1], ports[2]
		return append([]string{
			"--id", "dapr-placement-0",
			// The Raft peer port defaults to 8201: give each test its own.
			"--initial-cluster", "dapr-placement-0=127.0.0.1:" + strconv.Itoa(raft),
			"--listen-address", "127.0.0.1",
			"--port", strconv.Itoa(port),
			"--log-level", "warn",
		}, controlPlaneServers(healthz)...)
	})
	return &Placement{addr: "127.0.0.1:" + strconv.Itoa(ports[0]), p: p}
}

// controlPlaneServers are the healthz and metrics flags of placement and
// scheduler. Dapr 1.16.0 parses their listen-address flags but binds both
// servers on all interfaces anyway, so metrics are off, and healthz (which
// startService polls) is on all interfaces until Dapr honours the flag.
func controlPlaneServers(healthzPort int) []string {
	return []string{
		"--healthz-listen-address", "127.0.0.1",
		"--healthz-port", strconv.Itoa(healthzPort),
		"--enable-metrics=false",
	}
}

// startService starts a control-plane binary on n free loopback ports
// (args gets them; ports[1] must be its healthz port) and waits until its
// healthz answers. It tries three times: a free port can be taken between
// picking it and binding it.
func startService(t testing.TB, name, bin string, n int, args func(ports []int, dir string, attempt int) []string) (*proc, []int) {
	t.Helper()
	dir := t.TempDir()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var ports []int
		if ports, err = freePorts(n); err != nil {
			break
		}
		p := &proc{name: name, path: bin, args: args(ports, dir, attempt),
			logPath: filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, attempt))}
		if err = p.start(); err != nil {
			break
		}
		healthURL := fmt.Sprintf("http://127.0.0.1:%d/healthz", ports[1])
		err = p.waitReady(context.Background(), func(ctx context.Context) error {
			code, _, err := httpGet(ctx, healthURL)
			if err != nil {
				return err
			}
			if code/100 != 2 {
				return fmt.Errorf("healthz: %d", code)
			}
			return nil
		})
		if err == nil {
			p.logOnFailure(t)
			t.Cleanup(p.kill)
			return p, ports
		}
		p.kill()
	}
	t.Fatalf("daprtest: %s: %v", name, err)
	return nil, nil
}

// Addr is host:port of the placement gRPC API.
func (p *Placement) Addr() string { return p.addr }

// Pid is placement's process id (0 when it is not running), for
// benchmarks that read its CPU time.
func (p *Placement) Pid() int { return p.p.pid() }

// Scheduler is a running Dapr scheduler (one embedded etcd member). daprd
// keeps actor reminders, which drive workflows, in the scheduler instead
// of in the actor state store, where every reminder of an actor type
// shares one key that replicas overwrite each other on.
type Scheduler struct {
	addr string
	p    *proc
}

// StartScheduler starts the scheduler on free loopback ports with its etcd
// data in a temporary directory, and stops it when the test ends.
func StartScheduler(t testing.TB) *Scheduler {
	t.Helper()
	bin := filepath.Join(binaries(t), "scheduler")
	p, ports := startService(t, "scheduler", bin, 4, func(ports []int, dir string, attempt int) []string {
		port, healthz, peer, client := ports[0], ports[1], ports[2], ports[3]
		const id = "dapr-scheduler-server-0"
		return append([]string{
			"--id", id,
			"--etcd-initial-cluster", id + "=http://127.0.0.1:" + strconv.Itoa(peer),
			"--etcd-client-port", strconv.Itoa(client),
			"--etcd-data-dir", filepath.Join(dir, fmt.Sprintf("etcd-%d", attempt)),
			"--listen-address", "127.0.0.1",
			"--port", strconv.Itoa(port),
			// What daprd is told to dial; the default is the host name.
			"--override-broadcast-host-port", "127.0.0.1:" + strconv.Itoa(port),
			"--log-level", "warn",
		}, controlPlaneServers(healthz)...)
	})
	return &Scheduler{addr: "127.0.0.1:" + strconv.Itoa(ports[0]), p: p}
}

// Addr is host:port of the scheduler's gRPC API.
func (s *Scheduler) Addr() string { return s.addr }

// Pid is the scheduler's process id (0 when it is not running).
func (s *Scheduler) Pid() int { return s.p.pid() }

// Options configure a sidecar. The zero value is a sidecar with its own
// placement, scheduler and database, and a unique app ID.
type Options struct {
	// AppID is daprd's app ID; replicas of one app share it (and with it
	// the workflow actor types and state keys). Default: unique.
	AppID string
	// Placement is shared by the replicas of an app. Default: a new one.
	Placement *Placement
	// StateStore holds the actor state; replicas of an app share it.
	// Default: StartPostgres(t).
	StateStore StateStore
	// Scheduler keeps the actor reminders, which drive workflows.
	// Replicas of an app share it. Default: a new one, unless
	// StateStoreReminders.
	Scheduler *Scheduler
	// StateStoreReminders turns daprd's SchedulerReminders feature off
	// and keeps the reminders in the actor state store. All reminders of
	// an actor type then live in one key that every reminder change
	// rewrites: hundreds of sagas at once slow each call to seconds, and
	// replicas overwrite each other (measured on Redis: stuck workflows
	// with two sidecars).
	StateStoreReminders bool
	// MaxConcurrentWorkflows and MaxConcurrentActivities are the
	// Configuration's workflow limits (daprd's default is 100 each).
	MaxConcurrentWorkflows  int
	MaxConcurrentActivities int
	// LogLevel is daprd's (default "info"; the log goes to a file that is
	// printed when the test fails).
	LogLevel string
	// StateStoreName names the actor state store component (default
	// "statestore"), for resources that target it by name.
	StateStoreName string
	// ResourceFiles are copied into daprd's resources directory beside the
	// state store (Resiliency policies, more components).
	ResourceFiles []string
	// ConfigFiles are Configuration files daprd loads after the harness's
	// own (which turns mDNS and metrics off); daprd merges them.
	ConfigFiles []string
}

// StateStore is a server for daprd's actor state: *Postgres or *Redis.
type StateStore interface {
	// component is the Dapr component named name that stores there.
	component(name string) string
	// forget removes what appID stored, when the test ends.
	forget(t testing.TB, appID string)
}

// Sidecar is a running daprd with workflows backed by actors.
type Sidecar struct {
	t         testing.TB
	appID     string
	grpcPort  int
	httpPort  int
	placement *Placement
	p         *proc
}

// Start starts a daprd sidecar and waits until its actor runtime is
// connected to placement. It is stopped when the test ends.
func Start(t testing.TB, opts Options) *Sidecar {
	t.Helper()
	daprd, _ := Binaries(t)
	opts.complete(t)
	dir := t.TempDir()
	resources, configPath := writeResources(t, dir, opts)

	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var ports []int
		if ports, err = freePorts(5); err != nil {
			break
		}
		s := &Sidecar{t: t, appID: opts.AppID, grpcPort: ports[0], httpPort: ports[1], placement: opts.Placement}
		s.p = &proc{
			name:    "daprd " + opts.AppID,
			path:    daprd,
			args:    daprdArgs(opts, ports, resources, configPath),
			logPath: filepath.Join(dir, fmt.Sprintf("daprd-%d.log", attempt)),
		}
		if err = s.start(); err == nil {
			s.p.logOnFailure(t)
			t.Cleanup(s.Stop)
			return s
		}
		s.p.kill()
	}
	t.Fatalf("daprtest: daprd: %v", err)
	return nil
}

// complete fills in what o leaves out, starting a state store,
// placement and scheduler of the sidecar's own when it names none, and
// forgets what an earlier sidecar of the app ID left in the state store.
func (o *Options) complete(t testing.TB) {
	t.Helper()
	if o.AppID == "" {
		o.AppID = NewAppID()
	}
	if o.StateStore == nil {
		o.StateStore = StartPostgres(t)
	}
	o.StateStore.forget(t, o.AppID)
	if o.Placement == nil {
		o.Placement = StartPlacement(t)
	}
	switch {
	case o.StateStoreReminders:
		o.Scheduler = nil
	case o.Scheduler == nil:
		o.Scheduler = StartScheduler(t)
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.StateStoreName == "" {
		o.StateStoreName = "statestore"
	}
}

// writeResources writes the sidecar's resources directory (the state store
// component and opts.ResourceFiles) and its configuration into dir.
func writeResources(t testing.TB, dir string, opts Options) (resources, configPath string) {
	t.Helper()
	resources = filepath.Join(dir, "resources")
	if err := os.MkdirAll(resources, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(resources, "statestore.yaml"), []byte(opts.StateStore.component(opts.StateStoreName)), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, f := range opts.ResourceFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("daprtest: resource: %v", err)
		}
		if err := os.WriteFile(filepath.Join(resources, fmt.Sprintf("extra-%d-%s", i, filepath.Base(f))), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	configPath = filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(configPath, []byte(configurationYAML(opts)), 0o644); err != nil {
		t.Fatal(err)
	}
	return resources, configPath
}

// daprdArgs are daprd's arguments on the five loopback ports: gRPC, HTTP,
// internal gRPC, metrics and public.
func daprdArgs(opts Options, ports []int, resources, configPath string) []string {
	args := []string{
		"--app-id", opts.AppID,
		"--mode", "standalone",
		"--dapr-listen-addresses", "127.0.0.1",
		"--dapr-grpc-port", strconv.Itoa(ports[0]),
		"--dapr-http-port", strconv.Itoa(ports[1]),
		"--dapr-internal-grpc-listen-address", "127.0.0.1",
		"--dapr-internal-grpc-port", strconv.Itoa(ports[2]),
		"--metrics-listen-address", "127.0.0.1",
		"--metrics-port", strconv.Itoa(ports[3]),
		// The public port answers /healthz; its default is 3501
		// on all interfaces.
		"--dapr-public-listen-address", "127.0.0.1",
		"--dapr-public-port", strconv.Itoa(ports[4]),
		"--placement-host-address", opts.Placement.Addr(),
		"--resources-path", resources,
		"--config", configPath,
		"--log-level", opts.LogLevel,
	}
	if opts.Scheduler != nil {
		args = append(args, "--scheduler-host-address", opts.Scheduler.Addr())
	}
	for _, f := range opts.ConfigFiles {
		args = append(args, "--config", f)
	}
	return args
}

func (s *Sidecar) start() error {
	if err := s.p.start(); err != nil {
		return err
	}
	return s.p.waitReady(context.Background(), s.ready)
}

// ready holds once daprd's health endpoint answers and its actor runtime
// runs and is connected to placement (workflows are actors).
func (s *Sidecar) ready(ctx context.Context) error {
	base := "http://" + s.HTTPAddr()
	code, _, err := httpGet(ctx, base+"/v1.0/healthz")
	if err != nil {
		return err
	}
	if code/100 != 2 {
		return fmt.Errorf("healthz: %d", code)
	}
	code, body, err := httpGet(ctx, base+"/v1.0/metadata")
	if err != nil {
		return err
	}
	var md struct {
		ActorRuntime struct {
			Status    string `json:"runtimeStatus"`
			HostReady bool   `json:"hostReady"`
			Placement string `json:"placement"`
		} `json:"actorRuntime"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &md) != nil {
		return fmt.Errorf("metadata: %d %s", code, body)
	}
	if md.ActorRuntime.Status != "RUNNING" || !strings.HasSuffix(md.ActorRuntime.Placement, "connected") {
		return fmt.Errorf("actor runtime %q, placement %q", md.ActorRuntime.Status, md.ActorRuntime.Placement)
	}
	return nil
}

// AppID is the sidecar's app ID.
func (s *Sidecar) AppID() string { return s.appID }

// GRPCAddr is host:port of daprd's gRPC API: the engine's endpoint.
func (s *Sidecar) GRPCAddr() string { return "127.0.0.1:" + strconv.Itoa(s.grpcPort) }

// HTTPAddr is host:port of daprd's HTTP API.
func (s *Sidecar) HTTPAddr() string { return "127.0.0.1:" + strconv.Itoa(s.httpPort) }

// Placement is the placement service the sidecar is connected to.
func (s *Sidecar) Placement() *Placement { return s.placement }

// Kill sends SIGKILL to daprd and waits until it is gone.
func (s *Sidecar) Kill() { s.p.kill() }

// Pid is daprd's process id (0 when it is not running).
func (s *Sidecar) Pid() int { return s.p.pid() }

// Pause freezes daprd with SIGSTOP: its sockets stay open and nothing
// answers on them, as with a process stuck in swap or a frozen VM.
func (s *Sidecar) Pause() { s.p.send(syscall.SIGSTOP) }

// Continue lets a paused daprd run again (SIGCONT).
func (s *Sidecar) Continue() { s.p.send(syscall.SIGCONT) }

// Stop shuts daprd down gracefully (SIGTERM), then kills it if it lingers.
func (s *Sidecar) Stop() { s.p.signal(syscall.SIGTERM, 10*time.Second) }

// Log is everything daprd wrote so far, across restarts.
func (s *Sidecar) Log() string {
	b, err := os.ReadFile(s.p.logPath)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// Running reports whether the daprd process is alive.
func (s *Sidecar) Running() bool { return !s.p.exited() }

// Restart starts daprd again on the same ports, with the same app ID and
// state, and waits until it is ready. A running daprd is killed first.
func (s *Sidecar) Restart() {
	s.t.Helper()
	s.p.kill()
	if err := s.start(); err != nil {
		s.t.Fatalf("daprtest: restart: %v", err)
	}
}

// configurationYAML sets the workflow limits, where reminders live, and a
// name resolver that sends nothing on the network (mDNS, the standalone
// default, multicasts).
func configurationYAML(opts Options) string {
	var b strings.Builder
	b.WriteString(`apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: daprtest
spec:
  nameResolution:
    component: kubernetes
  metric:
    enabled: false
`)
	if opts.MaxConcurrentWorkflows > 0 || opts.MaxConcurrentActivities > 0 {
		b.WriteString("  workflow:\n")
		if opts.MaxConcurrentWorkflows > 0 {
			fmt.Fprintf(&b, "    maxConcurrentWorkflowInvocations: %d\n", opts.MaxConcurrentWorkflows)
		}
		if opts.MaxConcurrentActivities > 0 {
			fmt.Fprintf(&b, "    maxConcurrentActivityInvocations: %d\n", opts.MaxConcurrentActivities)
		}
	}
	if opts.StateStoreReminders {
		// On by default in Dapr 1.16 (opt-in in 1.14).
		b.WriteString("  features:\n    - name: SchedulerReminders\n      enabled: false\n")
	}
	return b.String()
}
