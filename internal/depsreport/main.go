// Command depsreport lists the modules this module's packages import
// directly (tests included), with the version in use and the newest
// version the module proxy serves: what a dependency bot would propose.
//
//	go run ./internal/depsreport
//
// Direct means imported by the module's own code, whatever go.mod's
// "// indirect" comments say; a module go.mod marks otherwise is flagged
// (go mod tidy fixes the marks).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strings"
	"text/tabwriter"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "depsreport:", err)
		os.Exit(1)
	}
}

// pkg is what `go list -json` says of a package, in part.
type pkg struct {
	ImportPath   string
	Standard     bool
	Imports      []string
	TestImports  []string
	XTestImports []string
	Module       *struct{ Path string }
}

// module is what `go list -m -u -json` says of a module, in part.
type module struct {
	Path     string
	Version  string
	Indirect bool
	Main     bool
	Update   *struct{ Version string }
	Replace  *struct{ Path, Version string }
	Error    *struct{ Err string }
}

func run(ctx context.Context, w io.Writer) error {
	own, err := goList[pkg](ctx, "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports,Module", "./...")
	if err != nil {
		return err
	}
	imported, err := goList[pkg](ctx, append([]string{"list", "-e", "-json=ImportPath,Standard,Module"}, importsOf(own)...)...)
	if err != nil {
		return err
	}
	paths := directModules(own, imported)
	if len(paths) == 0 {
		return errors.New("no imported modules found")
	}
	// -u asks the module proxy for each module's newest version.
	mods, err := goList[module](ctx, append([]string{"list", "-m", "-u", "-e", "-json"}, paths...)...)
	if err != nil {
		return err
	}
	writeReport(w, mods)
	return nil
}

// importsOf is every package the module's packages and their tests
// import, other than the module's own.
func importsOf(own []pkg) []string {
	mine := map[string]bool{}
	for _, p := range own {
		mine[p.ImportPath] = true
	}
	set := map[string]bool{}
	for _, p := range own {
		for _, list := range [][]string{p.Imports, p.TestImports, p.XTestImports} {
			for _, imp := range list {
				if !mine[imp] {
					set[imp] = true
				}
			}
		}
	}
	return sortedKeys(set)
}

// directModules is the set of modules, other than the main one, that
// provide the imported packages.
func directModules(own, imported []pkg) []string {
	main := ""
	for _, p := range own {
		if p.Module != nil {
			main = p.Module.Path
			break
		}
	}
	set := map[string]bool{}
	for _, p := range imported {
		if p.Standard || p.Module == nil || p.Module.Path == main {
			continue
		}
		set[p.Module.Path] = true
	}
	return sortedKeys(set)
}

func writeReport(w io.Writer, mods []module) {
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE\tIN USE\tNEWEST SERVED\tNOTE")
	behind := 0
	for _, m := range mods {
		newest, note := "(this one)", ""
		if m.Update != nil {
			newest = m.Update.Version
			behind++
		}
		switch {
		case m.Error != nil:
			// Typically the proxy refusing the module's version list.
			first, _, _ := strings.Cut(m.Error.Err, "\n")
			newest, note = "?", first
		case m.Replace != nil:
			note = "replaced by " + m.Replace.Path + " " + m.Replace.Version
		case m.Indirect:
			note = "go.mod marks it indirect: go mod tidy"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Path, m.Version, newest, note)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d direct dependencies, %d with a newer version served\n", len(mods), behind)
}

// goList runs the go command and decodes its stream of JSON objects.
func goList[T any](ctx context.Context, args ...string) ([]T, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", args[0], err, stderr.Bytes())
	}
	var list []T
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var v T
		if err := dec.Decode(&v); errors.Is(err, io.EOF) {
			return list, nil
		} else if err != nil {
			return nil, fmt.Errorf("go %s: %w", args[0], err)
		}
		list = append(list, v)
	}
}

func sortedKeys(set map[string]bool) []string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
