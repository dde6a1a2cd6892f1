package bridge

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/route"
	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/declarative"
	"github.com/sagabridge/sagabridge/sagas/registry"
)

// ErrConfig marks what New and CheckConfig refuse about the config itself (as
// opposed to a broker or engine that cannot be reached): `run` exits 2 on
// it, as `validate` does.
var ErrConfig = errors.New("config refused")

// configError wraps the config's problems so that errors.Is(err,
// ErrConfig) holds while the message stays the problems alone, and the
// problems stay a list (errors.Join's) for those who print one a line.
type configError struct{ err error }

func (e configError) Error() string        { return e.err.Error() }
func (e configError) Is(target error) bool { return target == ErrConfig }
func (e configError) Unwrap() []error {
	if j, ok := e.err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{e.err}
}

func configErr(err error) error {
	if err == nil {
		return nil
	}
	return configError{err}
}

// catalogue is every workflow a worker runs: the Go ones its main
// registered and the declarative sagas, one name space.
type catalogue struct {
	workflows map[string]workflow.Workflow
	reg       *registry.Registry
	defs      *declarative.Definitions
	// known is what routes may start, also when a saga file has
	// problems: the names and versions the files declare.
	known route.Workflows
	// events are the event names the sagas wait for; nil when some Go
	// workflow's are unknown (one registered as a function, not a Saga).
	events []string
}

// newCatalogue joins the registered Go workflows with the declarative
// sagas of cfg, refusing a saga file that names a Go workflow. It reports
// every problem of every saga file and still returns what the files
// declare (known), so that the routes are checked too.
func newCatalogue(cfg *config.Config, reg *registry.Registry) (catalogue, error) {
	parsed, parseErr := loadSagaFiles(cfg)
	comps, compErr := reg.Compensations()
	defs, defErr := declarative.NewDefinitions(comps, parsed...)
	all := reg.Workflows()
	known := route.Workflows{}
	for name := range all {
		known[name] = nil
	}
	var errs []error
	for _, d := range parsed {
		if d.Name == "" {
			continue
		}
		if _, dup := all[d.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: %s is declared in a saga file and is also a Go workflow the worker's main registered (bridge.Options.Sagas); give one of them another name", d.Source, d.Name))
			continue
		}
		if !slices.Contains(known[d.Name], d.Version) {
			known[d.Name] = append(known[d.Name], d.Version)
			slices.Sort(known[d.Name])
		}
	}
	c := catalogue{workflows: all, reg: reg, defs: defs, known: known}
	if err := errors.Join(append([]error{parseErr, compErr, defErr}, errs...)...); err != nil {
		return c, err
	}
	goSagas := reg.Sagas()
	allKnown := true
	for name := range all {
		_, ok := goSagas[name]
		allKnown = allKnown && ok
	}
	for name, w := range defs.Workflows() {
		all[name] = w
	}
	if allKnown {
		c.events = defs.Events()
		for _, s := range goSagas {
			c.events = append(c.events, s.Events()...)
		}
		slices.Sort(c.events)
		c.events = slices.Compact(c.events)
	}
	return c, nil
}

// loadSagaFiles parses the config's saga files; a pattern that matches
// no file is reported at its line of the config.
func loadSagaFiles(cfg *config.Config) ([]declarative.Definition, error) {
	if len(cfg.Sagas) == 0 {
		return nil, nil
	}
	dir := filepath.Dir(cfg.File())
	var errs []error
	var patterns []string
	for i, p := range cfg.Sagas {
		m, err := fs.Glob(os.DirFS(dir), p)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: saga files %q: %w", cfg.Pos("sagas", i), p, err))
		case len(m) == 0:
			errs = append(errs, fmt.Errorf("%s: saga files %q: no file matches (in %s)", cfg.Pos("sagas", i), p, dir))
		default:
			patterns = append(patterns, p)
		}
	}
	var defs []declarative.Definition
	if len(patterns) > 0 {
		var err error
		defs, err = declarative.LoadDefinitionsIn(dir, patterns...)
		errs = append(errs, err)
	}
	return defs, errors.Join(errs...)
}

// routeWorkflows is what routes may start: every name, with the loaded
// versions of declarative sagas.
func (c catalogue) routeWorkflows() route.Workflows { return c.known }

// Validate checks what New would refuse about cfg without connecting
// anything: the saga files, the routes (workflows and versions they start,
// CEL, access) and the workflows the engine cannot run (patches on
// daprd). opts.Workflows and opts.Patches are those of New.
func Validate(cfg *config.Config, opts Options) error {
	_, err := CheckConfig(cfg, opts)
	return err
}

// CheckConfig is Validate that also returns warnings: what loads and runs but
// is likely a mistake (a raise of an event no saga waits for, a step
// timeout not longer than the broker's ackWait), each with file:line.
func CheckConfig(cfg *config.Config, opts Options) (warnings []string, err error) {
	cat, router, err := prepare(cfg, opts)
	if err != nil {
		return nil, err
	}
	return cat.warnings(cfg, router), nil
}

// warnings lists what CheckConfig warns about.
func (c catalogue) warnings(cfg *config.Config, router *route.Router) []string {
	var out []string
	if c.events != nil {
		for i, rc := range cfg.Routes {
			rt := findRoute(router, rc.Name)
			if rt == nil {
				continue
			}
			name, ok := rt.LiteralEventName()
			if !ok || sagas.WaitsFor(c.events, name) {
				continue
			}
			field := "raise"
			if rt.Action == config.ActionStartOrRaise {
				field = "startOrRaise"
			}
			out = append(out, fmt.Sprintf("%s: warning: route %q raises event %q, which no loaded saga waits for (they wait for %s); the engine keeps it unread on the instance",
				cfg.Pos("routes", i, field, "eventName"), rc.Name, name, strings.Join(c.events, ", ")))
		}
	}
	for _, w := range c.defs.ShortTimeouts(cfg.Broker.AckWait) {
		out = append(out, addWarning(w))
	}
	goSagas := c.reg.Sagas()
	for _, name := range slices.Sorted(maps.Keys(goSagas)) {
		for _, w := range goSagas[name].ShortTimeouts(cfg.Broker.AckWait, nil) {
			out = append(out, "warning: "+w)
		}
	}
	return out
}

// addWarning puts "warning: " after a message's file:line.
func addWarning(msg string) string {
	if at, rest, ok := strings.Cut(msg, ": "); ok {
		return at + ": warning: " + rest
	}
	return "warning: " + msg
}

func findRoute(r *route.Router, name string) *route.Route {
	for _, rt := range r.Routes() {
		if rt.Name == name {
			return rt
		}
	}
	return nil
}

// prepare builds what New needs from the config alone: every workflow,
// the engine registry of them and the compiled routes. Its errors are
// ErrConfig, every problem at once.
func prepare(cfg *config.Config, opts Options) (catalogue, *route.Router, error) {
	cat, catErr := newCatalogue(cfg, opts.Sagas)
	patches := engine.CheckPatches(engineKind(cfg.Engine.Kind), engine.Registry{Patches: opts.Patches})
	router, err := route.New(cfg, cat.routeWorkflows())
	if err := errors.Join(catErr, patches, err); err != nil {
		return catalogue{}, nil, configErr(err)
	}
	return cat, router, nil
}

// eventTopics are the topics the sagas publish progress and outcomes to:
// the config's and those the saga files name, without repeats.
func (c catalogue) eventTopics(o config.Outcomes) []string {
	outcomes, progress := c.defs.Topics()
	all := append([]string{o.ProgressTopic, o.Topic}, append(outcomes, progress...)...)
	seen := map[string]bool{}
	out := all[:0]
	for _, t := range all {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// sagaWorkflows are the workflows that run on the saga runtime (the Go
// sagas registered as such and the declarative ones): only their start
// input is a sagas.Start envelope.
func (c catalogue) sagaWorkflows() map[string]bool {
	out := map[string]bool{}
	for name := range c.workflows {
		if c.reg.RunsSaga(name) {
			out[name] = true
		}
		if _, ok := c.defs.Latest(name); ok {
			out[name] = true
		}
	}
	return out
}
