package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestDirectModules(t *testing.T) {
	mod := func(path string) *struct{ Path string } { return &struct{ Path string }{path} }
	own := []pkg{
		{ImportPath: "example.com/app", Module: mod("example.com/app"),
			Imports: []string{"fmt", "example.com/app/store", "github.com/a/lib/sub"}},
		{ImportPath: "example.com/app/store", Module: mod("example.com/app"),
			Imports: []string{"github.com/b/db"}, TestImports: []string{"github.com/c/assert"}, XTestImports: []string{"example.com/app/store"}},
	}
	imports := importsOf(own)
	if got, want := strings.Join(imports, " "), "fmt github.com/a/lib/sub github.com/b/db github.com/c/assert"; got != want {
		t.Fatalf("imports %s, want %s", got, want)
	}
	imported := []pkg{
		{ImportPath: "fmt", Standard: true},
		{ImportPath: "github.com/a/lib/sub", Module: mod("github.com/a/lib")},
		{ImportPath: "github.com/b/db", Module: mod("github.com/b/db")},
		{ImportPath: "github.com/c/assert", Module: mod("github.com/c/assert")},
	}
	if got, want := strings.Join(directModules(own, imported), " "), "github.com/a/lib github.com/b/db github.com/c/assert"; got != want {
		t.Fatalf("modules %s, want %s", got, want)
	}
}

func TestReport(t *testing.T) {
	mods := []module{
		{Path: "github.com/b/db", Version: "v1.0.0"},
		{Path: "github.com/a/lib", Version: "v0.3.0", Indirect: true, Update: &struct{ Version string }{"v0.5.1"}},
	}
	var b bytes.Buffer
	writeReport(&b, mods)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("report:\n%s", b.String())
	}
	for i, want := range [][]string{
		{"MODULE", "IN USE", "NEWEST SERVED"},
		{"github.com/a/lib", "v0.3.0", "v0.5.1", "go mod tidy"},
		{"github.com/b/db", "v1.0.0", "(this one)"},
		{"2 direct dependencies, 1 with a newer version served"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i, lines[i], w)
			}
		}
	}
}
