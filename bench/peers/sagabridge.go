package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// sagabridge runs as its own binary, built from the repository's module:
// built inside this module instead, it would take this module's newer
// versions of SQLite, gRPC and protobuf (which Temporal and DBOS require)
// and be a build no user runs. Its `bench` command runs the same workload
// as `make bench` and reports the same figures.

// buildSagabridge builds the product binary from the repository at repo.
func buildSagabridge(ctx context.Context, repo, dir string) (string, error) {
	bin := filepath.Join(dir, "sagabridge")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/sagabridge")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s in %s: %w: %s", cmd, repo, err, lastLines(out, 10))
	}
	return bin, nil
}

// sagabridgeBench is the subset of `sagabridge bench`'s bench.json the
// harness reads.
type sagabridgeBench struct {
	Results []struct {
		Broker      string  `json:"broker"`
		Engine      string  `json:"engine"`
		Mode        string  `json:"mode"`
		Concurrency int     `json:"concurrency"`
		Sagas       int     `json:"sagas"`
		PerSecond   float64 `json:"sagasPerSecond"`
		P50Ms       float64 `json:"p50Ms"`
		P99Ms       float64 `json:"p99Ms"`
		CPUPer1k    float64 `json:"cpuSecondsPer1000"`
		PeakRSSMiB  float64 `json:"peakRssMiB"`
	} `json:"results"`
}

// runSagabridge runs one round of `sagabridge bench` for one broker and the
// given modes, with extra flags after the harness's, and names each result
// after its engine and path.
func runSagabridge(ctx context.Context, bin, dir, broker string, modes string, c, n int, extra ...string) ([]Result, string, error) {
	out := filepath.Join(dir, "out")
	args := []string{"bench", "--brokers", broker, "--modes", modes,
		"--concurrency", strconv.Itoa(c), "--sagas", strconv.Itoa(n), "--parked", "0",
		"--data", filepath.Join(dir, "data"), "--out", out}
	args = append(args, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	line := "sagabridge " + joinArgs(args)
	if err := cmd.Run(); err != nil {
		return nil, line, fmt.Errorf("%w: %s", err, lastLines(stderr.Bytes(), 10))
	}
	b, err := os.ReadFile(filepath.Join(out, "bench.json"))
	if err != nil {
		return nil, line, err
	}
	var rep sagabridgeBench
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, line, fmt.Errorf("bench.json: %w", err)
	}
	var res []Result
	for _, r := range rep.Results {
		name := "sagabridge"
		if r.Engine == "dapr" {
			name = unitSagabridgeDapr
		}
		if r.Mode == "bridge" {
			name += "-bridge-" + r.Broker
		} else {
			name += "-direct"
		}
		res = append(res, Result{
			System: name, Concurrency: r.Concurrency, Sagas: r.Sagas,
			Seconds: float64(r.Sagas) / r.PerSecond, PerSecond: r.PerSecond,
			P50Ms: r.P50Ms, P99Ms: r.P99Ms,
			// One process holds the engine (unless on daprd), the
			// bridge, the broker and the driver: on the embedded engine
			// its CPU is all there is.
			CPUSecondsPer1k: r.CPUPer1k, WorkerCPUSecondsPer1k: r.CPUPer1k,
			PeakRSSMiB: r.PeakRSSMiB,
		})
	}
	return res, line, nil
}
