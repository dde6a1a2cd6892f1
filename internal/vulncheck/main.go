// Command vulncheck runs govulncheck on this module against a
// vulnerability database built offline, and fails when the code calls
// into an advisory that the allow-list does not accept.
//
// The database comes from a pinned version of golang.org/x/vulndb, which
// the Go module proxy serves like any module: its data/osv holds the
// advisories and its cmd/indexdb turns them into the layout govulncheck
// reads with -db file://. It is built once per pin under the cache
// directory. So the check needs only the module proxy, not the
// vulnerability database's own host.
//
//	go run ./internal/vulncheck -vulndb v0.0.0-20261105234957-e22db6528018 ./...
//
// Exit status: 0 when every reachable advisory is allowed, 1 when one is
// not, 2 when the check could not run.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	failed, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "vulncheck:", err)
		os.Exit(2)
	case failed:
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (failed bool, err error) {
	fs := flag.NewFlagSet("vulncheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vulndb := fs.String("vulndb", "", "version of golang.org/x/vulndb to build the database from (required)")
	tool := fs.String("govulncheck", "golang.org/x/vuln/cmd/govulncheck@v1.9.0", "govulncheck to run, as `module/cmd@version`")
	allowPath := fs.String("allow", ".vulncheck-allow.yaml", "allow-list `file`")
	cache := fs.String("cache", ".cache/vulndb", "`directory` that keeps the built databases, one per vulndb version")
	saved := fs.String("result", "", "check this saved `file` of govulncheck -json output instead of running govulncheck")
	goCmd := fs.String("go", "go", "the go `command`")
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	pkgs := fs.Args()
	if len(pkgs) == 0 {
		pkgs = []string{"./..."}
	}

	f, err := os.Open(*allowPath)
	if err != nil {
		return false, err
	}
	entries, err := ParseAllowList(*allowPath, f)
	f.Close()
	if err != nil {
		return false, err
	}

	var out []byte
	dbDesc := "saved result " + *saved
	if *saved != "" {
		if out, err = os.ReadFile(*saved); err != nil {
			return false, err
		}
	} else {
		if *vulndb == "" {
			return false, errors.New("-vulndb is required (the golang.org/x/vulndb version)")
		}
		db, err := ensureDB(ctx, *goCmd, *vulndb, *cache, stderr)
		if err != nil {
			return false, err
		}
		dbDesc = "golang.org/x/vulndb@" + *vulndb
		if out, err = govulncheck(ctx, *goCmd, *tool, db, pkgs, stderr); err != nil {
			return false, err
		}
	}
	scan, err := ParseScan(bytes.NewReader(out))
	if err != nil {
		return false, err
	}
	now := time.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	res := Check(scan, entries, today)
	writeReport(stdout, scan, res, dbDesc, *allowPath)
	return res.Failed(), nil
}

// ensureDB returns the database built from golang.org/x/vulndb@version,
// building it under cache first if needed.
func ensureDB(ctx context.Context, goCmd, version, cache string, stderr io.Writer) (string, error) {
	dir, err := filepath.Abs(filepath.Join(cache, version))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "index", "db.json")); err == nil {
		return dir, nil
	}
	fmt.Fprintf(stderr, "vulncheck: building the vulnerability database from golang.org/x/vulndb@%s into %s (once per version)\n", version, dir)
	// Outside this module, so its go.mod is neither read nor changed.
	tmp, err := os.MkdirTemp("", "vulncheck-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	var info struct{ Dir, Error string }
	dl := goCommand(ctx, goCmd, tmp, "mod", "download", "-json", "golang.org/x/vulndb@"+version)
	dl.Stderr = stderr
	b, err := dl.Output()
	if jerr := json.Unmarshal(b, &info); jerr != nil || info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("downloading golang.org/x/vulndb@%s: %v", version, errors.Join(err, jerr, errorString(info.Error)))
	}

	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	building, err := os.MkdirTemp(filepath.Dir(dir), version+".building-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(building)
	// indexdb writes into an empty directory of its own.
	out := filepath.Join(building, "db")
	index := goCommand(ctx, goCmd, info.Dir, "run", "./cmd/indexdb", "-vulns", filepath.Join(info.Dir, "data", "osv"), "-out", out)
	index.Stdout, index.Stderr = stderr, stderr
	if err := index.Run(); err != nil {
		return "", fmt.Errorf("building the database (cmd/indexdb of golang.org/x/vulndb@%s): %w", version, err)
	}
	// A rename, so a run that was interrupted leaves no half database.
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.Rename(out, dir); err != nil {
		return "", err
	}
	return dir, nil
}

func errorString(s string) error {
	if s == "" {
		return nil
	}
	return errors.New(s)
}

// govulncheck runs the tool on pkgs with the database at db and returns
// its -json output.
func govulncheck(ctx context.Context, goCmd, tool, db string, pkgs []string, stderr io.Writer) ([]byte, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	args := append([]string{"run", tool, "-json", "-db", "file://" + filepath.ToSlash(db)}, pkgs...)
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = wd
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tool, err)
	}
	return out, nil
}

// goCommand runs the go command in dir outside any workspace and without
// the user's GOFLAGS (a -mod=vendor there would break the module proxy
// download and the build inside the vulndb module).
func goCommand(ctx context.Context, goCmd, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	return cmd
}

func writeReport(w io.Writer, scan *Scan, res Result, db, allowPath string) {
	imported, required := 0, 0
	for _, a := range res.NotCalled {
		if a.Level == LevelPackage {
			imported++
		} else {
			required++
		}
	}
	allowed := 0
	for _, j := range res.Reachable {
		if j.Verdict == Allowed {
			allowed++
		}
	}
	fmt.Fprintf(w, "%s with %s, database %s\n", scan.Scanner, scan.GoVersion, db)
	fmt.Fprintf(w, "reachable: %d (%d allowed by %s); in imported packages, not called: %d; in required modules only: %d\n",
		len(res.Reachable), allowed, allowPath, imported, required)
	for _, j := range res.Reachable {
		a := j.Advisory
		tag := map[Verdict]string{Unlisted: "FAIL", Allowed: "allowed", Expired: "FAIL", WrongModule: "FAIL"}[j.Verdict]
		fmt.Fprintf(w, "%-8s %s %s@%s (%s): %s\n", tag, a.ID, a.Module, a.Version, fixed(a), a.Summary)
		if path := callPath(a.Trace); path != "" {
			fmt.Fprintf(w, "         called: %s\n", path)
		}
		switch j.Verdict {
		case Unlisted:
			fmt.Fprintf(w, "         not on the allow-list: upgrade the module, or list the advisory with why it is harmless here\n")
		case Expired:
			fmt.Fprintf(w, "         %s:%d: revisit date %s has passed: look again, then fix or move the date\n", allowPath, j.Entry.Line, j.Entry.Revisit.Format(time.DateOnly))
		case WrongModule:
			fmt.Fprintf(w, "         %s:%d lists it for module %s\n", allowPath, j.Entry.Line, j.Entry.Module)
		case Allowed:
			fmt.Fprintf(w, "         %s:%d, until %s: %s\n", allowPath, j.Entry.Line, j.Entry.Revisit.Format(time.DateOnly), firstLine(j.Entry.Why))
		}
	}
	for _, a := range res.NotCalled {
		fmt.Fprintf(w, "%-8s %s %s@%s (%s): %s\n", a.Level, a.ID, a.Module, a.Version, fixed(a), a.Summary)
	}
	for _, e := range res.Stale {
		fmt.Fprintf(w, "stale    %s:%d: %s (%s) is no longer reachable: remove the entry\n", allowPath, e.Line, e.ID, e.Module)
	}
}

func fixed(a Advisory) string {
	if a.FixedVersion == "" {
		return "no fixed version"
	}
	return "fixed in " + a.FixedVersion
}

// callPath is the trace from the module's own code to the affected
// symbol, with the position of the call in the module.
func callPath(trace []Frame) string {
	if len(trace) < 2 {
		return ""
	}
	entry := trace[len(trace)-1]
	s := entry.symbol()
	if p := entry.Position; p != nil && p.Filename != "" {
		s += fmt.Sprintf(" (%s:%d)", p.Filename, p.Line)
	}
	if len(trace) > 2 {
		s += fmt.Sprintf(" → %d more →", len(trace)-2)
	} else {
		s += " →"
	}
	return s + " " + trace[0].symbol()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
