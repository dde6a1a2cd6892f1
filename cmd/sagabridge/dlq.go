package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/bridge/dlqstore"
	"github.com/sagabridge/sagabridge/cmd/sagabridge/brokers"
	"github.com/sagabridge/sagabridge/sagas/registry"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// brokerFlags locate the broker for dlq and publish.
type brokerFlags struct {
	natsURL string
}

func (b *brokerFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&b.natsURL, "nats-url", "", "NATS URL (default: broker.nats.url, or the embedded broker of the running worker)")
}

// connectNATS connects to the bridge's NATS broker with the config's
// credentials. An embedded broker lives inside the worker: its address
// comes from the worker's admin API (or broker.embedded.port when fixed).
func connectNATS(cmd *cobra.Command, o *opsFlags, b *brokerFlags, cfg *config.Config) (*natsjs.PubSub, error) {
	url := b.natsURL
	var opts []nats.Option
	switch cfg.Broker.Kind {
	case "nats":
		var err error
		if opts, err = brokers.NATSOptions(cfg.Broker.NATS); err != nil {
			return nil, usageErr(err)
		}
		if url == "" {
			url = cfg.Broker.NATS.URL
		}
	case "embedded":
		if url != "" {
			break
		}
		cl, err := o.adminClient(cmd, cfg)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
		info, err := cl.Info(ctx)
		cancel()
		switch {
		case err == nil && info.BrokerURL != "":
			url = info.BrokerURL
		case cfg.Broker.Embedded.Port > 0:
			url = fmt.Sprintf("nats://127.0.0.1:%d", cfg.Broker.Embedded.Port)
		case err != nil:
			return nil, exitError{exitFailure, fmt.Errorf("broker.kind is embedded, so the broker runs inside the worker, and the worker's admin API does not answer (%w); start the worker or pass --nats-url", err)}
		default:
			return nil, exitError{exitFailure, errors.New("the worker did not say where its embedded broker listens; pass --nats-url")}
		}
	default:
		if url == "" {
			return nil, usageErr(fmt.Errorf("broker.kind %q: these commands speak NATS JetStream only", cfg.Broker.Kind))
		}
	}
	opts = append(opts, nats.Name("sagabridge-cli"))
	ps, err := natsjs.New(natsjs.Config{URL: url, ConsumerGroup: "sagabridge_cli", Options: opts, FailFast: true})
	if err != nil {
		return nil, exitError{exitFailure, err}
	}
	return ps, nil
}

// dlqStore is what the dlq commands do on a dead-letter topic;
// dlqstore.Store (NATS JetStream) and dlqstore.KafkaStore implement it.
type dlqStore interface {
	Topic() string
	Count(ctx context.Context) (uint64, error)
	List(ctx context.Context, f dlqstore.Filter, fn func(dlqstore.Item) error) error
	Get(ctx context.Context, id string) (dlqstore.Item, error)
	Purge(ctx context.Context, f dlqstore.Filter) (int, error)
	Replay(ctx context.Context, opts dlqstore.ReplayOptions) (dlqstore.ReplayResult, error)
}

// onKafka says whether the commands talk Kafka: broker.kind kafka and no
// --nats-url.
func onKafka(cfg *config.Config, b *brokerFlags) bool {
	return cfg.Broker.Kind == "kafka" && b.natsURL == ""
}

// dlqFilterFlags are the selection flags of list, replay and purge.
type dlqFilterFlags struct {
	route, reason, kind, typ, topic, since, until string
}

func (f *dlqFilterFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.route, "route", "", "only messages of this route")
	fs.StringVar(&f.reason, "reason", "", "only messages whose reason contains this (case-insensitive)")
	fs.StringVar(&f.kind, "kind", "", "only this kind: "+strings.Join(dlq.Kinds, ", "))
	fs.StringVar(&f.typ, "type", "", "only this event type (a trailing * matches a prefix)")
	fs.StringVar(&f.topic, "topic", "", "only messages from this origin topic")
	fs.StringVar(&f.since, "since", "", "only failures at or after: RFC 3339 time, date, or a duration ago (2h)")
	fs.StringVar(&f.until, "until", "", "only failures before: RFC 3339 time, date, or a duration ago")
}

func (f dlqFilterFlags) filter(now time.Time) (dlqstore.Filter, error) {
	out := dlqstore.Filter{Route: f.route, Reason: f.reason, Kind: f.kind, Type: f.typ, Topic: f.topic}
	if f.kind != "" && !slices.Contains(dlq.Kinds, f.kind) {
		return out, usageErr(fmt.Errorf("--kind %q is not one of %s", f.kind, strings.Join(dlq.Kinds, ", ")))
	}
	var err error
	if out.Since, err = parseWhen(f.since, now); err != nil {
		return out, usageErr(fmt.Errorf("--since: %w", err))
	}
	if out.Until, err = parseWhen(f.until, now); err != nil {
		return out, usageErr(fmt.Errorf("--until: %w", err))
	}
	return out, nil
}

// key identifies the selection as typed, so a rerun of an interrupted
// replay ("--since 2h" an hour later) finds its consumer again.
func (f dlqFilterFlags) key() string {
	return strings.Join([]string{f.route, f.reason, f.kind, f.typ, f.topic, f.since, f.until}, "\x00")
}

func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (RFC 3339, 2006-01-02) or a duration (90m)", s)
}

// dlqCmd holds the flags every dlq subcommand shares.
type dlqCmd struct {
	// sagas are the Go sagas main registered, which routes may start.
	sagas    *registry.Registry
	o        opsFlags
	bf       brokerFlags
	dlqTopic string
}

func newDLQCmd(sagas *registry.Registry) *cobra.Command {
	d := &dlqCmd{sagas: sagas}
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, show, replay and purge dead-letter messages",
		Long: `List, show, replay and purge dead-letter messages.

The dead-letter topic (dlq.topic) is read on the broker directly. Replay
re-publishes each selected message, payload and headers as the producer sent
them, to its origin topic, and removes it only after the broker stored the
re-publish; an interrupted replay run again with the same filters resumes.

On NATS JetStream a message's ID is its stream sequence; removal deletes it,
and a resumed replay neither loses nor doubles a message (the origin stream
drops a second re-publish by its message id).

On Kafka a message's ID is <partition>/<offset>. A topic cannot delete one
record, so replay and purge acknowledge it on a compacted topic beside it
(<dlq topic>.acks), and list, show, replay and the depth gauge skip what is
acknowledged; retention removes the records. A replay interrupted between a
re-publish and its acknowledgement re-publishes that message again when run
again (at least once).

Exit codes: 0 done, 1 failed, 2 usage, 3 no such message.`,
	}
	cmd.SetFlagErrorFunc(flagUsageErr)
	d.o.register(cmd.PersistentFlags(), true)
	d.bf.register(cmd)
	cmd.PersistentFlags().StringVar(&d.dlqTopic, "dlq-topic", "", "dead-letter topic (default: dlq.topic of the config)")
	cmd.AddCommand(d.listCmd(), d.showCmd(), d.replayCmd(), d.purgeCmd())
	return cmd
}

// open connects to the dead-letter topic of the config (or --dlq-topic) on
// the config's broker; done closes the connection.
func (d *dlqCmd) open(cmd *cobra.Command) (dlqStore, func(), error) {
	if err := d.o.validate(); err != nil {
		return nil, nil, err
	}
	cfg, err := d.o.loadConfig(cmd)
	if err != nil {
		return nil, nil, err
	}
	topic := d.dlqTopic
	if topic == "" {
		topic = cfg.DLQ.Topic
	}
	if onKafka(cfg, &d.bf) {
		st, err := dlqstore.OpenKafka(brokers.KafkaConnection(cfg.Broker.Kafka), topic)
		if err != nil {
			return nil, nil, exitError{exitFailure, err}
		}
		return st, func() { _ = st.Close() }, nil
	}
	ps, err := connectNATS(cmd, &d.o, &d.bf, cfg)
	if err != nil {
		return nil, nil, err
	}
	nst, err := dlqstore.Open(ps.Conn(), topic)
	if err != nil {
		_ = ps.Close()
		return nil, nil, err
	}
	return nst, func() { _ = ps.Close() }, nil
}

func (d *dlqCmd) listCmd() *cobra.Command {
	var f dlqFilterFlags
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead-letter messages, oldest first",
		Args:  exactArgs(0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return d.list(cmd, f, limit) },
	}
	f.register(cmd)
	cmd.Flags().IntVar(&limit, "limit", 0, "list at most this many (0: all)")
	return cmd
}

func (d *dlqCmd) list(cmd *cobra.Command, ff dlqFilterFlags, limit int) error {
	f, err := ff.filter(time.Now())
	if err != nil {
		return err
	}
	st, done, err := d.open(cmd)
	if err != nil {
		return err
	}
	defer done()
	views := []dlqstore.View{}
	err = st.List(cmd.Context(), f, func(it dlqstore.Item) error {
		if limit > 0 && len(views) >= limit {
			return dlqstore.ErrStop
		}
		views = append(views, dlqstore.NewView(it, false))
		return nil
	})
	if err != nil {
		return opErr(err)
	}
	if d.o.output != "table" {
		return printAs(cmd.OutOrStdout(), d.o.output, views)
	}
	return printDLQTable(cmd.OutOrStdout(), views)
}

func (d *dlqCmd) showCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one dead-letter message with its headers and payload",
		Args:  exactArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return d.show(cmd, args[0]) },
	}
}

func (d *dlqCmd) show(cmd *cobra.Command, id string) error {
	st, done, err := d.open(cmd)
	if err != nil {
		return err
	}
	defer done()
	it, err := st.Get(cmd.Context(), id)
	if errors.Is(err, dlqstore.ErrNotFound) {
		return exitError{exitNotFound, err}
	}
	if err != nil {
		return opErr(err)
	}
	v := dlqstore.NewView(it, true)
	if d.o.output != "table" {
		return printAs(cmd.OutOrStdout(), d.o.output, v)
	}
	return printDLQDetail(cmd.OutOrStdout(), v)
}

// dlqReplayFlags are the flags of dlq replay.
type dlqReplayFlags struct {
	filter               dlqFilterFlags
	opts                 dlqstore.ReplayOptions
	every                int
	noProgress, anyRoute bool
}

func (d *dlqCmd) replayCmd() *cobra.Command {
	var rf dlqReplayFlags
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Re-publish dead-letter messages to their origin topics",
		Args:  exactArgs(0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return d.replay(cmd, &rf) },
	}
	rf.filter.register(cmd)
	fs := cmd.Flags()
	fs.Float64Var(&rf.opts.Rate, "rate", 0, "re-publishes per second (0: as fast as the broker takes them)")
	fs.IntVar(&rf.opts.Limit, "limit", 0, "stop after this many re-publishes; a rerun continues (0: all)")
	fs.BoolVar(&rf.opts.DryRun, "dry-run", false, "only count what would be replayed")
	fs.StringVar(&rf.opts.Consumer, "consumer", "", "durable consumer name (default: derived from the filters, so a rerun resumes)")
	fs.IntVar(&rf.every, "progress-every", 100, "without a terminal, print a progress line every N messages")
	fs.BoolVar(&rf.noProgress, "no-progress", false, "print no progress")
	fs.BoolVar(&rf.anyRoute, "any-route", false, "replay also what no route of the config would handle now (it is acked unmatched, so lost)")
	return cmd
}

func (d *dlqCmd) replay(cmd *cobra.Command, rf *dlqReplayFlags) error {
	f, err := rf.filter.filter(time.Now())
	if err != nil {
		return err
	}
	if rf.opts.Rate < 0 || rf.opts.Limit < 0 {
		return usageErr(errors.New("--rate and --limit must not be negative"))
	}
	st, done, err := d.open(cmd)
	if err != nil {
		return err
	}
	defer done()
	opts := rf.opts
	opts.Filter = f
	opts.ConsumerKey = st.Topic() + "\x00" + rf.filter.key()
	if !rf.anyRoute {
		if opts.Check, err = d.replayCheck(cmd); err != nil {
			return err
		}
	}
	var prog *progress
	if !rf.noProgress {
		total, _ := st.Count(cmd.Context())
		prog = newProgress(cmd.ErrOrStderr(), int(total), rf.every, opts.DryRun)
		opts.Progress = prog.update
	}
	res, err := st.Replay(cmd.Context(), opts)
	if prog != nil {
		prog.finish(res)
	}
	if perr := printReplay(cmd.OutOrStdout(), d.o.output, res, opts.DryRun); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return exitError{exitFailure, errors.New("interrupted; run the same command again to resume")}
		}
		return opErr(err)
	}
	return nil
}

// replayCheck keeps entries that no route of the config would handle
// now; without routes in the config there is nothing to judge by.
func (d *dlqCmd) replayCheck(cmd *cobra.Command) (func(dlqstore.Item) error, error) {
	cfg, err := d.o.loadConfig(cmd)
	if err != nil || len(cfg.Routes) == 0 {
		return nil, err
	}
	check, err := bridge.ReplayCheck(cfg, d.sagas)
	if err != nil {
		return nil, usageErr(err)
	}
	return func(it dlqstore.Item) error {
		if it.Entry.Truncated != "" {
			return nil // the original is replayed from its stream, as it was
		}
		err := check(it.Entry.Failure.OriginTopic, it.Entry.Payload, it.Entry.Metadata)
		if err != nil && it.Entry.Failure.Route != "" {
			return fmt.Errorf("%w; it was dead-lettered by route %s (--any-route replays it anyway)", err, it.Entry.Failure.Route)
		}
		if err != nil {
			return fmt.Errorf("%w (--any-route replays it anyway)", err)
		}
		return nil
	}, nil
}

func (d *dlqCmd) purgeCmd() *cobra.Command {
	var f dlqFilterFlags
	cmd := &cobra.Command{
		Use:   "purge",
		Short: "Delete dead-letter messages (all, or those the filters select)",
		Args:  exactArgs(0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return d.purge(cmd, f) },
	}
	f.register(cmd)
	return cmd
}

func (d *dlqCmd) purge(cmd *cobra.Command, ff dlqFilterFlags) error {
	f, err := ff.filter(time.Now())
	if err != nil {
		return err
	}
	st, done, err := d.open(cmd)
	if err != nil {
		return err
	}
	defer done()
	n := 0
	if f.IsZero() {
		c, err := st.Count(cmd.Context())
		if err != nil {
			return opErr(err)
		}
		n = int(c)
	} else if err := st.List(cmd.Context(), f, func(dlqstore.Item) error { n++; return nil }); err != nil {
		return opErr(err)
	}
	if n > 0 {
		if err := confirm(cmd, d.o.yes, fmt.Sprintf("delete %d dead-letter message(s) from %s (%s)", n, st.Topic(), f)); err != nil {
			return err
		}
	}
	purged := 0
	if n > 0 {
		if purged, err = st.Purge(cmd.Context(), f); err != nil {
			return opErr(err)
		}
	}
	if d.o.output != "table" {
		return printAs(cmd.OutOrStdout(), d.o.output, map[string]any{"purged": purged, "topic": st.Topic()})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "purged %d dead-letter message(s) from %s\n", purged, st.Topic())
	return nil
}

func printDLQTable(w io.Writer, views []dlqstore.View) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFAILED AT\tKIND\tROUTE\tTOPIC\tEVENT TYPE\tEVENT ID\tATTEMPTS\tREASON")
	for _, v := range views {
		at := v.FailedAt
		if at.IsZero() {
			at = v.StoredAt
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", v.Ref, at.Local().Format("2006-01-02 15:04:05"),
			dash(v.Kind), dash(v.Route), dash(v.OriginTopic), dash(v.EventType), dash(truncate(v.EventID, 40)),
			v.Attempts, truncate(v.Reason, 80))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d message(s)\n", len(views))
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printDLQDetail(w io.Writer, v dlqstore.View) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, val string) { fmt.Fprintf(tw, "%s\t%s\n", k, val) }
	row("id", v.Ref)
	row("message id", v.ID)
	row("kind", v.Kind)
	row("reason", v.Reason)
	row("route", dash(v.Route))
	row("origin topic", v.OriginTopic)
	row("event", dash(v.EventType)+"  "+dash(v.EventID))
	row("attempts", strconv.Itoa(v.Attempts))
	row("first failure", fmtTime(v.FirstFailure))
	row("failed at", fmtTime(v.FailedAt))
	row("stored at", fmtTime(v.StoredAt))
	if v.Error != "" {
		row("metadata error", v.Error)
	}
	keys := make([]string, 0, len(v.Headers))
	for k := range v.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		label := ""
		if i == 0 {
			label = "headers"
		}
		row(label, k+": "+v.Headers[k])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "payload (%d bytes):\n", v.PayloadBytes)
	switch {
	case v.Payload != nil:
		var pretty any
		if json.Unmarshal(v.Payload, &pretty) == nil {
			b, _ := json.MarshalIndent(pretty, "", "  ")
			_, err := fmt.Fprintf(w, "%s\n", b)
			return err
		}
		_, err := fmt.Fprintf(w, "%s\n", v.Payload)
		return err
	case v.PayloadText != "":
		_, err := fmt.Fprintln(w, v.PayloadText)
		return err
	default:
		_, err := fmt.Fprintf(w, "base64:%s\n", v.PayloadBase64)
		return err
	}
}

func printReplay(w io.Writer, output string, res dlqstore.ReplayResult, dry bool) error {
	if output != "table" {
		return printAs(w, output, struct {
			DryRun bool `json:"dryRun"`
			dlqstore.ReplayResult
		}{dry, res})
	}
	verb := "replayed"
	if dry {
		verb = "would replay"
	}
	fmt.Fprintf(w, "%s %d, skipped %d (filters), unreadable %d, scanned %d", verb, res.Replayed, res.Skipped, res.Unreadable, res.Scanned)
	if res.Duplicates > 0 {
		fmt.Fprintf(w, "; %d were already on their topic (resumed replay, dropped by the broker)", res.Duplicates)
	}
	fmt.Fprintln(w)
	for _, t := range res.SortedTopics() {
		fmt.Fprintf(w, "  %-40s %d\n", t, res.Topics[t])
	}
	if res.Kept > 0 {
		fmt.Fprintf(w, "kept %d in the dead-letter topic, not replayable:\n", res.Kept)
		for _, why := range res.KeptWhy {
			fmt.Fprintf(w, "  %s\n", why)
		}
		if res.Kept > len(res.KeptWhy) {
			fmt.Fprintf(w, "  … and %d more\n", res.Kept-len(res.KeptWhy))
		}
	}
	if !dry && !res.Done && res.Consumer != "" {
		fmt.Fprintf(w, "not finished: run the same command again to continue (consumer %s)\n", res.Consumer)
	}
	return nil
}

// progress shows a bar on a terminal and a line every N messages
// otherwise.
type progress struct {
	w        io.Writer
	tty      bool
	total    int
	every    int
	dry      bool
	lastLine int
	lastDraw time.Time
	started  time.Time
}

func newProgress(w io.Writer, total, every int, dry bool) *progress {
	p := &progress{w: w, total: total, every: max(every, 1), dry: dry, started: time.Now()}
	if f, ok := w.(*os.File); ok {
		p.tty = isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
	}
	return p
}

func (p *progress) update(r dlqstore.ReplayResult) {
	if p.tty {
		if time.Since(p.lastDraw) < 100*time.Millisecond {
			return
		}
		p.lastDraw = time.Now()
		p.draw(r)
		return
	}
	if r.Scanned-p.lastLine >= p.every {
		p.lastLine = r.Scanned
		fmt.Fprintf(p.w, "dlq replay: scanned %d/%d, replayed %d, skipped %d\n", r.Scanned, p.total, r.Replayed, r.Skipped)
	}
}

func (p *progress) draw(r dlqstore.ReplayResult) {
	const width = 30
	total := max(p.total, r.Scanned, 1)
	filled := width * r.Scanned / total
	rate := float64(r.Replayed) / max(time.Since(p.started).Seconds(), 0.001)
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d  replayed %d  %.0f/s ", strings.Repeat("#", filled), strings.Repeat(" ", width-filled),
		r.Scanned, total, r.Replayed, rate)
}

func (p *progress) finish(r dlqstore.ReplayResult) {
	if p.tty {
		p.draw(r)
		fmt.Fprintln(p.w)
	}
}
