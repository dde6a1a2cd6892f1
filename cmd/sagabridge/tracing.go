package main

import (
	"context"
	"os"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/bridge/tracing"
)

// startTracing builds the tracer provider the OTEL_* environment asks for
// (off unless it asks; see bridge/tracing). The returned stop flushes the
// spans still batched, bounded so that a dead collector cannot hold up
// the exit.
func startTracing(ctx context.Context, log *zap.Logger) (trace.TracerProvider, func(), error) {
	s, err := tracing.FromEnv(os.Getenv)
	if err != nil {
		return nil, nil, exitError{exitUsage, err}
	}
	tp, shutdown, err := tracing.Start(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	if s.Enabled {
		log.Info("tracing on: spans exported over OTLP", zap.String("protocol", s.Protocol))
	}
	stop := func() {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(c); err != nil {
			log.Warn("tracing shutdown", zap.Error(err))
		}
	}
	return tp, stop, nil
}
