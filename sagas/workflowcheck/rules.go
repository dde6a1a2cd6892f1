package workflowcheck

import (
	"fmt"
	"go/ast"
	"go/types"

	"golang.org/x/tools/go/types/typeutil"
)

// The rule tables are switch statements rather than package-level maps so
// that there is no mutable global state to guard or accidentally modify.

// classify decides whether a use of fn is forbidden in workflow code and,
// if so, returns its display name and the "why; instead" message part.
func classify(fn *types.Func) (name, why string, bad bool) {
	pkg := fn.Pkg()
	if pkg == nil {
		return "", "", false // universe scope, e.g. error.Error
	}
	switch pkg.Path() {
	case "time":
		if fn.Signature().Recv() != nil {
			return "", "", false // time.Time and time.Duration methods are pure
		}
		if why := timeRule(fn.Name()); why != "" {
			return "time." + fn.Name(), why, true
		}
	case "math/rand", "math/rand/v2", "crypto/rand":
		return displayName(fn), "random values differ on replay; generate them in an activity", true
	case "os", "os/exec", "net", "net/http", "io/ioutil", "syscall":
		if isPureHelper(fn) {
			return "", "", false
		}
		return displayName(fn), "i/o and process state are not replay-safe; do it in an activity", true
	}
	return "", "", false
}

// timeRule returns the message for a forbidden package-level time function,
// or "" if the function is allowed (time.Date, time.Parse, ...).
func timeRule(name string) string {
	switch name {
	case "Now":
		return "not replay-safe; use ctx.CurrentTimeUTC()"
	case "Since":
		return "not replay-safe; use ctx.CurrentTimeUTC().Sub(t)"
	case "Until":
		return "not replay-safe; use t.Sub(ctx.CurrentTimeUTC())"
	case "Sleep":
		return "not replay-safe; use ctx.CreateTimer(d).Await(nil)"
	case "After", "AfterFunc", "Tick", "NewTimer", "NewTicker":
		return "not replay-safe; use ctx.CreateTimer"
	}
	return ""
}

// isPureHelper lists the functions of the I/O packages that touch no
// process, file system or network state and so are allowed in workflows.
func isPureHelper(fn *types.Func) bool {
	if recv := fn.Signature().Recv(); recv != nil {
		switch fn.Name() {
		case "Error", "Unwrap":
			return true // formatting or unwrapping an error already in hand
		}
		switch typeName(recv.Type()) {
		case "net.IP", "net.IPMask", "net.IPNet", "net.HardwareAddr", "net/http.Header":
			return true
		}
		return false
	}
	switch fn.Pkg().Path() + "." + fn.Name() {
	case "os.IsExist", "os.IsNotExist", "os.IsPermission", "os.IsTimeout",
		"os.IsPathSeparator", "os.NewSyscallError",
		"net.ParseIP", "net.ParseCIDR", "net.ParseMAC", "net.IPv4", "net.IPv4Mask",
		"net.CIDRMask", "net.JoinHostPort", "net.SplitHostPort",
		"net/http.StatusText", "net/http.CanonicalHeaderKey":
		return true
	}
	return false
}

// typeName returns "path.Name" for a (pointer to a) named type, else "".
func typeName(t types.Type) string {
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		t = p.Elem()
	}
	n, ok := types.Unalias(t).(*types.Named)
	if !ok || n.Obj().Pkg() == nil {
		return ""
	}
	return n.Obj().Pkg().Path() + "." + n.Obj().Name()
}

// displayName renders fn the way Go code refers to it: rand.Intn,
// (*rand.Rand).Intn, net.IP.String.
func displayName(fn *types.Func) string {
	pkg := fn.Pkg().Name()
	recv := fn.Signature().Recv()
	if recv == nil {
		return pkg + "." + fn.Name()
	}
	t, ptr := types.Unalias(recv.Type()), false
	if p, ok := t.(*types.Pointer); ok {
		t, ptr = types.Unalias(p.Elem()), true
	}
	tname := "?"
	if n, ok := t.(*types.Named); ok {
		tname = n.Obj().Name()
	}
	if ptr {
		return fmt.Sprintf("(*%s.%s).%s", pkg, tname, fn.Name())
	}
	return fmt.Sprintf("%s.%s.%s", pkg, tname, fn.Name())
}

// checkMapRange applies the map-range rule (see the package doc): ranging
// over a map is reported when the body schedules workflow work or appends
// to a slice that is not sorted afterwards, because either makes the
// workflow's recorded actions depend on Go's randomised map order.
func (c *pkgChecker) checkMapRange(u unit, rs *ast.RangeStmt) {
	if !c.isMapRange(rs.X) {
		return
	}
	schedules, appends := false, false
	ast.Inspect(rs.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			// Activity and workflow literals run elsewhere; passing
			// one to ctx.CallActivity is itself caught below.
			return c.funcKind(c.info.TypeOf(n)) == plainFunc
		case *ast.CallExpr:
			if c.schedulesWork(n) {
				schedules = true
			}
			if c.isBuiltin(n.Fun, "append") && !c.sortedLater(n, rs, u.body) {
				appends = true
			}
		}
		return true
	})
	switch {
	case schedules:
		c.report(u, rs.Pos(), "range over map",
			"iteration order is random and the loop schedules work; range over slices.Sorted(maps.Keys(m))")
	case appends:
		c.report(u, rs.Pos(), "range over map",
			"iteration order is random and the loop appends; sort the slice afterwards or range over slices.Sorted(maps.Keys(m))")
	}
}

// isMapRange reports whether x is a map or a maps.Keys/Values/All iterator.
func (c *pkgChecker) isMapRange(x ast.Expr) bool {
	if t := c.info.TypeOf(x); t != nil {
		if _, ok := t.Underlying().(*types.Map); ok {
			return true
		}
	}
	call, ok := ast.Unparen(x).(*ast.CallExpr)
	if !ok {
		return false
	}
	fn, ok := typeutil.Callee(c.info, call).(*types.Func)
	if !ok || fn.Pkg() == nil || fn.Pkg().Path() != "maps" {
		return false
	}
	switch fn.Name() {
	case "Keys", "Values", "All":
		return true
	}
	return false
}

// schedulesWork reports whether call adds to the workflow history: a
// scheduling method on the workflow context, or any call that is handed
// the workflow context and so may schedule work itself.
func (c *pkgChecker) schedulesWork(call *ast.CallExpr) bool {
	if c.isCtxMethod(call, "CallActivity", "CallChildWorkflow", "CreateTimer", "WaitForExternalEvent", "ContinueAsNew") {
		return true
	}
	for _, arg := range call.Args {
		if t := c.info.TypeOf(arg); t != nil && isSDKType(t, "WorkflowContext") {
			return true
		}
	}
	return false
}

// isBuiltin reports whether fun denotes the named predeclared function.
func (c *pkgChecker) isBuiltin(fun ast.Expr, name string) bool {
	id, ok := ast.Unparen(fun).(*ast.Ident)
	if !ok {
		return false
	}
	b, ok := c.info.Uses[id].(*types.Builtin)
	return ok && b.Name() == name
}

// sortedLater reports whether the slice variable that appendCall appends
// to is passed to a sorting function after the range statement, anywhere
// in the enclosing function body.
func (c *pkgChecker) sortedLater(appendCall *ast.CallExpr, rs *ast.RangeStmt, body *ast.BlockStmt) bool {
	if len(appendCall.Args) == 0 {
		return false
	}
	target := c.varOf(appendCall.Args[0])
	if target == nil {
		return false
	}
	found := false
	ast.Inspect(body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if found || !ok || call.Pos() < rs.End() || len(call.Args) == 0 || !c.isSortFunc(call) {
			return !found
		}
		if c.varOf(call.Args[0]) == target {
			found = true
		}
		return !found
	})
	return found
}

// varOf returns the variable an expression names, looking through
// parentheses and conversions such as sort.StringSlice(keys).
func (c *pkgChecker) varOf(e ast.Expr) *types.Var {
	for {
		e = ast.Unparen(e)
		call, ok := e.(*ast.CallExpr)
		if !ok || len(call.Args) != 1 {
			break
		}
		if tv, ok := c.info.Types[call.Fun]; !ok || !tv.IsType() {
			break
		}
		e = call.Args[0]
	}
	id, ok := e.(*ast.Ident)
	if !ok {
		return nil
	}
	v, _ := c.info.Uses[id].(*types.Var)
	return v
}

// isSortFunc reports whether call sorts its first argument in place.
func (c *pkgChecker) isSortFunc(call *ast.CallExpr) bool {
	fn, ok := typeutil.Callee(c.info, call).(*types.Func)
	if !ok || fn.Pkg() == nil || fn.Signature().Recv() != nil {
		return false
	}
	switch fn.Pkg().Path() + "." + fn.Name() {
	case "sort.Strings", "sort.Ints", "sort.Float64s", "sort.Slice", "sort.SliceStable",
		"sort.Sort", "sort.Stable", "slices.Sort", "slices.SortFunc", "slices.SortStableFunc":
		return true
	}
	return false
}
