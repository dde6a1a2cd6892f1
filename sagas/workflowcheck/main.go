package workflowcheck

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/checker"
	"golang.org/x/tools/go/packages"
	"sigs.k8s.io/yaml"
)

// Exit codes returned by Main, following go vet's conventions.
const (
	ExitClean       = 0 // no findings
	ExitDiagnostics = 1 // at least one finding
	ExitError       = 2 // bad usage, or packages failed to load or analyze
)

// Main runs the analyzer over the packages matching the patterns in args
// (default "./...") and prints one "file:line:col: message" line per finding
// to stdout, with file names relative to the working directory when they
// lie below it. Load and usage errors go to stderr. It returns ExitClean,
// ExitDiagnostics or ExitError; load errors take precedence over findings
// so that a partially checked tree is never mistaken for a clean one.
//
// It is the body of "sagabridge vet"; it takes its writers as parameters
// and never calls os.Exit so that the CLI and tests can embed it.
func Main(args []string, stdout, stderr io.Writer) int {
	opts, exit, ok := parseArgs(args, stderr)
	if !ok {
		return exit
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "workflowcheck: %v\n", err)
		return ExitError
	}
	base := opts.dir
	if base == "" {
		wd, err := os.Getwd()
		if err != nil {
			return fail(err)
		}
		base = wd
	}
	base, err := filepath.Abs(base)
	if err != nil {
		return fail(err)
	}
	good, broken, err := load(base, opts, stderr)
	if err != nil {
		return fail(err)
	}
	findings, failed, err := analyze(base, good, stderr)
	if err != nil {
		return fail(err)
	}
	// With -test a package is loaded twice (with and without its tests),
	// so the same finding can appear twice.
	slices.SortFunc(findings, finding.compare)
	findings = slices.Compact(findings)
	if err := writeFindings(stdout, opts.output, findings); err != nil {
		return fail(err)
	}
	switch {
	case broken || failed:
		return ExitError
	case len(findings) > 0:
		return ExitDiagnostics
	}
	return ExitClean
}

// options are Main's flags and patterns.
type options struct {
	dir, output string
	tests       bool
	patterns    []string
}

// parseArgs parses Main's args; when it is not ok, Main returns exit.
func parseArgs(args []string, stderr io.Writer) (opts options, exit int, ok bool) {
	flags := flag.NewFlagSet("vet", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.StringVar(&opts.dir, "C", "", "load packages from `dir` instead of the current directory")
	flags.BoolVar(&opts.tests, "test", true, "also check _test.go files")
	for _, name := range []string{"o", "output"} {
		flags.StringVar(&opts.output, name, "table", "output format: table (file:line:col: message lines), json or yaml")
	}
	flags.Usage = func() {
		fmt.Fprintf(stderr, "usage: vet [-C dir] [-test=false] [-o table|json|yaml] [packages]\n\n"+
			"Reports non-deterministic code in Dapr workflow functions.\n"+
			"Exit status: 0 clean, 1 findings, 2 usage or load error.\n\n")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return opts, ExitClean, false
		}
		return opts, ExitError, false
	}
	if opts.output != "table" && opts.output != "json" && opts.output != "yaml" {
		fmt.Fprintf(stderr, "workflowcheck: -o %q is not table, json or yaml\n", opts.output)
		return opts, ExitError, false
	}
	opts.patterns = flags.Args()
	if len(opts.patterns) == 0 {
		opts.patterns = []string{"./..."}
	}
	return opts, 0, true
}

// load loads the packages the patterns match below base; the ones that
// failed to load are left out, their errors printed to stderr, and broken
// says there were some.
func load(base string, opts options, stderr io.Writer) (good []*packages.Package, broken bool, err error) {
	cfg := &packages.Config{
		// Dependencies come from export data: the analyzer exports no
		// facts, so only the root packages need syntax.
		Mode:  packages.LoadSyntax | packages.NeedModule,
		Dir:   base,
		Tests: opts.tests,
	}
	pkgs, err := packages.Load(cfg, opts.patterns...)
	if err != nil {
		return nil, false, err
	}
	if len(pkgs) == 0 {
		return nil, false, fmt.Errorf("no packages match %s", strings.Join(opts.patterns, " "))
	}
	for _, pkg := range pkgs {
		if len(pkg.Errors) > 0 {
			for _, e := range pkg.Errors {
				if e.Pos == "" || e.Pos == "-" {
					fmt.Fprintf(stderr, "workflowcheck: %s\n", e.Msg)
				} else {
					fmt.Fprintf(stderr, "%s: %s\n", e.Pos, e.Msg)
				}
			}
			broken = true
			continue
		}
		good = append(good, pkg)
	}
	return good, broken, nil
}

// analyze runs the analyzer over pkgs; a package it failed on is printed
// to stderr, and failed says there was one.
func analyze(base string, pkgs []*packages.Package, stderr io.Writer) (findings []finding, failed bool, err error) {
	if len(pkgs) == 0 {
		return nil, false, nil
	}
	graph, err := checker.Analyze([]*analysis.Analyzer{Analyzer}, pkgs, nil)
	if err != nil {
		return nil, false, err
	}
	for _, act := range graph.Roots {
		if act.Err != nil {
			fmt.Fprintf(stderr, "workflowcheck: %s: %v\n", act.Package.PkgPath, act.Err)
			failed = true
			continue
		}
		for _, d := range act.Diagnostics {
			p := act.Package.Fset.Position(d.Pos)
			findings = append(findings, finding{relPath(base, p.Filename), p.Line, p.Column, d.Message})
		}
	}
	return findings, failed, nil
}

// finding is one printed diagnostic.
type finding struct {
	file      string
	line, col int
	msg       string
}

// writeFindings prints the findings as vet does (one line each, which
// editors jump to), or as a JSON or YAML list for scripts: an empty list
// when the check is clean, so the output always parses.
func writeFindings(w io.Writer, format string, findings []finding) error {
	if format == "table" {
		for _, f := range findings {
			if _, err := fmt.Fprintf(w, "%s:%d:%d: %s\n", f.file, f.line, f.col, f.msg); err != nil {
				return err
			}
		}
		return nil
	}
	type entry struct {
		File    string `json:"file"`
		Line    int    `json:"line"`
		Column  int    `json:"column"`
		Message string `json:"message"`
	}
	list := make([]entry, 0, len(findings))
	for _, f := range findings {
		list = append(list, entry{f.file, f.line, f.col, f.msg})
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	if format == "yaml" {
		if b, err = yaml.JSONToYAML(b); err != nil {
			return err
		}
	} else {
		b = append(b, '\n')
	}
	_, err = w.Write(b)
	return err
}

func (a finding) compare(b finding) int {
	return cmp.Or(
		cmp.Compare(a.file, b.file),
		cmp.Compare(a.line, b.line),
		cmp.Compare(a.col, b.col),
		cmp.Compare(a.msg, b.msg),
	)
}

// relPath shortens name relative to base when it lies below base.
func relPath(base, name string) string {
	rel, err := filepath.Rel(base, name)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return name
	}
	return rel
}
