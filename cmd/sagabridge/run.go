package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/admin"
	"github.com/sagabridge/sagabridge/cmd/sagabridge/brokers"
	"github.com/sagabridge/sagabridge/sagas/registry"
)

func newRunCmd(sagas *registry.Registry) *cobra.Command {
	var file, level string
	var shutdown time.Duration
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the worker",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(level, false)
			if err != nil {
				return exitError{exitUsage, err}
			}
			defer func() { _ = log.Sync() }()
			// validate's loader: the same problems, messages and exit code.
			cfg, _, err := loadConfig(file, sagas)
			if err != nil {
				return exitError{exitUsage, err}
			}
			ctx := cmd.Context()
			tp, stopTracing, err := startTracing(ctx, log)
			if err != nil {
				return err
			}
			defer stopTracing()
			metrics := admin.NewMetrics(admin.MetricsOptions{Version: version})
			b, err := bridge.New(ctx, cfg, bridge.Options{Logger: log, Metrics: metrics, TracerProvider: tp, Connect: brokers.Connect, Sagas: sagas})
			if errors.Is(err, bridge.ErrConfig) {
				// What validate reports, with its exit code.
				return exitError{exitUsage, err}
			}
			if err != nil {
				return err
			}
			adm, err := startAdmin(ctx, cfg, b, metrics, log)
			if err != nil {
				return errors.Join(err, b.Close(context.WithoutCancel(ctx)))
			}
			reloadOnHUP(ctx, file, b, log)
			runErr := b.Run(ctx)
			if ctx.Err() != nil && errors.Is(runErr, context.Canceled) {
				// Stopped while it was still subscribing: a clean stop.
				runErr = nil
			}
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdown)
			defer cancel()
			if err := b.Close(closeCtx); err != nil {
				log.Warn("shutdown", zap.Error(err))
			}
			if err := adm.Shutdown(closeCtx); err != nil {
				log.Warn("admin shutdown", zap.Error(err))
			}
			s := b.Stats().Snapshot()
			log.Info("stopped", zap.Int64("consumed", s.Consumed), zap.Int64("started", s.Started),
				zap.Int64("raised", s.Raised), zap.Int64("dead_lettered", s.DeadLettered))
			return runErr
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "bridge.yaml", "config file")
	cmd.Flags().StringVar(&level, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().DurationVar(&shutdown, "shutdown-timeout", 30*time.Second, "how long to wait for the engine to stop")
	return cmd
}

// newLogger builds zap: JSON with RFC 3339 times for `run`, console for
// `dev`.
func newLogger(level string, console bool) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	cfg := zap.NewProductionConfig()
	cfg.EncoderConfig.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	if console {
		cfg = zap.NewDevelopmentConfig()
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	// A stack trace says where a log line was written, which an error
	// line already says in its message: only a panic gets one (the
	// handler's recoverer logs the panic's own stack).
	cfg.DisableStacktrace = true
	log, err := cfg.Build(zap.AddStacktrace(zapcore.DPanicLevel))
	if err != nil {
		return nil, err
	}
	// A library that prints with the standard log package goes through
	// zap too (at info: such lines carry no level).
	zap.RedirectStdLog(log.Named("stdlog"))
	return log, nil
}
