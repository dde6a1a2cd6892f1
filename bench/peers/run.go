package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// Launch units: each runs in its own process per round. The sagabridge
// units yield one row per path.
const (
	unitSagabridge      = "sagabridge"       // direct and bridge on NATS, one `sagabridge bench` process
	unitSagabridgeKafka = "sagabridge-kafka" // bridge on Kafka (kfake)
	unitSagabridgeDapr  = "sagabridge-dapr"  // on daprd, direct and bridge on NATS, a `sagabridge bench` process and a Dapr stack per path
)

var allUnits = []string{unitSagabridge, unitSagabridgeKafka, unitSagabridgeDapr, sysTemporal, sysTemporalMemory, sysDBOS, sysDBOSSQLite}

type runOptions struct {
	systems     []string
	concurrency []int
	sagas       int
	rounds      int
	repo        string
	out         string
	commit      string
	pgURL       string
	pgBin       string
	daprBin     string
}

func runMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	systems := fs.String("systems", "sagabridge,sagabridge-kafka,sagabridge-dapr,temporal,dbos,dbos-sqlite", "what to run: "+strings.Join(allUnits, ", "))
	conc := fs.String("concurrency", "1,32,128", "sagas in flight, comma separated")
	var o runOptions
	fs.IntVar(&o.sagas, "sagas", 1000, "sagas per system and concurrency, split over the rounds")
	fs.IntVar(&o.rounds, "rounds", 2, "rounds per concurrency; each round starts every system afresh, in alternating order")
	fs.StringVar(&o.repo, "repo", "../..", "sagabridge repository (its binary is built from there)")
	fs.StringVar(&o.out, "out", "", "directory for peers.json and peers.svg")
	fs.StringVar(&o.commit, "commit", "", "sagabridge commit recorded in the report")
	fs.StringVar(&o.pgURL, "pg-url", "", "PostgreSQL server for dbos and daprd's actor state; empty: start a private one from the machine's binaries")
	fs.StringVar(&o.pgBin, "pg-bin", "", "directory of initdb and postgres (default: Debian's newest, or PATH)")
	fs.StringVar(&o.daprBin, "dapr-bin", "", "directory of daprd, placement and scheduler "+daprVersion+" for sagabridge-dapr (default: the repository's bin/, built by `make dapr`)")
	replot := fs.String("replot", "", "measure nothing: print the table of this peers.json and, with --out, redraw peers.svg")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *replot != "" {
		return replotReport(*replot, o.out)
	}
	var err error
	if o.concurrency, err = splitInts(*conc); err != nil {
		return fmt.Errorf("--concurrency: %w", err)
	}
	for _, s := range strings.Split(*systems, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allUnits, s) {
			return fmt.Errorf("--systems: %q is not one of %s", s, strings.Join(allUnits, ", "))
		}
		o.systems = append(o.systems, s)
	}
	if o.sagas < 1 || o.rounds < 1 {
		return fmt.Errorf("--sagas and --rounds must be at least 1")
	}
	if slices.Contains(o.systems, unitSagabridgeDapr) {
		// Refused before anything runs: the fix is one make target away.
		if o.daprBin == "" {
			o.daprBin = filepath.Join(o.repo, "bin")
		}
		if o.daprBin, err = filepath.Abs(o.daprBin); err != nil {
			return err
		}
		if err := checkDaprBin(o.daprBin); err != nil {
			return fmt.Errorf("%s: %w", unitSagabridgeDapr, err)
		}
	}
	rep, err := run(ctx, o)
	if err != nil {
		return err
	}
	if err := rep.writeTable(os.Stdout); err != nil {
		return err
	}
	if o.out != "" {
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			return err
		}
		if err := rep.writeJSON(filepath.Join(o.out, "peers.json")); err != nil {
			return err
		}
		if err := rep.writeSVG(filepath.Join(o.out, "peers.svg")); err != nil {
			return err
		}
		fmt.Printf("\nwrote %s and %s\n", filepath.Join(o.out, "peers.json"), filepath.Join(o.out, "peers.svg"))
	}
	return nil
}

func replotReport(path, out string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := rep.writeTable(os.Stdout); err != nil {
		return err
	}
	if out == "" {
		return nil
	}
	return rep.writeSVG(filepath.Join(out, "peers.svg"))
}

func run(ctx context.Context, o runOptions) (Report, error) {
	rep := Report{
		Date:     time.Now().UTC().Format(time.RFC3339),
		Machine:  fmt.Sprintf("%d cores, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version()),
		Commit:   o.commit,
		Load:     []string{loadAverage()},
		Versions: moduleVersions(),
		Rounds:   o.rounds,
	}
	tmp, err := os.MkdirTemp("", "sagabench-peers-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(tmp)
	self, err := os.Executable()
	if err != nil {
		return rep, err
	}
	skip := func(unit, command string, err error) {
		fmt.Fprintf(os.Stderr, "peers: %s cannot run: %s: %v\n", unit, command, err)
		rep.Failures = append(rep.Failures, Failure{System: unit, Command: command, Error: err.Error()})
	}
	units := slices.Clone(o.systems)
	drop := func(unit string) { units = slices.DeleteFunc(units, func(u string) bool { return u == unit }) }

	sagabridgeUnits := []string{unitSagabridge, unitSagabridgeKafka, unitSagabridgeDapr}
	var sbBin string
	if slices.ContainsFunc(units, func(u string) bool { return slices.Contains(sagabridgeUnits, u) }) {
		if sbBin, err = buildSagabridge(ctx, o.repo, tmp); err != nil {
			for _, u := range sagabridgeUnits {
				if slices.Contains(units, u) {
					skip(u, "go build ./cmd/sagabridge", err)
					drop(u)
				}
			}
		}
	}
	if slices.Contains(units, unitSagabridgeDapr) {
		rep.Versions["daprd"] = daprdVersion(ctx, o.daprBin)
	}
	var pgURL string
	var pgServers []int
	pgUnits := []string{sysDBOS, unitSagabridgeDapr}
	if slices.ContainsFunc(units, func(u string) bool { return slices.Contains(pgUnits, u) }) {
		if o.pgURL != "" {
			pgURL = o.pgURL
			if pid, err := postmasterPid(ctx, pgURL); err == nil {
				// Everything that server does counts, other users' work too.
				pgServers = []int{pid}
				rep.Versions["postgresql"] = "server at --pg-url"
			} else {
				note := fmt.Sprintf("PostgreSQL at --pg-url: its processes' CPU and memory are not counted (%v)", err)
				fmt.Fprintln(os.Stderr, "peers:", note)
				rep.Notes = append(rep.Notes, note)
			}
		} else {
			srv, err := startPostgres(ctx, o.pgBin)
			if err != nil {
				for _, u := range pgUnits {
					if slices.Contains(units, u) {
						skip(u, "initdb + postgres (a private server)", err)
						drop(u)
					}
				}
			} else {
				defer srv.stop()
				pgURL, pgServers = srv.URL, []int{srv.Pid()}
				rep.Versions["postgresql"] = srv.Version
			}
		}
	}
	if slices.Contains(units, unitSagabridgeDapr) {
		rep.Notes = append(rep.Notes, "sagabridge on daprd: CPU s/1k adds to the worker's the CPU of daprd, placement, scheduler and PostgreSQL, read around each `sagabridge bench` process (its 20 warm-up sagas included, and spread over the measured and warm-up sagas); peak MiB adds their peak PSS to the worker's peak RSS")
	}
	dapr := daprRound{sbBin: sbBin, daprBin: o.daprBin, pgURL: pgURL, pgServers: pgServers}

	per := (o.sagas + o.rounds - 1) / o.rounds
	pooled := map[string]map[int][]Result{}
	for _, c := range o.concurrency {
		for r := 0; r < o.rounds; r++ {
			order := slices.Clone(units)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, unit := range order {
				if !slices.Contains(units, unit) {
					continue // failed earlier this run
				}
				dir, err := os.MkdirTemp(tmp, unit+"-")
				if err != nil {
					return rep, err
				}
				var res []Result
				var command string
				switch unit {
				case unitSagabridge:
					res, command, err = runSagabridge(ctx, sbBin, dir, "nats", "direct,bridge", c, per)
				case unitSagabridgeKafka:
					res, command, err = runSagabridge(ctx, sbBin, dir, "kafka", "bridge", c, per)
				case unitSagabridgeDapr:
					modes := []string{"direct", "bridge"}
					if r%2 == 1 {
						slices.Reverse(modes)
					}
					res, command, err = dapr.run(ctx, dir, modes, c, per)
				case sysDBOS:
					res, command, err = runWorker(ctx, self, workerArgs(unit, c, per, dir, pgURL, pgServers))
				default:
					res, command, err = runWorker(ctx, self, workerArgs(unit, c, per, dir, "", nil))
				}
				_ = os.RemoveAll(dir)
				if ctx.Err() != nil {
					return rep, ctx.Err()
				}
				if err != nil {
					skip(unit, command, err)
					drop(unit)
					continue
				}
				for _, x := range res {
					fmt.Printf("  %-24s in flight %3d round %d: %6.0f sagas/s, p50 %6.1f ms, p99 %6.1f ms, CPU %.2f s/1k\n",
						x.System, x.Concurrency, r+1, x.PerSecond, x.P50Ms, x.P99Ms, x.CPUSecondsPer1k)
					if pooled[x.System] == nil {
						pooled[x.System] = map[int][]Result{}
					}
					pooled[x.System][c] = append(pooled[x.System][c], x)
				}
			}
		}
	}
	for _, name := range systemOrder(pooled) {
		for _, c := range o.concurrency {
			if rs := pooled[name][c]; len(rs) > 0 {
				rep.Results = append(rep.Results, pool(rs))
			}
		}
	}
	rep.Load = append(rep.Load, loadAverage())
	return rep, nil
}

// runWorker runs one round in a worker process of this binary.
func runWorker(ctx context.Context, self string, args []string) ([]Result, string, error) {
	cmd := exec.CommandContext(ctx, self, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	line := "peers " + joinArgs(args)
	if err := cmd.Run(); err != nil {
		return nil, line, fmt.Errorf("%w: %s", err, lastLines(stderr.Bytes(), 10))
	}
	var res Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return nil, line, fmt.Errorf("worker output: %w: %s", err, lastLines(stdout.Bytes(), 3))
	}
	return []Result{res}, line, nil
}

// pool merges the rounds of one system at one concurrency: throughput over
// their summed time, CPU over their summed sagas, the highest peak, and
// percentiles averaged over the rounds weighted by their sagas.
func pool(rs []Result) Result {
	out := Result{System: rs[0].System, Concurrency: rs[0].Concurrency}
	var cpu, worker, p50, p99 float64
	for _, r := range rs {
		out.Sagas += r.Sagas
		out.Seconds += r.Seconds
		cpu += r.CPUSecondsPer1k * float64(r.Sagas)
		worker += r.WorkerCPUSecondsPer1k * float64(r.Sagas)
		p50 += r.P50Ms * float64(r.Sagas)
		p99 += r.P99Ms * float64(r.Sagas)
		out.PeakRSSMiB = max(out.PeakRSSMiB, r.PeakRSSMiB)
	}
	n := float64(out.Sagas)
	out.PerSecond = n / out.Seconds
	out.CPUSecondsPer1k, out.WorkerCPUSecondsPer1k = cpu/n, worker/n
	out.P50Ms, out.P99Ms = p50/n, p99/n
	return out
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return time.Now().UTC().Format("15:04:05") + " " + strings.Join(f[:3], " ")
}

// moduleVersions are the peers' versions as built into this binary.
func moduleVersions() map[string]string {
	v := map[string]string{}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v["go"] = bi.GoVersion
	for _, d := range bi.Deps {
		switch d.Path {
		case "go.temporal.io/server", "go.temporal.io/sdk", "github.com/dbos-inc/dbos-transact-golang", "github.com/jackc/pgx/v5", "modernc.org/sqlite":
			v[d.Path] = d.Version
		}
	}
	return v
}
