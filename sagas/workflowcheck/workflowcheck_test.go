package workflowcheck_test

import (
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/sagabridge/sagabridge/sagas/workflowcheck"
)

// Each testdata package covers one aspect of the rules; the expected
// diagnostics are the // want comments in its source. Packages without
// want comments (clean) must produce no diagnostics at all.
func TestAnalyzer(t *testing.T) {
	for _, pkg := range []string{
		"forbidden",
		"concurrency",
		"activities",
		"transitive",
		"closures",
		"ignore",
		"maprange",
		"clean",
	} {
		t.Run(pkg, func(t *testing.T) {
			analysistest.Run(t, analysistest.TestData(), workflowcheck.Analyzer, pkg)
		})
	}
}
