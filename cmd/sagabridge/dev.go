package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/admin"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/cmd/sagabridge/internal/devenv"
	"github.com/sagabridge/sagabridge/sagas/registry"
)

func newDevCmd(sagas *registry.Registry) *cobra.Command {
	opts := devenv.Options{Sagas: sagas}
	var level, adminListen string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the OrderSaga demo, or your own config (-c), on an embedded broker and engine",
		Long: `Run the OrderSaga demo: an embedded broker, the embedded engine, simulated
legacy services and a stream of orders whose outcomes are printed as they
arrive. The admin API and metrics are served on --admin, so the other
commands (workflow get, dlq list, publish) work against it with no config.
Ctrl-C (or SIGTERM) stops it, prints the summary and exits 0.

With -c, dev runs your own bridge.yaml and saga files instead, on the
in-process broker (--broker nats or kafka; it prints the address to
publish to) and the embedded engine, and prints each outcome.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.Validate(); err != nil {
				return usageErr(err)
			}
			log, err := newLogger(level, true)
			if err != nil {
				return usageErr(err)
			}
			defer func() { _ = log.Sync() }()
			opts.Logger = log
			tp, stopTracing, err := startTracing(cmd.Context(), log)
			if err != nil {
				return err
			}
			defer stopTracing()
			opts.TracerProvider = tp
			out := cmd.OutOrStdout()
			opts.Out = out
			metrics := admin.NewMetrics(admin.MetricsOptions{Version: version})
			opts.Metrics = metrics
			opts.Serve = func(ctx context.Context, cfg *config.Config, b *bridge.Bridge) (func(context.Context) error, error) {
				cfg.Admin.Listen = adminListen
				adm, err := startAdmin(ctx, cfg, b, metrics, log)
				if err != nil {
					return nil, err
				}
				broker := b.BrokerURL()
				if cfg.Broker.Kind == "kafka" {
					broker = "kafka://" + strings.Join(cfg.Broker.Kafka.Brokers, ",")
				}
				fmt.Fprintf(out, "broker     %s\nadmin API  %s  (sagabridge workflow list, sagabridge dlq list)\nmetrics    %s/metrics\nconsole    %s/ui/\n\n",
					broker, adm.URL(), adm.MetricsURL(), adm.URL())
				return adm.Shutdown, nil
			}
			if opts.Config != "" {
				err = devenv.RunConfig(cmd.Context(), opts)
			} else {
				_, err = devenv.Run(cmd.Context(), opts)
			}
			if errors.Is(err, context.Canceled) && cmd.Context().Err() != nil {
				// Interrupted, as the user asked: the summary is printed.
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringVar(&opts.DataDir, "data", "data/dev", "directory for the NATS store and the workflow database")
	cmd.Flags().StringVar(&opts.Broker, "broker", "nats", "embedded broker: nats or kafka")
	cmd.Flags().StringVarP(&opts.Config, "config", "c", "", "run this bridge.yaml (and its saga files) instead of the demo, on the embedded broker and engine")
	cmd.Flags().IntVar(&opts.Orders, "orders", 40, "orders to publish (0: until interrupted)")
	cmd.Flags().Float64Var(&opts.Rate, "rate", 20, "orders per second")
	cmd.Flags().Float64Var(&opts.PaymentFailShare, "fail-share", 0.25, "share of orders whose payment is declined (0..1)")
	cmd.Flags().StringVar(&opts.Legacy, "legacy", "", "run the legacy order choreography beside a migrating OrderSaga: shadow, canary:<percent> or active")
	cmd.Flags().BoolVar(&opts.LegacySkipRelease, "legacy-skip-release", false, "make the legacy inventory service skip releasing stock (a shadow saga reports it)")
	cmd.Flags().BoolVar(&opts.Linger, "linger", false, "after the orders, keep serving the admin API and the console until interrupted")
	cmd.Flags().StringVar(&level, "log-level", "warn", "debug, info, warn or error")
	cmd.Flags().StringVar(&adminListen, "admin", admin.DefaultListen, "address to serve the admin API and metrics on (what the other commands' --admin reach)")
	return cmd
}
