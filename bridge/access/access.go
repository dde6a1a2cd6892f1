// Package access decides whether a route may perform an operation on a
// workflow, from the config's `access` block (a route-level allow-list in
// the spirit of Dapr's WorkflowAccessPolicy).
//
// Without the block every route may act on every workflow: the routes
// themselves are then the only list, which is how configs written before
// the block keep working. With it, the policy is deny by default: an
// operation on a listed workflow is allowed only to the routes and topics
// its grant names, and workflows the block does not list get
// access.default, itself "deny" unless set to "allow".
//
// A start names its workflow, so a start route that is not allowed fails
// at load. A raise, terminate, suspend, resume or purge names an instance;
// the handler looks up the instance's workflow at run time and asks
// Allowed, and at load a route is refused only when no workflow at all
// would let it act.
package access

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/sagabridge/sagabridge/bridge/config"
)

// Policy is a compiled access block; the nil Policy allows everything.
type Policy struct {
	allowUnlisted bool
	workflows     map[string]config.WorkflowAccess
}

// New compiles cfg.Access and checks every route against it: a start (or
// startOrRaise) of a workflow the policy does not let the route start, and
// a raise or control route that no workflow lets act, are errors with
// their file:line. workflows is the set of registered workflow names; the
// block may not name others. It returns nil, and no error, when the
// config has no access block.
func New(cfg *config.Config, workflows map[string]bool) (*Policy, error) {
	a := cfg.Access
	if a == nil {
		return nil, nil
	}
	p := &Policy{allowUnlisted: a.Default == "allow", workflows: a.Workflows}
	var errs []error
	bad := func(path []any, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", cfg.Pos(path...), fmt.Sprintf(format, args...)))
	}
	names := make([]string, 0, len(a.Workflows))
	for wf := range a.Workflows {
		names = append(names, wf)
	}
	sort.Strings(names)
	for _, wf := range names {
		if workflows != nil && !workflows[wf] {
			bad([]any{"access", "workflows", wf}, "access: workflow %q is not registered", wf)
		}
	}
	for i, r := range cfg.Routes {
		action := r.Action()
		for _, t := range r.Topics {
			switch action {
			case config.ActionStart:
				if !p.Allowed(r.Start.Workflow, config.ActionStart, r.Name, t) {
					bad([]any{"routes", i, "start", "workflow"}, "route %q: access: %s", r.Name, p.Denial(r.Start.Workflow, config.ActionStart, r.Name, t))
				}
			case config.ActionStartOrRaise:
				for _, op := range []string{config.ActionStart, config.ActionRaise} {
					if !p.Allowed(r.StartOrRaise.Workflow, op, r.Name, t) {
						bad([]any{"routes", i, "startOrRaise", "workflow"}, "route %q: access: %s", r.Name, p.Denial(r.StartOrRaise.Workflow, op, r.Name, t))
					}
				}
			case config.ActionRaise, config.ActionTerminate, config.ActionSuspend, config.ActionResume, config.ActionPurge:
				if !p.anyAllows(action, r.Name, t) {
					bad([]any{"routes", i, action}, "route %q: access: no workflow allows %s from route %q on topic %q", r.Name, action, r.Name, t)
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// Enabled reports whether there is a policy to enforce.
func (p *Policy) Enabled() bool { return p != nil }

// Allowed reports whether route, consuming topic, may perform op (a
// config.Action* other than startOrRaise) on an instance of workflow.
func (p *Policy) Allowed(workflow, op, route, topic string) bool {
	if p == nil {
		return true
	}
	wa, listed := p.workflows[workflow]
	if !listed {
		return p.allowUnlisted
	}
	g := wa.Grant(op)
	if g == nil {
		return false
	}
	return (len(g.Routes) == 0 || slices.Contains(g.Routes, route)) &&
		(len(g.Topics) == 0 || slices.Contains(g.Topics, topic))
}

func (p *Policy) anyAllows(op, route, topic string) bool {
	if p.allowUnlisted {
		return true
	}
	for wf := range p.workflows {
		if p.Allowed(wf, op, route, topic) {
			return true
		}
	}
	return false
}

// Denial says why Allowed refused, for the dead letter and the log.
func (p *Policy) Denial(workflow, op, route, topic string) string {
	why := fmt.Sprintf("access.workflows.%s.%s does not grant it", workflow, op)
	if _, listed := p.workflows[workflow]; !listed {
		why = fmt.Sprintf("access.workflows does not list %s and access.default is deny", workflow)
	}
	return fmt.Sprintf("route %q on topic %q may not %s workflow %s: %s", route, topic, op, workflow, why)
}
