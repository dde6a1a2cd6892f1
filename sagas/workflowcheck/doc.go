// Package workflowcheck is a go/analysis analyzer that reports
// non-deterministic code inside Dapr workflow functions.
//
// Dapr workflows (github.com/dapr/durabletask-go/workflow) are orchestrators that
// the runtime replays from their recorded history every time they resume.
// A replay must take exactly the same decisions as the original run, so an
// orchestrator may not read the wall clock, draw random numbers, perform
// I/O, start goroutines or depend on map iteration order. Breaking this
// rule does not fail loudly: the replay diverges from the history and the
// workflow gets stuck or misbehaves much later. Temporal ships a checker
// for this (workflowcheck); Dapr does not, hence this package.
//
// # Which code is checked
//
// A workflow function is any function declaration or function literal
// with a parameter of type *workflow.WorkflowContext. Its body is checked,
// including the bodies of closures it contains. Functions and methods
// declared in the same package that workflow code calls statically are
// checked too, transitively, up to eight static calls away from a
// workflow. Every function body is checked once, attributed to the first
// workflow (in source order, nearest first) that reaches it.
//
// Not checked:
//   - activities: functions and literals with a workflow.ActivityContext
//     parameter. Activities run once and their results are recorded, so
//     they may do anything; static calls to them are not followed either.
//   - function literals passed directly as arguments to ctx.CallActivity,
//     whatever their signature, because the runtime executes them as
//     activities. (Named functions passed to CallActivity are values, not
//     calls, so they are never followed.)
//   - functions in other packages, interface method calls and calls
//     through function values: there is no static callee to follow.
//
// # Rules
//
// Inside workflow code the analyzer reports:
//
//   - time.Now, time.Since, time.Until: use ctx.CurrentTimeUTC().
//   - time.Sleep, time.After, time.AfterFunc, time.Tick, time.NewTimer,
//     time.NewTicker: use ctx.CreateTimer. Methods of time.Time and
//     time.Duration are pure and allowed.
//   - any function or method of math/rand, math/rand/v2 or crypto/rand.
//   - any function or method of os, os/exec, net, net/http, io/ioutil and
//     syscall, except these pure helpers that touch no process state:
//     methods named Error or Unwrap (formatting an error already in hand);
//     os.IsExist, os.IsNotExist, os.IsPermission, os.IsTimeout,
//     os.IsPathSeparator, os.NewSyscallError; net.ParseIP, net.ParseCIDR,
//     net.ParseMAC, net.IPv4, net.IPv4Mask, net.CIDRMask, net.JoinHostPort,
//     net.SplitHostPort and the methods of net.IP, net.IPMask, net.IPNet and
//     net.HardwareAddr; http.StatusText, http.CanonicalHeaderKey and the
//     methods of http.Header. In particular os.Getenv and friends are
//     reported: the environment may differ between the run and a replay.
//   - go statements, select statements, channel sends, channel receives
//     and range over a channel: goroutine scheduling is not replayed.
//   - range over a map (or over maps.Keys, maps.Values, maps.All) whose
//     body, including nested closures, either
//     (a) schedules work: calls CallActivity, CallChildWorkflow,
//     CreateTimer, WaitForExternalEvent or ContinueAsNew on a
//     *workflow.WorkflowContext, or passes a *workflow.WorkflowContext to
//     any function (which may schedule work); or
//     (b) calls append, unless the first argument of append is a local
//     variable that is later passed to sort.Strings, sort.Ints,
//     sort.Float64s, sort.Slice, sort.SliceStable, sort.Sort, sort.Stable,
//     slices.Sort, slices.SortFunc or slices.SortStableFunc in the same
//     function — the usual "collect the keys, then sort them" idiom.
//     A map range that only reads (lookups, sums, counters, filters into
//     another map) is not reported.
//
// Uses of a forbidden function as a value (f := time.Now) are reported
// like calls.
//
// # Opting out
//
// A comment //workflowcheck:ignore (optionally followed by a space and a
// reason) suppresses diagnostics reported on its own line or on the line
// below it. Placed on or directly above the line where a function
// declaration or function literal starts (for a declaration, anywhere in
// its doc comment), it excludes that whole function, and everything only
// reachable through it, from checking.
//
// # Out of scope
//
// Reading or writing mutable package-level variables, order-dependent
// accumulation in a map range other than append (s += k, last = k),
// logging and fmt printing, and code reached only through other packages
// are not checked. The map-range rule sees scheduling only through a
// *workflow.WorkflowContext expression in the loop (ctx.CallActivity,
// r.ctx.CreateTimer, helper(ctx)); a method call on a value that merely
// holds the context (r.step()) does not count. The check is syntactic and type-based; it does not
// track values, so it neither knows that a *rand.Rand was seeded
// deterministically nor that a map has a single key.
//
// # Running it
//
// Main implements "sagabridge vet [packages]". The command
// sagas/workflowcheck/cmd/sagabridge-vet wraps the analyzer with
// singlechecker, so it also works as "go vet -vettool=$(which sagabridge-vet)".
package workflowcheck
