package main

import (
	"os"
	"strings"
	"testing"
)

// TestBenchLongRetentionFlag: --retention reaches the run (the table names
// the period and counts the instances kept), and a negative one is a usage
// error.
func TestBenchLongRetentionFlag(t *testing.T) {
	c := cli{t: t}
	out, errOut, code := c.run("", "bench", "long", "--sagas", "20", "--window", "20", "--concurrency", "4",
		"--parked", "0", "--retention", "1m", "--data", t.TempDir())
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "retention 1m0s") || !strings.Contains(out, "instances kept") {
		t.Errorf("output lacks the retention and the instances kept:\n%s", out)
	}
	if _, errOut, code := c.run("", "bench", "long", "--sagas", "20", "--window", "20", "--retention", "-1s", "--data", t.TempDir()); code != exitUsage || !strings.Contains(errOut, "retention -1s is negative") {
		t.Errorf("--retention -1s: exit %d, stderr %q; want a usage error", code, errOut)
	}
}

// TestBenchDaprGRPCFlag: --dapr-grpc is documented in the help, and an
// address that is not host:port is a usage error before anything starts.
// (A run on a real daprd is bench/peers' sagabridge-dapr system.)
func TestBenchDaprGRPCFlag(t *testing.T) {
	c := cli{t: t}
	out, errOut, code := c.run("", "bench", "--help")
	if code != exitOK || !strings.Contains(out, "--dapr-grpc") {
		t.Errorf("bench --help: exit %d, stderr %q; want --dapr-grpc in:\n%s", code, errOut, out)
	}
	data := t.TempDir()
	_, errOut, code = c.run("", "bench", "--dapr-grpc", "127.0.0.1", "--sagas", "1", "--data", data)
	if code != exitUsage || !strings.Contains(errOut, `"127.0.0.1" is not host:port`) {
		t.Errorf("--dapr-grpc 127.0.0.1: exit %d, stderr %q; want a usage error naming the address", code, errOut)
	}
	if entries, err := os.ReadDir(data); err != nil || len(entries) != 0 {
		t.Errorf("the refused run wrote %v (%v) in --data; want nothing started", entries, err)
	}
}
