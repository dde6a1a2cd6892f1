package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseAllowList(t *testing.T) {
	in := `# comment
- id: GO-2026-5242
  module: github.com/dapr/dapr
  why: |
    Only daprd's service invocation is affected.
    The product does not import it.
  revisit: 2027-03-01
- id: "GO-2026-6094"
  module: github.com/google/cel-go
  why: NativeTypes is not used.
  revisit: "2027-01-15"
`
	entries, err := ParseAllowList("allow.yaml", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("%d entries", len(entries))
	}
	e := entries[0]
	if e.ID != "GO-2026-5242" || e.Module != "github.com/dapr/dapr" || e.Line != 2 ||
		!e.Revisit.Equal(time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)) || !strings.HasPrefix(e.Why, "Only daprd's") {
		t.Errorf("entry 0: %+v", e)
	}
	if entries[1].Line != 8 || entries[1].Revisit.Day() != 15 {
		t.Errorf("entry 1: %+v", entries[1])
	}
}

func TestParseAllowListEmpty(t *testing.T) {
	entries, err := ParseAllowList("allow.yaml", strings.NewReader("# none\n[]\n"))
	if err != nil || len(entries) != 0 {
		t.Fatalf("%v %v", entries, err)
	}
	if _, err := ParseAllowList("allow.yaml", strings.NewReader("# nothing\n")); err == nil {
		t.Fatal("a file with no list is accepted")
	}
}

func TestParseAllowListNamesEveryProblem(t *testing.T) {
	in := `- id: CVE-2026-1
  module: a
  why: x
  revisit: 2027-01-01
- id: GO-2026-2
  why: ""
  revisit: soon
- id: GO-2026-2
  module: b
  why: y
  revisit: 2027-01-01
`
	_, err := ParseAllowList("allow.yaml", strings.NewReader(in))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`allow.yaml:1: id "CVE-2026-1"`,
		"allow.yaml:5: GO-2026-2: module missing",
		"allow.yaml:5: GO-2026-2: why missing",
		`allow.yaml:5: GO-2026-2: revisit "soon"`,
		"allow.yaml:8: GO-2026-2: listed again (first at line 5)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestParseAllowListRefusesUnknownKeys(t *testing.T) {
	in := "- id: GO-2026-1\n  module: a\n  why: x\n  revisit: 2027-01-01\n  until: 2028-01-01\n"
	_, err := ParseAllowList("allow.yaml", strings.NewReader(in))
	if err == nil || !strings.Contains(err.Error(), "until") {
		t.Fatalf("error %v", err)
	}
}

// TestRepositoryAllowList: the project's own list parses.
func TestRepositoryAllowList(t *testing.T) {
	f, err := os.Open("../../.vulncheck-allow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := ParseAllowList(".vulncheck-allow.yaml", f); err != nil {
		t.Fatal(err)
	}
}
