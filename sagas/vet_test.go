package sagas_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/sagas/workflowcheck"
)

// TestVetFlagsNonDeterminism runs `sagabridge vet` (workflowcheck.Main) on
// a module whose workflows read the clock and schedule work in map order,
// and checks both are reported. The module uses workflowcheck's stub of
// the durabletask-go workflow package, so the test needs no network.
func TestVetFlagsNonDeterminism(t *testing.T) {
	dir := t.TempDir()
	stub, err := os.ReadFile(filepath.Join("workflowcheck", "testdata", "src", "github.com", "dapr", "durabletask-go", "workflow", "workflow.go"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"go.mod": "module example.com/flows\n\ngo 1.26\n\nrequire github.com/dapr/durabletask-go v0.11.0\n\n" +
			"replace github.com/dapr/durabletask-go => ./sdk\n",
		"sdk/go.mod":               "module github.com/dapr/durabletask-go\n\ngo 1.26\n",
		"sdk/workflow/workflow.go": string(stub),
		"flows/flows.go": `package flows

import (
	"time"

	"github.com/dapr/durabletask-go/workflow"
)

// Deadline reads the wall clock: a replay would see another time.
func Deadline(ctx *workflow.WorkflowContext) (any, error) {
	return time.Now().Add(time.Hour), nil
}

// Fanout schedules one activity per map entry: a replay may schedule them
// in another order.
func Fanout(ctx *workflow.WorkflowContext) (any, error) {
	skus := map[string]int{"a": 1, "b": 2}
	for sku := range skus {
		_ = ctx.CallActivity("Reserve", workflow.WithActivityInput(sku))
	}
	return nil, nil
}
`,
	}
	for name, body := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	code := workflowcheck.Main([]string{"-C", dir, "./..."}, &out, &errOut)
	if code != workflowcheck.ExitDiagnostics {
		t.Fatalf("vet exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, workflowcheck.ExitDiagnostics, &out, &errOut)
	}
	for _, want := range []string{
		"flows.go:11:9: time.Now in workflow function Deadline",
		"flows.go:18:2: range over map in workflow function Fanout: iteration order is random and the loop schedules work",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("vet output lacks %q:\n%s", want, &out)
		}
	}
}

// TestVetPassesOnSagas: the saga runtime, the example sagas and these
// tests are deterministic by workflowcheck's rules. The check runs as
// `sagabridge vet` in a process of its own, built without the race
// detector: go/packages type-checks packages in parallel, and go/types in
// Go 1.27 has a data race between Named.unpack and Checker.isComplete
// when it does (golang/go#81122), which fails a -race test binary at
// random on a loaded machine although the analysis is sound.
func TestVetPassesOnSagas(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and type-checks the sagas tree")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "./cmd/sagabridge", "vet", "./sagas/...")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sagabridge vet ./sagas/...: %v\n%s", err, out)
	}
}
