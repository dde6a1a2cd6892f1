package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func called(id, module string) Advisory {
	return Advisory{ID: id, Module: module, Version: "v1.0.0", FixedVersion: "v1.1.0", Level: LevelSymbol,
		Trace: []Frame{{Module: module, Package: module, Function: "F"}, {Module: "example.com/app", Package: "example.com/app", Function: "main"}}}
}

func TestCheck(t *testing.T) {
	entry := func(id, module, revisit string) Entry {
		return Entry{ID: id, Module: module, Why: "because", Revisit: day(revisit), Line: 1}
	}
	notCalled := Advisory{ID: "GO-2026-9", Module: "m", Level: LevelPackage}
	tests := []struct {
		name     string
		found    []Advisory
		entries  []Entry
		verdicts []Verdict
		stale    []string
		failed   bool
	}{
		{name: "nothing found", failed: false},
		{name: "reachable and unlisted fails",
			found: []Advisory{called("GO-2026-1", "m")}, verdicts: []Verdict{Unlisted}, failed: true},
		{name: "listed holds through its revisit day",
			found: []Advisory{called("GO-2026-1", "m")}, entries: []Entry{entry("GO-2026-1", "m", "2027-01-10")},
			verdicts: []Verdict{Allowed}},
		{name: "past its revisit day it fails again",
			found: []Advisory{called("GO-2026-1", "m")}, entries: []Entry{entry("GO-2026-1", "m", "2027-01-09")},
			verdicts: []Verdict{Expired}, failed: true},
		{name: "an entry for another module does not cover it",
			found: []Advisory{called("GO-2026-1", "m")}, entries: []Entry{entry("GO-2026-1", "other", "2027-02-01")},
			verdicts: []Verdict{WrongModule}, failed: true},
		{name: "one unlisted among allowed fails",
			found:    []Advisory{called("GO-2026-1", "m"), called("GO-2026-2", "m")},
			entries:  []Entry{entry("GO-2026-1", "m", "2027-02-01")},
			verdicts: []Verdict{Allowed, Unlisted}, failed: true},
		{name: "not called never fails",
			found: []Advisory{notCalled}},
		{name: "an entry whose advisory is gone is stale, not failing",
			entries: []Entry{entry("GO-2026-3", "m", "2027-02-01")}, stale: []string{"GO-2026-3"}},
		{name: "an entry whose advisory is no longer called is stale",
			found: []Advisory{notCalled}, entries: []Entry{entry("GO-2026-9", "m", "2027-02-01")}, stale: []string{"GO-2026-9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Check(&Scan{Advisories: tt.found}, tt.entries, day("2027-01-10"))
			var verdicts []Verdict
			for _, j := range res.Reachable {
				verdicts = append(verdicts, j.Verdict)
			}
			var stale []string
			for _, e := range res.Stale {
				stale = append(stale, e.ID)
			}
			if !equal(verdicts, tt.verdicts) || !equal(stale, tt.stale) || res.Failed() != tt.failed {
				t.Errorf("verdicts %v stale %v failed %v; want %v %v %v", verdicts, stale, res.Failed(), tt.verdicts, tt.stale, tt.failed)
			}
		})
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReportSaysWhatToDo(t *testing.T) {
	scan := &Scan{Scanner: "govulncheck v1.9.0", GoVersion: "go1.27.3", Advisories: []Advisory{
		called("GO-2026-1", "m"), called("GO-2026-2", "m"), {ID: "GO-2026-9", Module: "n", Level: LevelModule},
	}}
	entries := []Entry{
		{ID: "GO-2026-2", Module: "m", Why: "Only the server side is affected.\nMore.", Revisit: day("2027-02-01"), Line: 4},
		{ID: "GO-2026-3", Module: "m", Why: "x", Revisit: day("2027-02-01"), Line: 9},
	}
	var b bytes.Buffer
	writeReport(&b, scan, Check(scan, entries, day("2027-01-10")), "golang.org/x/vulndb@v0", "allow.yaml")
	for _, want := range []string{
		"reachable: 2 (1 allowed by allow.yaml); in imported packages, not called: 0; in required modules only: 1",
		"FAIL     GO-2026-1 m@v1.0.0 (fixed in v1.1.0)",
		"called: example.com/app.main → m.F",
		"not on the allow-list",
		"allowed  GO-2026-2",
		"allow.yaml:4, until 2027-02-01: Only the server side is affected.\n",
		"required GO-2026-9 n@ (no fixed version)",
		"stale    allow.yaml:9: GO-2026-3 (m) is no longer reachable: remove the entry",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}
