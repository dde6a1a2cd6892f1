// Package route compiles the routes of bridge.yaml into CEL programs and
// decides, for each event, which actions to take on the engine. Every
// expression is compiled and type-checked when the config loads, so a typo
// is a startup error with its file:line, not a dead-lettered event.
//
// CEL variables: `event` (id, type, source, subject, time, specversion,
// datacontenttype, data, and any extension attributes) and `headers` (the
// message metadata, a map of strings).
package route

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"

	"github.com/sagabridge/sagabridge/bridge/access"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/envelope"
	"github.com/sagabridge/sagabridge/internal/celjson"
)

// ErrEval marks an event a route could not evaluate (a missing field, a
// wrong type, an empty instance ID): it is dead-lettered, never retried.
var ErrEval = errors.New("route evaluation failed")

// Error is a failure of one route on one event; it names the route so the
// dead letter can be filtered and replayed by route.
type Error struct {
	Route string
	Err   error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Workflows are what routes may start: each registered workflow name, with
// the versions a route may pin for a declarative saga (nil for a Go
// workflow, which has none).
type Workflows map[string][]int

// Route is a compiled route.
type Route struct {
	Name     string
	Action   string
	Topics   []string
	Workflow string
	// Version pins a declarative saga's version; 0 starts the latest.
	Version    int
	Reason     string
	ParkWindow time.Duration
	OnFinished string
	Plain      *config.Plain
	// Limit caps concurrent actions of this route; nil means no cap.
	Limit chan struct{}

	match      cel.Program
	instanceID cel.Program
	idExpr     string // the instanceId expression, quoted in errors
	input      *value // start input / startOrRaise input
	eventName  *value
	payload    *value
}

// value is a CEL expression, a literal, or the raw event data.
type value struct {
	prg     cel.Program
	literal string
	rawData bool
}

// Decision is one action to take.
type Decision struct {
	Route      *Route
	InstanceID string
	EventName  string
	// Input is the JSON input of a start; Payload the JSON of a raise.
	Input   []byte
	Payload []byte
}

// Router holds the compiled routes.
type Router struct {
	byTopic   map[string][]*Route
	routes    []*Route
	firstOnly bool
	maxIDLen  int
	access    *access.Policy
	// maxCost and timeout bound the CEL work of routing one event.
	maxCost uint64
	timeout time.Duration
}

// interruptEvery is how many comprehension steps pass between checks of
// the routing deadline: often enough that a deadline is noticed within a
// millisecond or so, rarely enough to cost nothing measurable.
const interruptEvery = 100

// validIDChars reports whether id is made of [A-Za-z0-9_.:@-] and starts
// with a letter or digit. A loop, not a regexp: it runs for every event,
// and the regexp cost more than the rest of the instance ID's checks.
func validIDChars(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == ':' || c == '@' || c == '-'):
		default:
			return false
		}
	}
	return id != ""
}

// New compiles every route of cfg. A route that starts a workflow not in
// workflows (nil: no check), or a version of it not loaded, is an error.
// Every problem is reported, each with its file:line.
func New(cfg *config.Config, workflows Workflows) (*Router, error) {
	env, err := cel.NewEnv(
		// Optional syntax (headers[?"X-Tenant"].orValue("")) reads fields
		// that may be absent; a plain missing field is an evaluation error.
		cel.OptionalTypes(),
		cel.Variable("event", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("headers", cel.MapType(cel.StringType, cel.StringType)),
	)
	if err != nil {
		return nil, fmt.Errorf("route: cel environment: %w", err)
	}
	r := &Router{
		byTopic:   map[string][]*Route{},
		firstOnly: cfg.Routing.Mode == "first",
		maxIDLen:  cfg.Limits.MaxInstanceIDLen,
		maxCost:   cfg.Limits.MaxEvalCost,
		timeout:   cfg.Limits.EvalTimeout,
	}
	var errs []error
	for i, rc := range cfg.Routes {
		c := compiler{env: env, cfg: cfg, idx: i, maxCost: cfg.Limits.MaxEvalCost}
		rt := c.route(rc, workflows)
		if err := c.err(); err != nil {
			errs = append(errs, err)
			continue
		}
		r.routes = append(r.routes, rt)
		for _, t := range rt.Topics {
			r.byTopic[t] = append(r.byTopic[t], rt)
		}
	}
	var names map[string]bool
	if workflows != nil {
		names = make(map[string]bool, len(workflows))
		for name := range workflows {
			names[name] = true
		}
	}
	pol, err := access.New(cfg, names)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r.access = pol
	return r, nil
}

// route compiles the route rc, the c.idx-th of the config; what is wrong
// with it is in c.err().
func (c *compiler) route(rc config.Route, workflows Workflows) *Route {
	rt := &Route{
		Name: rc.Name, Action: rc.Action(), Topics: rc.Topics,
		ParkWindow: rc.ParkWindow, OnFinished: rc.OnFinished, Plain: rc.Plain,
	}
	if rc.Concurrency > 0 {
		rt.Limit = make(chan struct{}, rc.Concurrency)
	}
	rt.match = c.program(rc.Match, "match", kindBool)
	switch rt.Action {
	case config.ActionStart:
		rt.Workflow, rt.Version = rc.Start.Workflow, rc.Start.Version
		c.workflow(rt.Workflow, rt.Version, workflows, "start")
		rt.instanceID = c.program(rc.Start.InstanceID, "start.instanceId", kindString)
		rt.idExpr = rc.Start.InstanceID
		rt.input = c.value(rc.Start.Input, "start.input", false)
	case config.ActionRaise:
		rt.instanceID = c.program(rc.Raise.InstanceID, "raise.instanceId", kindString)
		rt.idExpr = rc.Raise.InstanceID
		rt.eventName = c.value(rc.Raise.EventName, "raise.eventName", true)
		rt.payload = c.value(rc.Raise.Payload, "raise.payload", false)
	case config.ActionStartOrRaise:
		s := rc.StartOrRaise
		rt.Workflow, rt.Version = s.Workflow, s.Version
		c.workflow(rt.Workflow, rt.Version, workflows, "startOrRaise")
		rt.instanceID = c.program(s.InstanceID, "startOrRaise.instanceId", kindString)
		rt.idExpr = s.InstanceID
		rt.input = c.value(s.Input, "startOrRaise.input", false)
		rt.eventName = c.value(s.EventName, "startOrRaise.eventName", true)
		rt.payload = c.value(s.Payload, "startOrRaise.payload", false)
	case config.ActionTerminate, config.ActionSuspend, config.ActionResume, config.ActionPurge:
		ctl := map[string]*config.Control{
			config.ActionTerminate: rc.Terminate, config.ActionSuspend: rc.Suspend,
			config.ActionResume: rc.Resume, config.ActionPurge: rc.Purge,
		}[rt.Action]
		rt.instanceID = c.program(ctl.InstanceID, rt.Action+".instanceId", kindString)
		rt.idExpr = ctl.InstanceID
		rt.Reason = ctl.Reason
	}
	if rt.instanceID == nil && rt.Action != "" && c.err() == nil {
		c.fail([]any{"routes", c.idx}, "route %q: instanceId is required", rc.Name)
	}
	return rt
}

// Access is the access policy of the config (nil when it has none, which
// allows everything).
func (r *Router) Access() *access.Policy { return r.access }

// Topics lists every topic some route consumes.
func (r *Router) Topics() []string {
	out := make([]string, 0, len(r.byTopic))
	for t := range r.byTopic {
		out = append(out, t)
	}
	return out
}

// Routes lists the compiled routes in file order.
func (r *Router) Routes() []*Route { return r.routes }

type outKind int

const (
	kindBool outKind = iota
	kindString
	kindAny
)

type compiler struct {
	env     *cel.Env
	cfg     *config.Config
	idx     int
	maxCost uint64
	errs    []error
}

func (c *compiler) fail(path []any, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s: %s", c.cfg.Pos(path...), fmt.Sprintf(format, args...)))
}

func (c *compiler) err() error { return errors.Join(c.errs...) }

func (c *compiler) path(field string) []any {
	p := []any{"routes", c.idx}
	for _, part := range splitDots(field) {
		p = append(p, part)
	}
	return p
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func (c *compiler) workflow(name string, version int, known Workflows, field string) {
	if name == "" || known == nil {
		return
	}
	route := c.cfg.Routes[c.idx].Name
	versions, ok := known[name]
	switch {
	case !ok:
		c.fail(c.path(field+".workflow"), "route %q: workflow %q is not registered", route, name)
	case version != 0 && versions == nil:
		c.fail(c.path(field+".version"), "route %q: workflow %q is a Go workflow; only declarative sagas have versions", route, name)
	case version != 0 && !slices.Contains(versions, version):
		c.fail(c.path(field+".version"), "route %q: saga %q has no version %d (loaded: %v)", route, name, version, versions)
	}
}

func (c *compiler) compile(expr, field string, want outKind) (cel.Program, error) {
	ast, iss := c.env.Compile(expr)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	out := ast.OutputType()
	if _, isAttr := eventAttribute(ast); isAttr && out.Kind() == types.DynKind {
		// event is a map of dyn, so the checker cannot type event.type;
		// the attributes are strings, which a match must not be.
		out = types.StringType
	}
	ok := out.Kind() == types.DynKind || want == kindAny ||
		(want == kindBool && out.Kind() == types.BoolKind) ||
		(want == kindString && out.Kind() == types.StringKind)
	if !ok {
		return nil, fmt.Errorf("%s must be a %s, expression is %s", field, [...]string{"bool", "string", "value"}[want], out)
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize), cel.InterruptCheckFrequency(interruptEvery)}
	if c.maxCost > 0 {
		opts = append(opts, cel.CostTracking(dynCost{}), cel.CostLimit(c.maxCost))
	}
	prg, err := c.env.Program(ast, opts...)
	if err != nil {
		return nil, err
	}
	return prg, nil
}

// stringAttributes are the event attributes that always hold a string.
var stringAttributes = []string{"specversion", "id", "source", "type", "subject", "datacontenttype", "dataschema", "time"}

// eventAttribute reports whether the whole expression is one of the
// event's string attributes (event.type, event["id"]).
func eventAttribute(a *cel.Ast) (string, bool) {
	e := a.NativeRep().Expr()
	var operand celast.Expr
	var field string
	switch e.Kind() {
	case celast.SelectKind:
		sel := e.AsSelect()
		if sel.IsTestOnly() {
			return "", false
		}
		operand, field = sel.Operand(), sel.FieldName()
	case celast.CallKind:
		call := e.AsCall()
		if call.FunctionName() != "_[_]" || len(call.Args()) != 2 || call.Args()[1].Kind() != celast.LiteralKind {
			return "", false
		}
		k, ok := call.Args()[1].AsLiteral().Value().(string)
		if !ok {
			return "", false
		}
		operand, field = call.Args()[0], k
	default:
		return "", false
	}
	if operand.Kind() != celast.IdentKind || operand.AsIdent() != "event" || !slices.Contains(stringAttributes, field) {
		return "", false
	}
	return field, true
}

func (c *compiler) program(expr, field string, want outKind) cel.Program {
	if expr == "" {
		return nil // an empty match matches everything; New reports a missing instanceId
	}
	prg, err := c.compile(expr, field, want)
	if err != nil {
		c.fail(c.path(field), "route %q: %s: %v", c.cfg.Routes[c.idx].Name, field, err)
		return nil
	}
	return prg
}

var literalWord = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

// value compiles a value expression. Empty means the raw event data; with
// allowLiteral, a word that is not valid CEL is taken literally.
func (c *compiler) value(expr, field string, allowLiteral bool) *value {
	if expr == "" {
		return &value{rawData: true}
	}
	want := kindAny
	if allowLiteral {
		want = kindString
	}
	prg, err := c.compile(expr, field, want)
	if err != nil {
		if allowLiteral && literalWord.MatchString(expr) {
			return &value{literal: expr}
		}
		c.fail(c.path(field), "route %q: %s: %v", c.cfg.Routes[c.idx].Name, field, err)
		return nil
	}
	if expr == "event.data" {
		return &value{rawData: true}
	}
	if allowLiteral && len(expr) > 1 && expr[0] == '"' {
		if lit, err := strconv.Unquote(expr); err == nil {
			return &value{literal: lit}
		}
	}
	return &value{prg: prg}
}

// LiteralEventName is the event name a raise or startOrRaise route
// raises when it is the same for every event (a plain word or a quoted
// string); ok is false when the name is computed.
func (r *Route) LiteralEventName() (name string, ok bool) {
	if r.eventName == nil || r.eventName.prg != nil || r.eventName.rawData {
		return "", false
	}
	return r.eventName.literal, true
}

// Route evaluates the routes of a topic against an event. It returns no
// decisions when nothing matches. An error (wrapping ErrEval or
// envelope.ErrDecode) means the event must be dead-lettered; the route it
// names is in the message.
func (r *Router) Route(topic string, ev envelope.Event, headers map[string]string) ([]Decision, error) {
	routes := r.byTopic[topic]
	if len(routes) == 0 {
		return nil, nil
	}
	if ev.Mode == envelope.ModePlain && !slices.ContainsFunc(routes, func(rt *Route) bool { return rt.Plain != nil }) {
		// Without this, JSON that lacks specversion (a broken CloudEvent
		// as much as a legacy payload) would match nothing and be acked.
		return nil, fmt.Errorf("%w: not a CloudEvent (no specversion, no ce- headers) and no route on topic %s reads plain JSON", envelope.ErrDecode, topic)
	}
	fields, err := ev.Fields()
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	var out []Decision
	// One activation serves every CloudEvent route; plain routes read type
	// and id from their own fields, so they get their own.
	var shared interpreter.Activation
	for _, rt := range routes {
		rev, act := ev, shared
		if ev.Mode == envelope.ModePlain {
			if rt.Plain == nil {
				continue // this route reads CloudEvents only
			}
			if rev, err = ev.WithPlain(rt.Plain.TypeField, rt.Plain.IDField, rt.Plain.Type, fields); err != nil {
				return nil, &Error{Route: rt.Name, Err: fmt.Errorf("route %s: %w", rt.Name, err)}
			}
			act = nil
		}
		if act == nil {
			if act, err = interpreter.NewActivation(activation(rev, fields, headers)); err != nil {
				return nil, &Error{Route: rt.Name, Err: fmt.Errorf("%w: route %s: %v", ErrEval, rt.Name, r.explain(err))}
			}
			if ev.Mode != envelope.ModePlain {
				shared = act
			}
		}
		if rt.match != nil {
			matched, err := evalBool(ctx, rt.match, act)
			if err != nil {
				return nil, &Error{Route: rt.Name, Err: fmt.Errorf("%w: route %s: match: %v", ErrEval, rt.Name, r.explain(err))}
			}
			if !matched {
				continue
			}
		}
		d, err := r.decide(ctx, rt, rev, act)
		if err != nil {
			return nil, &Error{Route: rt.Name, Err: fmt.Errorf("%w: route %s: %v", ErrEval, rt.Name, err)}
		}
		out = append(out, d)
		if r.firstOnly {
			break
		}
	}
	return out, nil
}

func (r *Router) decide(ctx context.Context, rt *Route, ev envelope.Event, act interpreter.Activation) (Decision, error) {
	d := Decision{Route: rt}
	id, err := evalString(ctx, rt.instanceID, act)
	if err != nil {
		return d, fmt.Errorf("instanceId %s: %w", rt.idExpr, r.explain(err))
	}
	switch {
	case id == "":
		return d, errors.New("instanceId evaluated to an empty string")
	case len(id) > r.maxIDLen:
		return d, fmt.Errorf("instanceId is %d bytes, limit %d", len(id), r.maxIDLen)
	case !validIDChars(id):
		return d, fmt.Errorf("instanceId %q has characters outside [A-Za-z0-9_.:@-]", truncate(id, 80))
	case strings.Contains(id, "::"):
		// daprd (1.14 to 1.16) names an activity's actor
		// "<instance>::<task>::<generation>" and takes the instance back as
		// everything before the first "::": results for "X::y" would go to X.
		return d, fmt.Errorf(`instanceId %q contains "::", the separator Dapr puts between a workflow instance and its activities`, truncate(id, 80))
	case strings.HasSuffix(id, ":"):
		// "X:" + "::0::1" reads back as X for the same reason.
		return d, fmt.Errorf(`instanceId %q ends in ':', which runs into the "::" Dapr appends for its activities`, truncate(id, 80))
	}
	d.InstanceID = id
	if rt.input != nil {
		if d.Input, err = rt.input.json(ctx, ev, act); err != nil {
			return d, fmt.Errorf("input: %w", r.explain(err))
		}
	}
	if rt.eventName != nil {
		if d.EventName, err = rt.eventName.str(ctx, act); err != nil {
			return d, fmt.Errorf("eventName: %w", r.explain(err))
		}
		if d.EventName == "" {
			return d, errors.New("eventName evaluated to an empty string")
		}
	}
	if rt.payload != nil {
		if d.Payload, err = rt.payload.json(ctx, ev, act); err != nil {
			return d, fmt.Errorf("payload: %w", r.explain(err))
		}
	}
	return d, nil
}

// dynCost prices the calls CEL can only resolve at run time, which is
// every call on event data (its type is dyn). cel-go charges such a call a
// flat 1, so `x in event.data.blocked` over a list of 15,000 would cost 1;
// here it costs its operands' sizes, as the statically typed overloads do
// (cel-go's own estimate stands for those).
type dynCost struct{}

func (dynCost) CallCost(function, overloadID string, args []ref.Val, _ ref.Val) *uint64 {
	if overloadID != "" && overloadID != function {
		return nil
	}
	cost := uint64(1)
	for _, a := range args {
		if s, ok := a.(traits.Sizer); ok {
			if n, ok := s.Size().(types.Int); ok && n > 0 {
				cost += uint64(n)
			}
		}
	}
	return &cost
}

// explain words CEL's terse run-time errors for the person reading a
// dead letter.
func (r *Router) explain(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no such overload"):
		return fmt.Errorf("%w (an operand has a type the expression does not accept, e.g. a number where a string is added)", err)
	case strings.Contains(msg, "cost limit exceeded"):
		return fmt.Errorf("%w: evaluation cost over limits.maxEvalCost %d (the expression does too much work on this event, e.g. a list searched for every element of another)", err, r.maxCost)
	case strings.Contains(msg, "operation interrupted"):
		return fmt.Errorf("%w: routing took longer than limits.evalTimeout %s", err, r.timeout)
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func activation(ev envelope.Event, fields any, headers map[string]string) map[string]any {
	e := map[string]any{
		"specversion":     ev.SpecVersion,
		"id":              ev.ID,
		"source":          ev.Source,
		"type":            ev.Type,
		"subject":         ev.Subject,
		"datacontenttype": ev.DataContentType,
		"data":            fields,
	}
	if !ev.Time.IsZero() {
		e["time"] = ev.Time.Format(time.RFC3339Nano)
	}
	for k, v := range ev.Extensions {
		if _, taken := e[k]; !taken {
			e[k] = v
		}
	}
	if headers == nil {
		headers = map[string]string{}
	}
	return map[string]any{"event": e, "headers": headers}
}

func evalBool(ctx context.Context, p cel.Program, act any) (bool, error) {
	v, _, err := p.ContextEval(ctx, act)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("got %s, want bool", v.Type())
	}
	return bool(b), nil
}

func evalString(ctx context.Context, p cel.Program, act any) (string, error) {
	v, _, err := p.ContextEval(ctx, act)
	if err != nil {
		return "", err
	}
	s, ok := v.(types.String)
	if !ok {
		return "", fmt.Errorf("got %s, want string", v.Type())
	}
	return string(s), nil
}

func (v *value) str(ctx context.Context, act any) (string, error) {
	if v.prg == nil {
		return v.literal, nil
	}
	return evalString(ctx, v.prg, act)
}

func (v *value) json(ctx context.Context, ev envelope.Event, act any) ([]byte, error) {
	if v.rawData {
		if len(ev.Data) == 0 {
			return []byte("null"), nil
		}
		return ev.Data, nil
	}
	out, _, err := v.prg.ContextEval(ctx, act)
	if err != nil {
		return nil, err
	}
	return celjson.Marshal(out)
}
