package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sagabridge on daprd: the product binary's `sagabridge bench --dapr-grpc`
// against a daprd the harness starts with placement, scheduler and a
// PostgreSQL actor state store, as internal/daprtest does for the
// product's tests (that package is the product module's and takes a
// testing.TB, so the few lines of starting them are repeated here).

// daprVersion is the Dapr release `make dapr` builds into the repository's
// bin/ (internal/daprtest/build-dapr.sh writes it to bin/.dapr-version).
const daprVersion = "v1.16.0"

// daprReadyTimeout bounds a Dapr process's start: daprd's actor runtime
// takes seconds to reach placement on this loaded machine.
const daprReadyTimeout = 90 * time.Second

// checkDaprBin reports whether dir holds daprd, placement and scheduler of
// daprVersion, with what to do when it does not.
func checkDaprBin(dir string) error {
	for _, name := range []string{"daprd", "placement", "scheduler"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("no %s in %s: run `make dapr` in the repository (it builds daprd, placement and scheduler %s into bin/), or leave %s out of --systems", name, dir, daprVersion, unitSagabridgeDapr)
		}
	}
	v, err := os.ReadFile(filepath.Join(dir, ".dapr-version"))
	if got := strings.TrimSpace(string(v)); err != nil || got != daprVersion {
		return fmt.Errorf("the Dapr binaries in %s are not %s (.dapr-version: %q): run `make dapr`", dir, daprVersion, got)
	}
	return nil
}

// daprChild is one Dapr process, its output in a log file.
type daprChild struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startDaprChild(dir, name, bin string, args []string) (*daprChild, error) {
	log := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Killed with the harness: a harness that dies leaves no daprd.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &daprChild{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(c.done) }()
	return c, nil
}

func (c *daprChild) pid() int { return c.cmd.Process.Pid }

// stop asks the process to end (SIGTERM: daprd drains its actors) and
// kills it if it lingers.
func (c *daprChild) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func (c *daprChild) tail() string {
	b, _ := os.ReadFile(c.log)
	return lastLines(b, 10)
}

// waitReady polls ready until it holds, the process exits or the timeout.
func (c *daprChild) waitReady(ctx context.Context, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, daprReadyTimeout)
	defer cancel()
	var last error
	for {
		select {
		case <-c.done:
			return fmt.Errorf("%s exited before it was ready (last check: %v): %s", c.name, last, c.tail())
		default:
		}
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v: %s", c.name, daprReadyTimeout, last, c.tail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startDaprService starts a Dapr binary on n free loopback ports and waits
// until it is ready; it tries three times, since a port picked free can be
// taken before the process binds it.
func startDaprService(ctx context.Context, dir, name, bin string, n int,
	args func(ports []int) []string, ready func(ports []int) func(context.Context) error) (*daprChild, []int, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var ports []int
		if ports, err = freePorts(n); err != nil {
			return nil, nil, err
		}
		var c *daprChild
		if c, err = startDaprChild(dir, fmt.Sprintf("%s-%d", name, attempt), bin, args(ports)); err != nil {
			return nil, nil, err
		}
		if err = c.waitReady(ctx, ready(ports)); err == nil {
			return c, ports, nil
		}
		c.stop()
		if ctx.Err() != nil {
			break
		}
	}
	return nil, nil, err
}

// daprStack is placement, scheduler and one daprd, started afresh for a
// round so that no round inherits another's reminders or actor state.
type daprStack struct {
	procs    []*daprChild // in start order
	grpcAddr string
}

// startDaprStack starts placement, scheduler and daprd from bin, daprd's
// actor state in the PostgreSQL database at pgConn (a URL), their files
// and logs in dir.
func startDaprStack(ctx context.Context, bin, dir, pgConn string) (_ *daprStack, err error) {
	s := &daprStack{}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	healthz := func(ports []int) func(context.Context) error {
		return func(ctx context.Context) error {
			code, _, err := httpGet(ctx, fmt.Sprintf("http://127.0.0.1:%d/healthz", ports[1]))
			if err == nil && code/100 != 2 {
				err = fmt.Errorf("healthz: %d", code)
			}
			return err
		}
	}
	// healthz on its own port; metrics off (Dapr 1.16.0 binds them on
	// every interface whatever the listen-address flags say).
	control := func(healthzPort int) []string {
		return []string{"--healthz-listen-address", "127.0.0.1", "--healthz-port", strconv.Itoa(healthzPort),
			"--enable-metrics=false", "--log-level", "warn"}
	}
	placement, ports, err := startDaprService(ctx, dir, "placement", filepath.Join(bin, "placement"), 3,
		func(p []int) []string {
			return append([]string{"--id", "dapr-placement-0",
				"--initial-cluster", "dapr-placement-0=127.0.0.1:" + strconv.Itoa(p[2]),
				"--listen-address", "127.0.0.1", "--port", strconv.Itoa(p[0])}, control(p[1])...)
		}, healthz)
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, placement)
	placementAddr := "127.0.0.1:" + strconv.Itoa(ports[0])

	const schedulerID = "dapr-scheduler-server-0"
	scheduler, ports, err := startDaprService(ctx, dir, "scheduler", filepath.Join(bin, "scheduler"), 4,
		func(p []int) []string {
			return append([]string{"--id", schedulerID,
				"--etcd-initial-cluster", schedulerID + "=http://127.0.0.1:" + strconv.Itoa(p[2]),
				"--etcd-client-port", strconv.Itoa(p[3]),
				"--etcd-data-dir", filepath.Join(dir, "etcd-"+strconv.Itoa(p[0])),
				"--listen-address", "127.0.0.1", "--port", strconv.Itoa(p[0]),
				"--override-broadcast-host-port", "127.0.0.1:" + strconv.Itoa(p[0])}, control(p[1])...)
		}, healthz)
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, scheduler)
	schedulerAddr := "127.0.0.1:" + strconv.Itoa(ports[0])

	resources := filepath.Join(dir, "resources")
	if err := os.MkdirAll(resources, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(resources, "statestore.yaml"), []byte(daprStateStore(pgConn)), 0o644); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte(daprConfiguration), 0o644); err != nil {
		return nil, err
	}
	daprd, ports, err := startDaprService(ctx, dir, "daprd", filepath.Join(bin, "daprd"), 5,
		func(p []int) []string {
			return []string{"--app-id", "sagabench", "--mode", "standalone",
				"--dapr-listen-addresses", "127.0.0.1",
				"--dapr-grpc-port", strconv.Itoa(p[0]), "--dapr-http-port", strconv.Itoa(p[1]),
				"--dapr-internal-grpc-listen-address", "127.0.0.1", "--dapr-internal-grpc-port", strconv.Itoa(p[2]),
				"--metrics-listen-address", "127.0.0.1", "--metrics-port", strconv.Itoa(p[3]),
				"--dapr-public-listen-address", "127.0.0.1", "--dapr-public-port", strconv.Itoa(p[4]),
				"--placement-host-address", placementAddr, "--scheduler-host-address", schedulerAddr,
				"--resources-path", resources, "--config", config, "--log-level", "warn"}
		}, daprdReady)
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, daprd)
	s.grpcAddr = "127.0.0.1:" + strconv.Itoa(ports[0])
	return s, nil
}

// pids are the stack's processes, whose CPU and memory count with the
// worker's.
func (s *daprStack) pids() []int {
	out := make([]int, len(s.procs))
	for i, c := range s.procs {
		out[i] = c.pid()
	}
	return out
}

// stop ends daprd first, then what it depends on.
func (s *daprStack) stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop()
	}
	s.procs = nil
}

// daprStateStore is the actor state store: Dapr's state.postgresql v2
// component (the store's current schema) on the round's database.
func daprStateStore(conn string) string {
	return `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.postgresql
  version: v2
  metadata:
    - name: connectionString
      value: "` + conn + `"
    - name: actorStateStore
      value: "true"
`
}

// daprConfiguration keeps daprd quiet on the network (the standalone
// default name resolver, mDNS, multicasts) and its metrics off; the
// workflow limits and reminders (in the scheduler) are Dapr 1.16's
// defaults.
const daprConfiguration = `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: sagabench
spec:
  nameResolution:
    component: kubernetes
  metric:
    enabled: false
`

// daprdReady holds once daprd answers its health check and its actor
// runtime (workflows are actors) runs connected to placement.
func daprdReady(ports []int) func(context.Context) error {
	base := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	return func(ctx context.Context) error {
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

// daprdVersion is what `daprd --version` prints.
func daprdVersion(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "daprd"), "--version").Output()
	if err != nil {
		return "unknown: " + err.Error()
	}
	return string(bytes.TrimSpace(out))
}

// daprRound is one round of sagabridge on daprd: each mode in a
// `sagabridge bench` process of its own, on a Dapr stack and database of
// its own, so that the CPU and memory of daprd, placement, scheduler and
// PostgreSQL during that process are that mode's alone.
type daprRound struct {
	sbBin, daprBin string
	pgURL          string // server on which each mode gets a fresh database
	pgServers      []int  // postmaster pids whose CPU counts (none when not visible)
}

// run measures modes in the given order, c in flight, n sagas each.
func (d daprRound) run(ctx context.Context, dir string, modes []string, c, n int) ([]Result, string, error) {
	var res []Result
	var lines []string
	for _, mode := range modes {
		r, line, err := d.runMode(ctx, filepath.Join(dir, mode), mode, c, n)
		lines = append(lines, line)
		if err != nil {
			return nil, strings.Join(lines, "; "), err
		}
		res = append(res, r)
	}
	return res, strings.Join(lines, "; "), nil
}

func (d daprRound) runMode(ctx context.Context, dir, mode string, c, n int) (Result, string, error) {
	line := "daprd " + daprVersion + " + placement + scheduler (PostgreSQL actor store)"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Result{}, line, err
	}
	dbURL, drop, err := freshDatabase(ctx, d.pgURL, "sagabench_dapr_"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err != nil {
		return Result{}, line, fmt.Errorf("database for daprd: %w", err)
	}
	defer drop()
	stack, err := startDaprStack(ctx, d.daprBin, dir, dbURL)
	if err != nil {
		return Result{}, line, err
	}
	defer stack.stop()
	servers := append(stack.pids(), d.pgServers...)
	serverCPU := func() float64 {
		var s float64
		for _, pid := range servers {
			s += treeCPUSeconds(pid)
		}
		return s
	}
	stopSampling, serverPeak := sampleServerMemory(servers)
	cpu0 := serverCPU()
	res, line, err := runSagabridge(ctx, d.sbBin, dir, "nats", mode, c, n, "--dapr-grpc", stack.grpcAddr)
	srvCPU := serverCPU() - cpu0
	stopSampling()
	if err != nil {
		return Result{}, line, err
	}
	if len(res) != 1 {
		return Result{}, line, fmt.Errorf("bench.json has %d results for one mode at one concurrency", len(res))
	}
	r := res[0]
	if !strings.HasPrefix(r.System, unitSagabridgeDapr+"-") {
		return Result{}, line, errors.New("bench.json does not say the engine was dapr")
	}
	// The servers' CPU is read around the whole `sagabridge bench`
	// process, its warm-up sagas (one warm-up per mode) included: spread
	// over measured and warm-up sagas alike.
	r.CPUSecondsPer1k = r.WorkerCPUSecondsPer1k + srvCPU/float64(r.Sagas+warmupSagas)*1000
	r.PeakRSSMiB += serverPeak()
	return r, line, nil
}
