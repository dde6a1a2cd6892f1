package workflowcheck_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/sagabridge/sagabridge/sagas/workflowcheck"
)

// newModule writes a throwaway module whose github.com/dapr/durabletask-go
// dependency is replaced by the testdata stub, so Main can load it with the
// go command without network access or go.sum entries.
func newModule(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	stub, err := os.ReadFile(filepath.Join("testdata", "src", "github.com", "dapr", "durabletask-go", "workflow", "workflow.go"))
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]string{
		"go.mod": "module example.com/flows\n\ngo 1.26\n\n" +
			"require github.com/dapr/durabletask-go v0.11.0\n\n" +
			"replace github.com/dapr/durabletask-go => ./sdk\n",
		"sdk/go.mod":               "module github.com/dapr/durabletask-go\n\ngo 1.26\n",
		"sdk/workflow/workflow.go": string(stub),
	}
	for name, body := range files {
		all[name] = body
	}
	for name, body := range all {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = workflowcheck.Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

const cleanFlow = `package flows

import "github.com/dapr/durabletask-go/workflow"

func OrderSaga(ctx *workflow.WorkflowContext) (any, error) {
	return ctx.CurrentTimeUTC(), nil
}
`

const dirtyFlow = `package flows

import (
	"time"

	"github.com/dapr/durabletask-go/workflow"
)

func OrderSaga(ctx *workflow.WorkflowContext) (any, error) {
	return time.Now(), nil
}
`

const dirtyTest = `package flows

import (
	"math/rand"

	"github.com/dapr/durabletask-go/workflow"
)

func testSaga(ctx *workflow.WorkflowContext) (any, error) {
	return rand.Int(), nil
}
`

func TestMainClean(t *testing.T) {
	dir := newModule(t, map[string]string{"flows/flows.go": cleanFlow})
	code, stdout, stderr := runMain(t, "-C", dir, "./...")
	if code != workflowcheck.ExitClean || stdout != "" {
		t.Fatalf("Main = %d, stdout %q, stderr %q; want 0 and no output", code, stdout, stderr)
	}
}

func TestMainFindings(t *testing.T) {
	dir := newModule(t, map[string]string{
		"flows/flows.go":      dirtyFlow,
		"flows/flows_test.go": dirtyTest,
		"other/other.go":      "package other\n",
	})
	// No patterns: defaults to ./... relative to -C.
	code, stdout, stderr := runMain(t, "-C", dir)
	want := filepath.Join("flows", "flows.go") + ":10:9: time.Now in workflow function OrderSaga: not replay-safe; use ctx.CurrentTimeUTC()\n" +
		filepath.Join("flows", "flows_test.go") + ":10:9: rand.Int in workflow function testSaga: random values differ on replay; generate them in an activity\n"
	if code != workflowcheck.ExitDiagnostics || stdout != want {
		t.Fatalf("Main = %d, stdout:\n%s\nstderr:\n%s\nwant 1 and stdout:\n%s", code, stdout, stderr, want)
	}

	// -test=false skips the _test.go file.
	code, stdout, _ = runMain(t, "-C", dir, "-test=false", "./flows")
	if code != workflowcheck.ExitDiagnostics || strings.Count(stdout, "\n") != 1 || strings.Contains(stdout, "flows_test.go") {
		t.Fatalf("Main -test=false = %d, stdout:\n%s", code, stdout)
	}

	// A clean package in the same module is clean on its own.
	if code, stdout, stderr := runMain(t, "-C", dir, "./other"); code != workflowcheck.ExitClean {
		t.Fatalf("Main ./other = %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestMainOutputFormats: -o json and -o yaml list the same findings as
// the vet lines, and an empty list when clean; an unknown format is a
// usage error.
func TestMainOutputFormats(t *testing.T) {
	dir := newModule(t, map[string]string{"flows/flows.go": dirtyFlow, "clean/clean.go": strings.Replace(cleanFlow, "package flows", "package clean", 1)})
	type entry struct {
		File    string `json:"file"`
		Line    int    `json:"line"`
		Column  int    `json:"column"`
		Message string `json:"message"`
	}
	want := []entry{{filepath.Join("flows", "flows.go"), 10, 9, "time.Now in workflow function OrderSaga: not replay-safe; use ctx.CurrentTimeUTC()"}}
	for _, format := range []string{"json", "yaml", "output=json"} {
		args := []string{"-C", dir, "-o", format, "./flows"}
		if format == "output=json" {
			args = []string{"-C", dir, "-output=json", "./flows"}
		}
		code, stdout, stderr := runMain(t, args...)
		var got []entry
		if err := yaml.Unmarshal([]byte(stdout), &got); err != nil || code != workflowcheck.ExitDiagnostics || !reflect.DeepEqual(got, want) {
			t.Errorf("-o %s = %d, %+v (%v)\nstdout:\n%s\nstderr:\n%s", format, code, got, err, stdout, stderr)
		}
		if format == "json" && !json.Valid([]byte(stdout)) {
			t.Errorf("-o json is not JSON:\n%s", stdout)
		}
	}
	if code, stdout, stderr := runMain(t, "-C", dir, "-o", "json", "./clean"); code != workflowcheck.ExitClean || strings.TrimSpace(stdout) != "[]" {
		t.Errorf("-o json on a clean package = %d, stdout %q, stderr %q; want 0 and []", code, stdout, stderr)
	}
	if code, _, stderr := runMain(t, "-o", "xml"); code != workflowcheck.ExitError || !strings.Contains(stderr, "xml") {
		t.Errorf("-o xml = %d, stderr %q; want 2 naming the format", code, stderr)
	}
}

func TestMainErrors(t *testing.T) {
	dir := newModule(t, map[string]string{
		"flows/flows.go":   dirtyFlow,
		"broken/broken.go": "package broken\n\nfunc f() int { return \"x\" }\n",
	})
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"bad flag", []string{"-nope"}},
		{"type error", []string{"-C", dir, "./broken"}},
		{"type error beats findings", []string{"-C", dir, "./..."}},
		{"no packages", []string{"-C", dir, "./missing/..."}},
		{"bad dir", []string{"-C", filepath.Join(dir, "missing"), "./..."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, tc.args...)
			if code != workflowcheck.ExitError || stderr == "" {
				t.Fatalf("Main %q = %d, stdout %q, stderr %q; want 2 and an error", tc.args, code, stdout, stderr)
			}
		})
	}
}

func TestMainHelp(t *testing.T) {
	code, _, stderr := runMain(t, "-h")
	if code != workflowcheck.ExitClean || !strings.Contains(stderr, "usage:") {
		t.Fatalf("Main -h = %d, stderr %q", code, stderr)
	}
}
