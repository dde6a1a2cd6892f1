package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dbos-inc/dbos-transact-golang/dbos"
	_ "github.com/dbos-inc/dbos-transact-golang/dbos/driver/sqlite"
)

// dbosSystem is DBOS Transact for Go: the workflows run in this process and
// checkpoint every step in the system database (PostgreSQL, or SQLite).
type dbosSystem struct {
	ctx  dbos.Context
	saga dbos.Workflow[string, string]
}

func startDBOS(ctx context.Context, databaseURL string, out *outcomes) (*dbosSystem, error) {
	dctx, err := dbos.NewContext(ctx, dbos.Config{
		AppName:            "sagabench",
		DatabaseURL:        databaseURL,
		Logger:             slog.New(slog.DiscardHandler),
		ApplicationVersion: "bench",
	})
	if err != nil {
		return nil, fmt.Errorf("dbos: %w", err)
	}
	saga := func(ctx dbos.Context, id string) (string, error) {
		for i := 1; i <= 3; i++ {
			if _, err := dbos.RunAsStep(ctx, func(context.Context) (int, error) { return participant(i), nil },
				dbos.WithStepName("Step")); err != nil {
				return "", fmt.Errorf("step %d: %w", i, err)
			}
		}
		if _, err := dbos.Recv[bool](ctx, approvalEvent, approvalWait); err != nil {
			return "", fmt.Errorf("approval: %w", err)
		}
		_, err := dbos.RunAsStep(ctx, func(context.Context) (string, error) { out.deliver(id); return "", nil },
			dbos.WithStepName("Outcome"))
		return "", err
	}
	dbos.RegisterWorkflow(dctx, saga, dbos.WithWorkflowName(sagaName))
	if err := dbos.Launch(dctx); err != nil {
		return nil, fmt.Errorf("dbos launch: %w", err)
	}
	return &dbosSystem{ctx: dctx, saga: saga}, nil
}

func (s *dbosSystem) submit(_ context.Context, id string) error {
	if _, err := dbos.RunWorkflow(s.ctx, s.saga, id, dbos.WithWorkflowID(id)); err != nil {
		return err
	}
	return dbos.Send(s.ctx, id, true, approvalEvent)
}

func (s *dbosSystem) close() { _ = dbos.Shutdown(s.ctx, 10*time.Second) }
