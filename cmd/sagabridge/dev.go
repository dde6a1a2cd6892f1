package main

import (
	"github.com/spf13/cobra"

	"github.com/sagabridge/sagabridge/bridge/devenv"
)

func newDevCmd() *cobra.Command {
	var opts devenv.Options
	var level string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the OrderSaga demo: embedded NATS, embedded engine, simulated services",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(level, true)
			if err != nil {
				return exitError{exitUsage, err}
			}
			defer func() { _ = log.Sync() }()
			opts.Logger = log
			tp, stopTracing, err := startTracing(cmd.Context(), log)
			if err != nil {
				return err
			}
			defer stopTracing()
			opts.TracerProvider = tp
			opts.Out = cmd.OutOrStdout()
			_, err = devenv.Run(cmd.Context(), opts)
			return err
		},
	}
	cmd.Flags().StringVar(&opts.DataDir, "data", "data/dev", "directory for the NATS store and the workflow database")
	cmd.Flags().StringVar(&opts.Broker, "broker", "nats", "embedded broker: nats or kafka")
	cmd.Flags().IntVar(&opts.Orders, "orders", 40, "orders to publish (0: until interrupted)")
	cmd.Flags().Float64Var(&opts.Rate, "rate", 20, "orders per second")
	cmd.Flags().Float64Var(&opts.PaymentFailShare, "fail-share", 0.25, "share of orders whose payment is declined (0..1)")
	cmd.Flags().StringVar(&opts.Legacy, "legacy", "", "run the legacy order choreography beside a migrating OrderSaga: shadow, canary:<percent> or active")
	cmd.Flags().BoolVar(&opts.LegacySkipRelease, "legacy-skip-release", false, "make the legacy inventory service skip releasing stock (a shadow saga reports it)")
	cmd.Flags().StringVar(&level, "log-level", "warn", "debug, info, warn or error")
	return cmd
}
