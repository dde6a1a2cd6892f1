package workflowcheck

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"strings"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/types/typeutil"
)

const (
	// workflowPkgPath is the import path of the Dapr workflow SDK whose
	// context types mark workflow and activity functions.
	workflowPkgPath = "github.com/dapr/durabletask-go/workflow"

	// ignoreDirective opts a line (or a whole function) out of checking.
	ignoreDirective = "//workflowcheck:ignore"

	// maxCallDepth bounds how many static calls away from a workflow
	// function a same-package helper may be and still be checked. Real
	// helper chains are short; the bound keeps diagnostics attributable
	// and the walk cheap on large packages.
	maxCallDepth = 8
)

// Analyzer reports non-deterministic code in Dapr workflow functions.
// See the package documentation for the exact rules.
var Analyzer = &analysis.Analyzer{
	Name: "workflowcheck",
	Doc: `report non-deterministic code in Dapr workflow functions

Dapr workflows are replayed from history, so workflow functions (those with a
*workflow.WorkflowContext parameter) and the same-package helpers they call
must be deterministic. workflowcheck reports wall-clock time, timers,
randomness, I/O (os, net, net/http, io/ioutil, os/exec, syscall), goroutines,
select, channel operations and map ranges that schedule work or append.
Activities (functions with a workflow.ActivityContext parameter) are exempt.
Suppress a finding with a //workflowcheck:ignore comment on or above its line.`,
	Run: run,
}

// funcKind classifies a function by its SDK context parameters.
type funcKind int

const (
	plainFunc funcKind = iota
	workflowFunc
	activityFunc
)

// unit is one function body to check, with the text used to say where a
// finding is and which workflow made it relevant.
type unit struct {
	body  *ast.BlockStmt
	where string // e.g. "workflow function OrderSaga"
	root  string // short workflow name, e.g. "OrderSaga"
	depth int    // static calls away from the workflow function
}

// pkgChecker holds the per-pass state. A new one is built for every run so
// that the Analyzer itself stays stateless and safe for parallel use.
type pkgChecker struct {
	pass    *analysis.Pass
	info    *types.Info
	ignored map[string]map[int]bool // filename -> lines holding the directive
	decls   map[*types.Func]*ast.FuncDecl
}

func run(pass *analysis.Pass) (any, error) {
	c := &pkgChecker{
		pass:    pass,
		info:    pass.TypesInfo,
		ignored: make(map[string]map[int]bool),
		decls:   make(map[*types.Func]*ast.FuncDecl),
	}
	c.collectDirectives()
	roots := c.collectRoots()

	// Breadth-first, so that each body is checked once, at its smallest
	// distance from a workflow, and attributed to the nearest workflow.
	seen := make(map[*ast.BlockStmt]bool)
	queue := roots
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		if seen[u.body] {
			continue
		}
		seen[u.body] = true
		for _, decl := range c.checkBody(u) {
			if seen[decl.Body] || u.depth+1 > maxCallDepth {
				continue
			}
			if c.funcKind(c.info.Defs[decl.Name].Type()) != plainFunc || c.ignoredFunc(decl) {
				continue // activities are exempt; workflows are roots already
			}
			queue = append(queue, unit{
				body:  decl.Body,
				where: fmt.Sprintf("function %s (called from workflow %s)", declName(decl), u.root),
				root:  u.root,
				depth: u.depth + 1,
			})
		}
	}
	return nil, nil
}

// collectDirectives records the lines carrying //workflowcheck:ignore.
func (c *pkgChecker) collectDirectives() {
	for _, f := range c.pass.Files {
		for _, cg := range f.Comments {
			for _, cm := range cg.List {
				if !isDirective(cm.Text) {
					continue
				}
				p := c.pass.Fset.Position(cm.Slash)
				lines := c.ignored[p.Filename]
				if lines == nil {
					lines = make(map[int]bool)
					c.ignored[p.Filename] = lines
				}
				lines[p.Line] = true
			}
		}
	}
}

func isDirective(text string) bool {
	return text == ignoreDirective || strings.HasPrefix(text, ignoreDirective+" ")
}

// ignoredAt reports whether the directive is on pos's line or the line above.
func (c *pkgChecker) ignoredAt(pos token.Pos) bool {
	p := c.pass.Fset.Position(pos)
	lines := c.ignored[p.Filename]
	return lines[p.Line] || lines[p.Line-1]
}

// ignoredFunc reports whether a declaration is opted out as a whole.
func (c *pkgChecker) ignoredFunc(decl *ast.FuncDecl) bool {
	if decl.Doc != nil {
		for _, cm := range decl.Doc.List {
			if isDirective(cm.Text) {
				return true
			}
		}
	}
	return c.ignoredAt(decl.Pos())
}

// collectRoots indexes the package's function declarations and returns the
// workflow functions, in source order, as the starting units.
func (c *pkgChecker) collectRoots() []unit {
	var roots []unit
	for _, f := range c.pass.Files {
		ast.PreorderStack(f, nil, func(n ast.Node, stack []ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				fn, ok := c.info.Defs[n.Name].(*types.Func)
				if !ok || n.Body == nil {
					return false
				}
				c.decls[fn] = n
				if c.funcKind(fn.Type()) == workflowFunc && !c.ignoredFunc(n) {
					name := declName(n)
					roots = append(roots, unit{body: n.Body, where: "workflow function " + name, root: name})
				}
			case *ast.FuncLit:
				if c.funcKind(c.info.TypeOf(n)) == workflowFunc && !c.ignoredAt(n.Pos()) {
					name := litName(n, stack)
					where := "workflow " + name
					if !strings.HasPrefix(name, "func literal") {
						where = "workflow function " + name
					}
					roots = append(roots, unit{body: n.Body, where: where, root: name})
				}
			}
			return true
		})
	}
	return roots
}

// funcKind classifies a function type by its parameters. An ActivityContext
// parameter wins: such a function runs as an activity.
func (c *pkgChecker) funcKind(t types.Type) funcKind {
	sig, ok := t.(*types.Signature)
	if !ok {
		return plainFunc
	}
	kind := plainFunc
	for v := range sig.Params().Variables() {
		switch {
		case isSDKType(v.Type(), "ActivityContext"):
			return activityFunc
		case isSDKType(v.Type(), "WorkflowContext"):
			kind = workflowFunc
		}
	}
	return kind
}

// isSDKType reports whether t is (a pointer to) the named type from the
// Dapr workflow package.
func isSDKType(t types.Type, name string) bool {
	t = types.Unalias(t)
	if p, ok := t.(*types.Pointer); ok {
		t = types.Unalias(p.Elem())
	}
	n, ok := t.(*types.Named)
	if !ok {
		return false
	}
	obj := n.Obj()
	return obj.Name() == name && obj.Pkg() != nil && obj.Pkg().Path() == workflowPkgPath
}

// declName returns "F" for functions and "T.M" for methods.
func declName(decl *ast.FuncDecl) string {
	if decl.Recv == nil || len(decl.Recv.List) == 0 {
		return decl.Name.Name
	}
	t := decl.Recv.List[0].Type
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
			continue
		case *ast.ParenExpr:
			t = x.X
			continue
		case *ast.IndexExpr:
			t = x.X
			continue
		case *ast.IndexListExpr:
			t = x.X
			continue
		case *ast.Ident:
			return x.Name + "." + decl.Name.Name
		}
		return decl.Name.Name
	}
}

// litName names a function literal after the variable it is assigned to,
// or else after its enclosing declaration.
func litName(lit *ast.FuncLit, stack []ast.Node) string {
	if len(stack) > 0 {
		switch p := stack[len(stack)-1].(type) {
		case *ast.AssignStmt:
			for i, rhs := range p.Rhs {
				if rhs == lit && len(p.Lhs) == len(p.Rhs) {
					if id, ok := p.Lhs[i].(*ast.Ident); ok && id.Name != "_" {
						return id.Name
					}
				}
			}
		case *ast.ValueSpec:
			for i, v := range p.Values {
				if v == lit && i < len(p.Names) && p.Names[i].Name != "_" {
					return p.Names[i].Name
				}
			}
		}
	}
	for i := len(stack) - 1; i >= 0; i-- {
		if decl, ok := stack[i].(*ast.FuncDecl); ok {
			return "func literal in " + declName(decl)
		}
	}
	return "func literal"
}

// checkBody reports the findings in one body and returns the same-package
// functions it calls statically, in call order.
func (c *pkgChecker) checkBody(u unit) []*ast.FuncDecl {
	var callees []*ast.FuncDecl
	var visit func(ast.Node) bool
	visit = func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			// Workflow literals are roots of their own; activity
			// literals are exempt; opted-out literals are skipped.
			if c.funcKind(c.info.TypeOf(n)) != plainFunc || c.ignoredAt(n.Pos()) {
				return false
			}
		case *ast.GoStmt:
			c.report(u, n.Pos(), "go statement",
				"goroutines are not replayed; schedule parallel work with ctx.CallActivity and await the tasks")
		case *ast.SelectStmt:
			c.report(u, n.Pos(), "select statement",
				"ready cases are chosen at random; await tasks in a fixed order")
		case *ast.SendStmt:
			c.report(u, n.Pos(), "channel send",
				"channels are not replayed; use activities or ctx.WaitForExternalEvent")
		case *ast.UnaryExpr:
			if n.Op == token.ARROW {
				c.report(u, n.Pos(), "channel receive",
					"channels are not replayed; use activities or ctx.WaitForExternalEvent")
			}
		case *ast.RangeStmt:
			if t := c.info.TypeOf(n.X); t != nil {
				if _, ok := t.Underlying().(*types.Chan); ok {
					c.report(u, n.Pos(), "range over channel",
						"channels are not replayed; use activities or ctx.WaitForExternalEvent")
				}
			}
			c.checkMapRange(u, n)
		case *ast.CallExpr:
			if fn := typeutil.StaticCallee(c.info, n); fn != nil {
				if decl := c.decls[fn.Origin()]; decl != nil {
					callees = append(callees, decl)
				}
			}
			if c.isCtxMethod(n, "CallActivity") {
				// Literal activities run as activities: skip them,
				// but still check everything else in the call.
				ast.Inspect(n.Fun, visit)
				for _, arg := range n.Args {
					if _, ok := ast.Unparen(arg).(*ast.FuncLit); !ok {
						ast.Inspect(arg, visit)
					}
				}
				return false
			}
		case *ast.SelectorExpr:
			if fn, ok := c.info.Uses[n.Sel].(*types.Func); ok {
				if name, why, bad := classify(fn); bad {
					c.report(u, n.Pos(), name, why)
					ast.Inspect(n.X, visit)
					return false
				}
			}
		case *ast.Ident: // unqualified use, e.g. through a dot import
			if fn, ok := c.info.Uses[n].(*types.Func); ok {
				if name, why, bad := classify(fn); bad {
					c.report(u, n.Pos(), name, why)
				}
			}
		}
		return true
	}
	ast.Inspect(u.body, visit)
	return callees
}

// report emits "<what> in <where>: <why>" unless the line is opted out.
func (c *pkgChecker) report(u unit, pos token.Pos, what, why string) {
	if c.ignoredAt(pos) {
		return
	}
	c.pass.Reportf(pos, "%s in %s: %s", what, u.where, why)
}

// isCtxMethod reports whether call invokes the named method on a
// *workflow.WorkflowContext.
func (c *pkgChecker) isCtxMethod(call *ast.CallExpr, names ...string) bool {
	sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr)
	if !ok || !isSDKType(c.info.TypeOf(sel.X), "WorkflowContext") {
		return false
	}
	for _, name := range names {
		if sel.Sel.Name == name {
			return true
		}
	}
	return false
}
