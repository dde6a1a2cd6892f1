package main

import (
	"bytes"
	"cmp"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

// LongFunc is the length past which a function counts as long: from its
// func line to its closing brace, both included.
const LongFunc = 80

// adapterPackages are the broker adapters the bridge should reach only
// through the delivery contract, by import path below the module.
var adapterPackages = []string{"topics/natsjs", "topics/kafka"}

// House is what Measure finds.
type House struct {
	Total   int
	Folders []Folder
	// Long are the functions over LongFunc lines, longest first.
	Long []Func
	// AdapterImports are the non-test files under bridge/ that import a
	// broker adapter.
	AdapterImports []Import
}

// Folder is a top-level folder's non-test Go lines.
type Folder struct {
	Name  string
	Lines int
}

// Func is one long function.
type Func struct {
	File  string
	Line  int
	Name  string
	Lines int
}

// Import is a file and the adapter packages it imports.
type Import struct {
	File     string
	Packages []string
}

func (h House) lines(folder string) int {
	for _, f := range h.Folders {
		if f.Name == folder {
			return f.Lines
		}
	}
	return 0
}

// Measure walks a module's tree (go.mod at its root).
func Measure(fsys fs.FS) (House, error) {
	module, err := modulePath(fsys)
	if err != nil {
		return House{}, err
	}
	var h House
	lines := map[string]int{}
	fset := token.NewFileSet()
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && skipDir(p, d.Name()) {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, p, src, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if ast.IsGenerated(f) {
			return nil
		}
		top, _, _ := strings.Cut(p, "/")
		if top == p {
			top = "."
		}
		lines[top] += bytes.Count(src, []byte("\n"))
		h.Long = append(h.Long, longFuncs(fset, f)...)
		if top == "bridge" {
			if pkgs := adapterImports(module, f); len(pkgs) > 0 {
				h.AdapterImports = append(h.AdapterImports, Import{File: p, Packages: pkgs})
			}
		}
		return nil
	})
	if err != nil {
		return House{}, err
	}
	for name, n := range lines {
		h.Folders = append(h.Folders, Folder{Name: name, Lines: n})
		h.Total += n
	}
	slices.SortFunc(h.Folders, func(a, b Folder) int { return cmp.Or(b.Lines-a.Lines, strings.Compare(a.Name, b.Name)) })
	slices.SortFunc(h.Long, func(a, b Func) int {
		return cmp.Or(b.Lines-a.Lines, strings.Compare(a.File, b.File), a.Line-b.Line)
	})
	return h, nil
}

// skipDir leaves out what is not this module's code: another module
// (bench/ has its own go.mod), test inputs, hidden and vendored folders.
func skipDir(p, name string) bool {
	return p == "bench" || name == "testdata" || name == "vendor" || name == "node_modules" ||
		strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

func longFuncs(fset *token.FileSet, f *ast.File) []Func {
	var out []Func
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		start, end := fset.Position(fn.Pos()), fset.Position(fn.End())
		if n := end.Line - start.Line + 1; n > LongFunc {
			out = append(out, Func{File: start.Filename, Line: start.Line, Name: funcName(fn), Lines: n})
		}
	}
	return out
}

// funcName is Name or Recv.Name, the receiver's type without its pointer
// or type parameters.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	t := fn.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}

func adapterImports(module string, f *ast.File) []string {
	var out []string
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			continue
		}
		for _, a := range adapterPackages {
			if p == module+"/"+a || strings.HasPrefix(p, module+"/"+a+"/") {
				out = append(out, a)
			}
		}
	}
	return out
}

func modulePath(fsys fs.FS) (string, error) {
	b, err := fs.ReadFile(fsys, "go.mod")
	if err != nil {
		return "", fmt.Errorf("run it at the module's root: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if m, ok := strings.CutPrefix(strings.TrimSpace(l), "module "); ok {
			return strings.Trim(strings.TrimSpace(m), `"`), nil
		}
	}
	return "", fmt.Errorf("go.mod names no module")
}
