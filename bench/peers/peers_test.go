package main

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPoolWeighsRoundsBySagas(t *testing.T) {
	got := pool([]Result{
		{System: "x", Concurrency: 8, Sagas: 100, Seconds: 1, P50Ms: 10, P99Ms: 20, CPUSecondsPer1k: 2, WorkerCPUSecondsPer1k: 1, PeakRSSMiB: 50},
		{System: "x", Concurrency: 8, Sagas: 300, Seconds: 2, P50Ms: 30, P99Ms: 40, CPUSecondsPer1k: 4, WorkerCPUSecondsPer1k: 3, PeakRSSMiB: 70},
	})
	want := Result{System: "x", Concurrency: 8, Sagas: 400, Seconds: 3, PerSecond: 400.0 / 3,
		P50Ms: 25, P99Ms: 35, CPUSecondsPer1k: 3.5, WorkerCPUSecondsPer1k: 2.5, PeakRSSMiB: 70}
	if math.Abs(got.PerSecond-want.PerSecond) > 1e-9 {
		t.Errorf("sagas/s %v, want %v", got.PerSecond, want.PerSecond)
	}
	got.PerSecond = want.PerSecond
	if got != want {
		t.Errorf("pool = %+v\nwant  %+v", got, want)
	}
}

func TestTreeCPUCountsChildrenThatExited(t *testing.T) {
	// A shell that runs a busy child to completion: the child's CPU must
	// still count, through the shell's cutime.
	cmd := exec.Command("sh", "-c", `sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'; sleep 5`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if len(processTree(cmd.Process.Pid)) == 2 { // the shell and sleep: the busy child is gone
			st, err := readProcStat(cmd.Process.Pid)
			if err == nil && st.childCPU > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the busy child did not finish in 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if cpu := treeCPUSeconds(cmd.Process.Pid); cpu < 0.05 {
		t.Errorf("tree CPU %.2f s, want the busy child's time in it", cpu)
	}
}

// The peers run the saga end to end: start, three steps, the event, the
// outcome reaching the harness.
func TestPeersRunTheSaga(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, name := range []string{sysTemporalMemory, sysDBOSSQLite} {
		t.Run(name, func(t *testing.T) {
			out := newOutcomes()
			var sys saga
			var err error
			switch name {
			case sysTemporalMemory:
				sys, err = startTemporal(t.TempDir(), true, out)
			case sysDBOSSQLite:
				sys, err = startDBOS(ctx, "sqlite:"+t.TempDir()+"/dbos.db", out)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer sys.close()
			res, err := measure(ctx, sys, out, name, 2, 6, []int{os.Getpid()})
			if err != nil {
				t.Fatal(err)
			}
			if res.Sagas != 6 || res.P50Ms <= 0 || res.CPUSecondsPer1k <= res.WorkerCPUSecondsPer1k {
				t.Errorf("result %+v: want 6 sagas timed, and the server pid's CPU added to the worker's", res)
			}
		})
	}
}

// Without Dapr's binaries, or with another release's, sagabridge-dapr
// says to run `make dapr` instead of failing somewhere in a round.
func TestCheckDaprBinPointsAtMakeDapr(t *testing.T) {
	dir := t.TempDir()
	if err := checkDaprBin(dir); err == nil || !strings.Contains(err.Error(), "no daprd in "+dir) || !strings.Contains(err.Error(), "make dapr") {
		t.Errorf("empty directory: %v; want it to name daprd and `make dapr`", err)
	}
	for _, name := range []string{"daprd", "placement", "scheduler"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ".dapr-version"), []byte("v1.14.4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkDaprBin(dir); err == nil || !strings.Contains(err.Error(), `not v1.16.0 (.dapr-version: "v1.14.4")`) || !strings.Contains(err.Error(), "make dapr") {
		t.Errorf("v1.14.4 binaries: %v; want the version named and `make dapr`", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".dapr-version"), []byte(daprVersion+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkDaprBin(dir); err != nil {
		t.Errorf("%s binaries: %v", daprVersion, err)
	}
}
