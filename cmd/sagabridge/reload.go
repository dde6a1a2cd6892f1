package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
)

// reloadOnHUP re-reads the config file on SIGHUP and applies what the
// bridge can change while it runs: the migration modes and canary
// percentages. A file that does not validate, or that changes anything
// else, is logged and ignored; the worker keeps its current config.
func reloadOnHUP(ctx context.Context, file string, b *bridge.Bridge, log *zap.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			next, err := config.Load(file)
			if err != nil {
				log.Error("config reload: file rejected; keeping the running config", zap.Error(err))
				continue
			}
			if err := b.UpdateMigration(next); err != nil {
				log.Error("config reload: not applied; keeping the running config", zap.Error(err))
				continue
			}
			for name, w := range next.Migration.Workflows {
				log.Info("config reload: migration applied to new instances", zap.String("workflow", name),
					zap.String("mode", w.Mode), zap.Int("percent", w.Percent))
			}
		}
	}()
}
