// Command housecheck prints the figures the layout is held to, so that
// anyone can see them before and after a move:
//
//	go run ./internal/housecheck [dir]
//
// It reports the non-test Go lines of each top-level folder and bridge/'s
// share of them, the non-test functions longer than 80 lines, and whether
// bridge/ imports a broker adapter package. It only reports: the counts
// are goals, not gates, so it exits 0 whatever they are (1 only when the
// tree cannot be read).
//
// bench/ is a module of its own and testdata holds inputs, not code; both
// are left out, as are generated files and hidden folders.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	dir := "."
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	h, err := Measure(os.DirFS(dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, "housecheck:", err)
		os.Exit(1)
	}
	h.Print(os.Stdout)
}

// Print writes the report.
func (h House) Print(w io.Writer) {
	fmt.Fprintf(w, "non-test Go lines per top-level folder (total %d):\n", h.Total)
	for _, f := range h.Folders {
		fmt.Fprintf(w, "  %-14s %6d  %4.1f %%\n", f.Name+"/", f.Lines, percent(f.Lines, h.Total))
	}
	fmt.Fprintf(w, "bridge/ share: %.1f %% (goal: at most %d %%)\n", percent(h.lines("bridge"), h.Total), bridgeShareGoal)
	fmt.Fprintf(w, "non-test functions over %d lines: %d (goal: at most %d)\n", LongFunc, len(h.Long), longFuncGoal)
	for _, f := range h.Long {
		fmt.Fprintf(w, "  %4d  %s:%d %s\n", f.Lines, f.File, f.Line, f.Name)
	}
	if len(h.AdapterImports) == 0 {
		fmt.Fprintln(w, "bridge/ imports a broker adapter: no")
		return
	}
	fmt.Fprintf(w, "bridge/ imports a broker adapter: yes, %d files\n", len(h.AdapterImports))
	for _, imp := range h.AdapterImports {
		fmt.Fprintf(w, "  %s: %s\n", imp.File, strings.Join(imp.Packages, ", "))
	}
}

// The goals of issue 20's "done when".
const (
	bridgeShareGoal = 30
	longFuncGoal    = 5
)

func percent(n, total int) float64 {
	if total == 0 {
		return 0
	}
	return 100 * float64(n) / float64(total)
}
