package main

import (
	"os"
	"strings"
	"testing"
)

func TestParseScanKeepsTheClosestLevel(t *testing.T) {
	f, err := os.Open("testdata/scan.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	scan, err := ParseScan(f)
	if err != nil {
		t.Fatal(err)
	}
	if scan.Scanner != "govulncheck v1.9.0" || scan.GoVersion != "go1.27.3" {
		t.Errorf("scanner %q, go %q", scan.Scanner, scan.GoVersion)
	}
	type want struct {
		id, module, version, fixed string
		level                      Level
		frames                     int
	}
	wants := []want{
		{"GO-2026-6441", "google.golang.org/grpc", "v1.65.0", "v1.83.1", LevelModule, 1},
		// Found at all three levels; the first call path is kept.
		{"GO-2026-6443", "google.golang.org/grpc", "v1.65.0", "v1.82.2", LevelSymbol, 3},
		{"GO-2026-6860", "golang.org/x/net", "v0.60.0", "v0.62.0", LevelPackage, 1},
	}
	if len(scan.Advisories) != len(wants) {
		t.Fatalf("%d advisories, want %d: %+v", len(scan.Advisories), len(wants), scan.Advisories)
	}
	for i, w := range wants {
		a := scan.Advisories[i]
		if a.ID != w.id || a.Module != w.module || a.Version != w.version || a.FixedVersion != w.fixed || a.Level != w.level || len(a.Trace) != w.frames {
			t.Errorf("advisory %d: %s %s@%s fixed %s level %s, %d frames; want %+v", i, a.ID, a.Module, a.Version, a.FixedVersion, a.Level, len(a.Trace), w)
		}
		if a.Summary == "" {
			t.Errorf("%s: no summary", a.ID)
		}
	}
	got := callPath(scan.Advisories[1].Trace)
	if want := "example.com/app/hub.Start (hub/hub.go:42) → 1 more → google.golang.org/grpc/internal/transport.(*http2Server).HandleStreams"; got != want {
		t.Errorf("call path\n got %s\nwant %s", got, want)
	}
}

func TestParseScanRefusesWhatIsNotGovulncheckJSON(t *testing.T) {
	for name, in := range map[string]string{
		"text output":       "=== Symbol Results ===\n",
		"no config":         `{"osv": {"id": "GO-2026-1"}}`,
		"finding, no trace": `{"config": {}} {"finding": {"osv": "GO-2026-1"}}`,
		"truncated":         `{"config": {}} {"finding": {"osv": "GO-2026-1", "trace": [`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseScan(strings.NewReader(in)); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
