package main

import (
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
