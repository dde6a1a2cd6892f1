package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/admin"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/console"
	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/topics"
)

// How the operations commands reach a worker
//
// The workflow engine belongs to the worker: the embedded hub holds an
// exclusive lock on its database file, and a second workflow worker on the
// same hub (which engine.New would start, even with an empty registry)
// would be handed work items for workflows it does not know and fail them.
// So `sagabridge workflow …` calls the running worker's admin API, which
// acts through the worker's own engine client; the same works for both
// engine kinds. `sagabridge dlq …` and `publish` talk to the broker
// directly; for an embedded broker they ask the admin API where it is.

// opsFlags are the flags every operations command shares.
type opsFlags struct {
	config    string
	adminAddr string
	tokenFile string
	output    string
	yes       bool
}

func (o *opsFlags) register(fs *pflag.FlagSet, withYes bool) {
	fs.StringVarP(&o.config, "config", "c", "bridge.yaml", "config file (defaults are used when the default file does not exist)")
	fs.StringVar(&o.adminAddr, "admin", "", "admin address of the running worker (default: admin.listen of the config)")
	fs.StringVar(&o.tokenFile, "admin-token-file", "", "file with the admin bearer token (default $"+admin.TokenFileEnv+", then $"+admin.TokenEnv+")")
	fs.StringVarP(&o.output, "output", "o", "table", "output format: table, json or yaml")
	if withYes {
		fs.BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation")
	}
}

func (o *opsFlags) validate() error { return checkOutput(o.output) }

// checkOutput validates an -o value.
func checkOutput(format string) error {
	switch format {
	case "table", "json", "yaml":
		return nil
	}
	return usageErr(fmt.Errorf("--output %q is not table, json or yaml", format))
}

// loadConfig reads the config; a missing default file means defaults.
func (o *opsFlags) loadConfig(cmd *cobra.Command) (*config.Config, error) {
	cfg, err := config.Load(o.config)
	if err == nil {
		return cfg, nil
	}
	if !cmd.Flags().Changed("config") && errors.Is(err, os.ErrNotExist) {
		return config.Parse("defaults", []byte("{}"))
	}
	return nil, usageErr(err)
}

// adminClient resolves the worker's admin address and token.
func (o *opsFlags) adminClient(cmd *cobra.Command, cfg *config.Config) (*admin.Client, error) {
	addr := o.adminAddr
	if addr == "" {
		var err error
		if addr, err = dialableAddr(cfg.Admin.Listen); err != nil {
			return nil, usageErr(err)
		}
	}
	tok, err := adminToken(cfg, o.tokenFile)
	if err != nil {
		return nil, usageErr(err)
	}
	c, err := admin.NewClient(addr, tok)
	if err != nil {
		return nil, usageErr(err)
	}
	return c, nil
}

// adminToken is the bearer token: a --admin-token-file flag, else the
// config's admin.tokenFile, else the environment.
func adminToken(cfg *config.Config, flagFile string) (string, error) {
	switch {
	case flagFile != "":
		return admin.ReadToken(flagFile)
	case cfg != nil && cfg.Admin.TokenFile != "":
		return admin.ReadToken(cfg.Admin.TokenFile)
	}
	return admin.TokenFromEnv()
}

// dialableAddr turns a listen address into one a client can dial.
func dialableAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("admin.listen %q: %w", listen, err)
	}
	if port == "0" {
		return "", fmt.Errorf("admin.listen %q picks a free port; pass --admin host:port", listen)
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// usageErr marks an error as the caller's: exit code 2.
func usageErr(err error) error { return exitError{exitUsage, err} }

// opErr maps an operation's error to an exit code.
func opErr(err error) error {
	var ee exitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return err
	case errors.Is(err, engine.ErrNotFound):
		return exitError{exitNotFound, err}
	case errors.Is(err, admin.ErrBadRequest):
		return exitError{exitUsage, err}
	case errors.Is(err, admin.ErrUnreachable):
		return exitError{exitFailure, fmt.Errorf("%w (is the worker running? the engine is reached through it)", err)}
	}
	return exitError{exitFailure, err}
}

// exactArgs is cobra.ExactArgs with the usage exit code.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageErr(err)
		}
		return nil
	}
}

func flagUsageErr(_ *cobra.Command, err error) error { return usageErr(err) }

// confirm asks on the terminal; without one, --yes is required.
func confirm(cmd *cobra.Command, yes bool, question string) error {
	if yes {
		return nil
	}
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && !isatty.IsTerminal(f.Fd()) && !isatty.IsCygwinTerminal(f.Fd()) {
		return usageErr(errors.New(question + ": refused without --yes (stdin is not a terminal)"))
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s [y/N] ", question)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return exitError{exitFailure, errors.New("not confirmed")}
}

// printAs prints v as JSON or as YAML with the same field names.
func printAs(w io.Writer, format string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if format == "yaml" {
		if b, err = sigsyaml.JSONToYAML(b); err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// startAdmin starts the admin server of a running worker: metrics,
// health, readiness and the workflow API over the worker's engine. When
// ctx ends (SIGTERM), /readyz turns not-ready at once.
func startAdmin(ctx context.Context, cfg *config.Config, b *bridge.Bridge, m *admin.Metrics, log *zap.Logger) (*admin.Server, error) {
	tok, err := adminToken(cfg, "")
	if err != nil {
		return nil, err
	}
	var metricsToken string
	if cfg.Metrics.TokenFile != "" {
		if metricsToken, err = admin.ReadToken(cfg.Metrics.TokenFile); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	replayCheck, err := b.ReplayChecker()
	if err != nil {
		return nil, err
	}
	checks := make([]admin.Check, 0, 3)
	for _, c := range b.ReadyChecks() {
		checks = append(checks, admin.Check{Name: c.Name, Run: c.Run})
	}
	srv, err := admin.New(admin.Config{
		Listen:        cfg.Admin.Listen,
		Token:         tok,
		Hosts:         cfg.Admin.Hosts,
		MetricsListen: cfg.Metrics.Listen,
		MetricsToken:  metricsToken,
		Gatherer:      m.Registry(),
		Checks:        checks,
		Workflows:     b.Engine(),
		Sagas:         b.Sagas(),
		DeadLetters:   b.DeadLetters(),
		ReplayCheck:   replayCheck,
		Migration:     b.MigrationReport,
		Console:       console.Handler(),
		Info: admin.Info{
			Version:    version,
			BrokerKind: cfg.Broker.Kind,
			BrokerURL:  b.BrokerURL(),
			EngineKind: cfg.Engine.Kind,
			DLQTopic:   cfg.DLQ.Topic,
			Outcomes:   cfg.Outcomes.Topic,
		},
		Logger: log.Named("admin"),
	})
	if err != nil {
		return nil, err
	}
	known := knownLabels(cfg)
	m.InitSeries(known)
	m.WatchState(admin.State{
		DLQDepth:      b.DLQDepth,
		ConsumerLag:   b.ConsumerLag,
		Checks:        checks,
		OldestRunning: b.OldestRunning,
		Sagas:         known.Sagas,
	})
	if err := srv.Start(); err != nil {
		return nil, err
	}
	go func() {
		<-ctx.Done()
		srv.SetDraining()
	}()
	return srv, nil
}

// workflowCmd holds the flags the workflow subcommands share.
type workflowCmd struct {
	o opsFlags
}

func newWorkflowCmd() *cobra.Command {
	w := &workflowCmd{}
	cmd := &cobra.Command{
		Use:   "workflow",
		Short: "Inspect and control workflow instances through the running worker",
		Long: `Inspect and control workflow instances.

The commands call the running worker's admin API (admin.listen, or --admin),
which acts through the worker's own engine client: the embedded engine's
database belongs to the worker, and with daprd the worker is the app that
holds the workflows. Exit codes: 0 done, 1 failed, 2 usage, 3 no such instance.`,
	}
	cmd.SetFlagErrorFunc(flagUsageErr)
	w.o.register(cmd.PersistentFlags(), true)
	cmd.AddCommand(w.getCmd(), w.raiseCmd(), newWorkflowListCmd(w.client, &w.o), newWorkflowHistoryCmd(w.client, &w.o),
		w.controlCmd("terminate", "Terminate an instance (asks for confirmation)", "terminated", true,
			func(c *admin.Client, ctx context.Context, id, r string) error { return c.Terminate(ctx, id, r) }),
		w.controlCmd("suspend", "Suspend an instance", "suspended", false,
			func(c *admin.Client, ctx context.Context, id, r string) error { return c.Suspend(ctx, id, r) }),
		w.controlCmd("resume", "Resume a suspended instance", "resumed", false,
			func(c *admin.Client, ctx context.Context, id, r string) error { return c.Resume(ctx, id, r) }),
		w.controlCmd("purge", "Delete a finished instance's state (asks for confirmation)", "purged", true,
			func(c *admin.Client, ctx context.Context, id, _ string) error { return c.Purge(ctx, id) }),
	)
	return cmd
}

// client validates the flags and connects to the running worker's admin API.
func (w *workflowCmd) client(cmd *cobra.Command) (*admin.Client, error) {
	if err := w.o.validate(); err != nil {
		return nil, err
	}
	cfg, err := w.o.loadConfig(cmd)
	if err != nil {
		return nil, err
	}
	return w.o.adminClient(cmd, cfg)
}

func (w *workflowCmd) getCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show an instance: status, steps, outcome",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := w.client(cmd)
			if err != nil {
				return err
			}
			d, err := c.Detail(cmd.Context(), args[0])
			if err != nil {
				return opErr(err)
			}
			return printWorkflow(cmd.OutOrStdout(), w.o.output, d)
		},
	}
}

func (w *workflowCmd) raiseCmd() *cobra.Command {
	var data, dataFile string
	raise := &cobra.Command{
		Use:   "raise ID EVENT",
		Short: "Raise an external event on an instance",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := w.client(cmd)
			if err != nil {
				return err
			}
			payload, err := readData(cmd, data, dataFile)
			if err != nil {
				return err
			}
			if err := c.Raise(cmd.Context(), args[0], args[1], payload); err != nil {
				return opErr(err)
			}
			return report(cmd, w.o.output, "raised", args[0], map[string]any{"event": args[1]})
		},
	}
	raise.Flags().StringVar(&data, "data", "", "event payload (JSON)")
	raise.Flags().StringVar(&dataFile, "data-file", "", "file with the event payload (JSON); - reads stdin")
	return raise
}

// controlCmd builds a command that applies f to one instance and reports
// done; a destructive one asks for confirmation first.
func (w *workflowCmd) controlCmd(use, short, done string, destructive bool, f func(c *admin.Client, ctx context.Context, id, reason string) error) *cobra.Command {
	// Each command owns its reason: a shared variable would take the
	// default of whichever command registered its flag last.
	var reason string
	c := &cobra.Command{
		Use:   use + " ID",
		Short: short,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := w.client(cmd)
			if err != nil {
				return err
			}
			if destructive {
				if err := confirm(cmd, w.o.yes, fmt.Sprintf("%s workflow instance %s", use, args[0])); err != nil {
					return err
				}
			}
			if err := f(cl, cmd.Context(), args[0], reason); err != nil {
				return opErr(err)
			}
			return report(cmd, w.o.output, done, args[0], nil)
		},
	}
	if use != "purge" {
		c.Flags().StringVar(&reason, "reason", "sagabridge workflow "+use, "reason recorded with the operation")
	}
	return c
}

// readData reads a JSON payload from --data or --data-file ("-": stdin).
func readData(cmd *cobra.Command, data, file string) ([]byte, error) {
	var b []byte
	switch {
	case data != "" && file != "":
		return nil, usageErr(errors.New("--data and --data-file exclude each other"))
	case data != "":
		b = []byte(data)
	case file == "-":
		var err error
		if b, err = io.ReadAll(cmd.InOrStdin()); err != nil {
			return nil, err
		}
	case file != "":
		var err error
		if b, err = os.ReadFile(file); err != nil {
			return nil, usageErr(err)
		}
	default:
		return nil, nil
	}
	if !json.Valid(b) {
		return nil, usageErr(errors.New("the payload is not valid JSON"))
	}
	return b, nil
}

func report(cmd *cobra.Command, output, what, id string, extra map[string]any) error {
	if output != "table" {
		v := map[string]any{"instanceId": id, "result": what}
		for k, x := range extra {
			v[k] = x
		}
		return printAs(cmd.OutOrStdout(), output, v)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", what, id)
	return nil
}

// workflowView is `workflow get -o json`: the engine's status, where the
// saga is when the worker knows (progress), and, when the output is a saga
// outcome, the outcome decoded.
type workflowView struct {
	engine.Status
	Progress *progressView   `json:"progress,omitempty"`
	Outcome  *topics.Outcome `json:"outcome,omitempty"`
}

// progressView reads the fields of a saga progress event the CLI shows.
type progressView struct {
	Status     string    `json:"status,omitempty"`
	Step       string    `json:"step,omitempty"`
	Kind       string    `json:"kind,omitempty"`
	Attempt    int       `json:"attempt,omitempty"`
	WaitingFor []string  `json:"waitingFor,omitempty"`
	Since      time.Time `json:"since,omitzero"`
	Done       []string  `json:"done,omitempty"`
}

func printWorkflow(w io.Writer, output string, d admin.WorkflowDetail) error {
	st := d.Status
	v := workflowView{Status: st}
	if len(d.Progress) > 0 {
		var p progressView
		if json.Unmarshal(d.Progress, &p) == nil {
			v.Progress = &p
		}
	}
	var out topics.Outcome
	if st.Output != "" && json.Unmarshal([]byte(st.Output), &out) == nil && out.Status != "" {
		v.Outcome = &out
	}
	if output != "table" {
		return printAs(w, output, v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, val string) {
		if val != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, val)
		}
	}
	row("instance", st.InstanceID)
	row("workflow", st.Workflow)
	row("status", st.RuntimeStatus)
	row("created", fmtTime(st.CreatedAt))
	row("updated", fmtTime(st.LastUpdatedAt))
	if o := v.Outcome; o != nil {
		row("outcome", o.Status)
		if !o.StartedAt.IsZero() && !o.FinishedAt.IsZero() {
			row("took", o.FinishedAt.Sub(o.StartedAt).Round(time.Millisecond).String())
		}
		row("error", o.Error)
		for i, s := range o.Steps {
			k := ""
			if i == 0 {
				k = "steps"
			}
			line := s.Name + "  " + s.Status
			if s.Error != "" {
				line += "  " + s.Error
			}
			row(k, line)
		}
		row("compensated", strings.Join(o.Compensated, ", "))
		row("not undone", strings.Join(o.NotUndone, ", "))
	} else if st.Output != "" {
		row("output", truncate(st.Output, 200))
	}
	if p := v.Progress; p != nil && v.Outcome == nil {
		step := p.Step
		if p.Kind != "" {
			step += " (" + p.Kind + ")"
		}
		if p.Attempt > 1 {
			step += fmt.Sprintf(", attempt %d", p.Attempt)
		}
		row("step", step)
		row("phase", p.Status)
		row("waiting for", strings.Join(p.WaitingFor, ", "))
		if !p.Since.IsZero() {
			row("since", fmtTime(p.Since))
		}
		row("done", strings.Join(p.Done, ", "))
	} else if !st.Finished() && v.Outcome == nil {
		row("step", "(the workflow reports none)")
	}
	row("failure", st.Failure)
	row("input", truncate(st.Input, 200))
	return tw.Flush()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05.000 MST")
}

func truncate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// knownLabels are the label values the config names.
func knownLabels(cfg *config.Config) admin.KnownLabels {
	k := admin.KnownLabels{
		Routes:          map[string]string{},
		EngineOps:       append(slices.Clone(config.Operations), config.ActionStartOrRaise),
		DivergenceKinds: []string{topics.DivergenceMissingStep, topics.DivergenceOutOfOrder, topics.DivergenceCompensationMissing, topics.DivergenceUnexpectedCompensation, topics.DivergenceStuck},
	}
	sagaSet, topicSet := map[string]bool{}, map[string]bool{}
	for _, r := range cfg.Routes {
		k.Routes[r.Name] = r.Action()
		for _, t := range r.Topics {
			topicSet[t] = true
		}
		switch {
		case r.Start != nil:
			sagaSet[r.Start.Workflow] = true
		case r.StartOrRaise != nil:
			sagaSet[r.StartOrRaise.Workflow] = true
		}
	}
	k.Topics = slices.Sorted(maps.Keys(topicSet))
	k.Sagas = slices.Sorted(maps.Keys(sagaSet))
	k.Migrating = slices.Sorted(maps.Keys(cfg.Migration.Workflows))
	return k
}
