package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/migrate"
	"github.com/sagabridge/sagabridge/cmd/sagabridge/brokers"
	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/kafka"
)

func newMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Follow a saga's migration from the legacy choreography",
	}
	cmd.AddCommand(newMigrateReportCmd(), newMigrateBucketCmd())
	return cmd
}

// migrateReportFlags are the flags of migrate report.
type migrateReportFlags struct {
	o            opsFlags
	bf           brokerFlags
	since, until string
	examples     int
}

func newMigrateReportCmd() *cobra.Command {
	var f migrateReportFlags
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Summarise migrating sagas over a time window: instances, agreeing, diverging by kind, stuck",
		Long: `Summarise the instances of migrating sagas that finished in a time window.

Shadow instances (the legacy flow drove them; the saga followed) come from
migration.shadowOutcomesTopic, active ones (the saga drove them) from
outcomes.topic. For each saga it prints how many instances each mode had,
how many shadow instances agreed with the legacy flow, how many diverged and
how (missing-step, out-of-order, compensation-missing,
unexpected-compensation, stuck), with example instance IDs to look at with
'sagabridge workflow get'. The topics are read on the broker (NATS JetStream
or Kafka) from the window's start.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error { return runMigrateReport(cmd, &f) },
	}
	cmd.SetFlagErrorFunc(flagUsageErr)
	f.o.register(cmd.Flags(), false)
	f.bf.register(cmd)
	cmd.Flags().StringVar(&f.since, "since", "1h", "window start: RFC 3339 time, date, or a duration ago")
	cmd.Flags().StringVar(&f.until, "until", "", "window end (default now)")
	cmd.Flags().IntVar(&f.examples, "examples", 3, "instance IDs listed per kind of divergence")
	return cmd
}

func runMigrateReport(cmd *cobra.Command, f *migrateReportFlags) error {
	if err := f.o.validate(); err != nil {
		return err
	}
	from, to, err := f.window(time.Now())
	if err != nil {
		return err
	}
	cfg, err := f.o.loadConfig(cmd)
	if err != nil {
		return err
	}
	read, done, err := openOutcomeReader(cmd, &f.o, &f.bf, cfg)
	if err != nil {
		return err
	}
	defer done()
	var all []topics.Outcome
	for _, topic := range []string{cfg.Migration.ShadowOutcomesTopic, cfg.Outcomes.Topic} {
		got, err := read(cmd.Context(), topic, from)
		if err != nil {
			return exitError{exitFailure, err}
		}
		all = append(all, got...)
	}
	rep := migrate.Summarize(all, from, to, f.examples)
	if f.o.output != "table" {
		return printAs(cmd.OutOrStdout(), f.o.output, rep)
	}
	return migrate.WriteTable(cmd.OutOrStdout(), rep)
}

// window is the report's time window: --since to --until, or to now.
func (f *migrateReportFlags) window(now time.Time) (from, to time.Time, err error) {
	from, err = parseWhen(f.since, now)
	if err != nil {
		return from, to, usageErr(fmt.Errorf("--since: %w", err))
	}
	to = now
	if f.until != "" {
		if to, err = parseWhen(f.until, now); err != nil {
			return from, to, usageErr(fmt.Errorf("--until: %w", err))
		}
	}
	return from, to, nil
}

// outcomeReader reads the outcomes stored on a topic since a time.
type outcomeReader func(ctx context.Context, topic string, since time.Time) ([]topics.Outcome, error)

// openOutcomeReader connects to the config's broker; done closes the
// connection.
func openOutcomeReader(cmd *cobra.Command, o *opsFlags, bf *brokerFlags, cfg *config.Config) (outcomeReader, func(), error) {
	if onKafka(cfg, bf) {
		r, err := kafka.NewReader(brokers.KafkaConnection(cfg.Broker.Kafka))
		if err != nil {
			return nil, nil, exitError{exitFailure, err}
		}
		read := func(ctx context.Context, topic string, since time.Time) ([]topics.Outcome, error) {
			return migrate.ReadKafkaOutcomes(ctx, r, topic, since)
		}
		return read, func() { r.Close() }, nil
	}
	ps, err := connectNATS(cmd, o, bf, cfg)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(ps.Conn())
	if err != nil {
		_ = ps.Close()
		return nil, nil, err
	}
	read := func(ctx context.Context, topic string, since time.Time) ([]topics.Outcome, error) {
		return migrate.ReadOutcomes(ctx, js, topic, since)
	}
	return read, func() { _ = ps.Close() }, nil
}

func newMigrateBucketCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "bucket INSTANCE-ID...",
		Short: "Print each instance ID's canary bucket (0..99): the saga drives it when bucket < percent",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			type bucket struct {
				InstanceID string `json:"instanceId"`
				Bucket     int    `json:"bucket"`
			}
			out := make([]bucket, 0, len(args))
			for _, id := range args {
				out = append(out, bucket{id, migrate.Bucket(id)})
			}
			if output != "table" {
				return printAs(cmd.OutOrStdout(), output, out)
			}
			for _, b := range out {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%d\n", b.InstanceID, b.Bucket)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}
