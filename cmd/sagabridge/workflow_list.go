package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sagabridge/sagabridge/bridge/admin"
	"github.com/sagabridge/sagabridge/bridge/sagaview"
)

// listFlags are the filters of `workflow list`, as the admin API takes
// them.
type listFlags struct {
	saga, status, step, text, idPrefix               string
	startedFrom, startedTo, finishedFrom, finishedTo string
	version, limit                                   int
	pageToken                                        string
	counts                                           bool
}

func (l *listFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&l.saga, "saga", "", "only instances of this saga")
	fs.IntVar(&l.version, "version", 0, "only this version of the saga (declarative sagas)")
	fs.StringVar(&l.status, "status", "", "only these statuses, comma-separated: "+strings.Join(sagaview.Statuses, ", "))
	fs.StringVar(&l.step, "step", "", "only unfinished instances on this step")
	fs.StringVarP(&l.text, "search", "q", "", "only instance IDs that contain this")
	fs.StringVar(&l.idPrefix, "id-prefix", "", "only instance IDs that start with this")
	fs.StringVar(&l.startedFrom, "started-from", "", "started at or after: RFC 3339 time, date, or a duration ago (2h)")
	fs.StringVar(&l.startedTo, "started-to", "", "started before")
	fs.StringVar(&l.finishedFrom, "finished-from", "", "finished at or after")
	fs.StringVar(&l.finishedTo, "finished-to", "", "finished before")
	fs.IntVar(&l.limit, "limit", 50, "instances per page (at most 500)")
	fs.StringVar(&l.pageToken, "page-token", "", "continue after the page that printed this token")
	fs.BoolVar(&l.counts, "counts", false, "also count the instances per status (over the most recent 2000)")
}

func (l listFlags) filter() (sagaview.Filter, error) {
	f := sagaview.Filter{
		Saga: l.saga, Version: l.version, Step: l.step, Text: l.text, IDPrefix: l.idPrefix,
		PageSize: l.limit, PageToken: l.pageToken,
	}
	if l.status != "" {
		for _, s := range strings.Split(l.status, ",") {
			if s = strings.TrimSpace(strings.ToLower(s)); s != "" {
				f.Statuses = append(f.Statuses, s)
			}
		}
	}
	now := time.Now()
	for _, t := range []struct {
		flag, val string
		to        *time.Time
	}{
		{"--started-from", l.startedFrom, &f.StartedFrom}, {"--started-to", l.startedTo, &f.StartedTo},
		{"--finished-from", l.finishedFrom, &f.FinishedFrom}, {"--finished-to", l.finishedTo, &f.FinishedTo},
	} {
		at, err := parseWhen(t.val, now)
		if err != nil {
			return f, usageErr(fmt.Errorf("%s: %w", t.flag, err))
		}
		*t.to = at
	}
	if l.limit < 1 {
		return f, usageErr(fmt.Errorf("--limit %d must be at least 1", l.limit))
	}
	if err := f.Validate(); err != nil {
		return f, usageErr(err)
	}
	return f, nil
}

func newWorkflowListCmd(client func(*cobra.Command) (*admin.Client, error), o *opsFlags) *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List saga instances, newest first, with filters",
		Long: `List saga instances, newest first.

On the embedded engine the list comes from the engine's own indexes. daprd
1.16 cannot list workflow instances, so on engine.kind dapr the worker lists
the instances it started or saw progress of (its last 10000), asking daprd
for each one's status; the output says so.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := lf.filter()
			if err != nil {
				return err
			}
			c, err := client(cmd)
			if err != nil {
				return err
			}
			l, err := c.List(cmd.Context(), f, lf.counts)
			if err != nil {
				return opErr(err)
			}
			if o.output != "table" {
				return printAs(cmd.OutOrStdout(), o.output, l)
			}
			return printWorkflowList(cmd.OutOrStdout(), cmd.ErrOrStderr(), l)
		},
	}
	lf.register(cmd)
	return cmd
}

func printWorkflowList(w, notes io.Writer, l admin.WorkflowList) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tSAGA\tSTATUS\tSTEP\tWAITING FOR\tSTARTED\tFINISHED")
	for _, in := range l.Instances {
		saga := in.Saga
		if in.Version > 0 {
			saga += fmt.Sprintf(" v%d", in.Version)
		}
		step := in.Step
		if in.Attempt > 1 {
			step += fmt.Sprintf(" (attempt %d)", in.Attempt)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.InstanceID, saga, in.Status, dash(step),
			dash(strings.Join(in.WaitingFor, ", ")), fmtTime(in.StartedAt), dash(fmtTime(in.FinishedAt)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if c := l.Counts; c != nil {
		var parts []string
		for _, s := range sagaview.Statuses {
			if n := c.Counts[s]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", s, n))
			}
		}
		over := ""
		if !c.Complete {
			over = fmt.Sprintf(" (of the %d most recent)", c.Scanned)
		}
		fmt.Fprintf(w, "\ncounts%s: %s\n", over, dash(strings.Join(parts, ", ")))
	}
	if l.NextPageToken != "" {
		fmt.Fprintf(notes, "more: --page-token %s\n", l.NextPageToken)
	}
	if l.Note != "" {
		fmt.Fprintf(notes, "note: %s\n", l.Note)
	}
	return nil
}

func newWorkflowHistoryCmd(client func(*cobra.Command) (*admin.Client, error), o *opsFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "history ID",
		Short: "Show an instance's timeline: commands with their idempotency keys, replies, retries, timers, compensations, outcome",
		Long: `Show what happened to a saga instance, in order.

On the embedded engine the timeline is read from the engine's history. daprd
1.16 serves no history to its apps: there it is built from the progress and
outcome events the worker saw (commands with their idempotency keys,
compensations and the outcome; no reply payloads or timers), and says so.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			h, err := c.History(cmd.Context(), args[0])
			if err != nil {
				return opErr(err)
			}
			if o.output != "table" {
				return printAs(cmd.OutOrStdout(), o.output, h)
			}
			return printHistory(cmd.OutOrStdout(), h)
		},
	}
}

func printHistory(w io.Writer, h sagaview.History) error {
	in := h.Instance
	fmt.Fprintf(w, "instance  %s\nsaga      %s", in.InstanceID, in.Saga)
	if in.Version > 0 {
		fmt.Fprintf(w, " v%d", in.Version)
	}
	fmt.Fprintf(w, "\nstatus    %s (engine: %s)\n", in.Status, in.RuntimeStatus)
	if h.Note != "" {
		fmt.Fprintf(w, "note      %s\n", h.Note)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "+TIME\tKIND\tSTEP\tATTEMPT\tWHAT\tKEY\tRESULT")
	for _, e := range h.Entries {
		what := e.Name
		if e.Topic != "" {
			what += " → " + e.Topic
		}
		if e.Detail != "" {
			what = strings.TrimSpace(what + " " + e.Detail)
		}
		if e.Kind == sagaview.EntryReply && len(e.Payload) > 0 {
			var buf bytes.Buffer
			if json.Compact(&buf, e.Payload) == nil {
				what += " " + buf.String()
			}
		}
		res := e.Status
		if e.Error != "" {
			res = strings.TrimSpace(res + " " + e.Error)
		}
		attempt := ""
		if e.Attempt > 0 {
			attempt = fmt.Sprint(e.Attempt)
		}
		fmt.Fprintf(tw, "+%.3fs\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.Sub(in.StartedAt).Seconds(), e.Kind, dash(e.Step), dash(attempt),
			dash(truncate(what, 120)), dash(e.Key), dash(res))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if h.Outcome != nil {
		b, _ := json.Marshal(h.Outcome.Compensated)
		fmt.Fprintf(w, "\noutcome   %s", h.Outcome.Status)
		if h.Outcome.Error != "" {
			fmt.Fprintf(w, ": %s", h.Outcome.Error)
		}
		if len(h.Outcome.Compensated) > 0 {
			fmt.Fprintf(w, " (compensated %s)", b)
		}
		fmt.Fprintln(w)
	}
	return nil
}
