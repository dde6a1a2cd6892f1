// Command gosaga is a worker of one's own: sagabridge's bridge running a
// Go saga this main registers (a hotel booking), beside the declarative
// sagas its config lists. docs/go-sagas.md walks through it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/cmd/sagabridge/brokers"
	"github.com/sagabridge/sagabridge/compensations"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/registry"
	"github.com/sagabridge/sagabridge/topics"
)

// bookTrip holds a room, then charges the card; if the charge fails, the
// room is released.
func bookTrip() sagas.Saga {
	release := compensations.Compensation{
		Name:        "release-room",
		Command:     topics.CommandSpec{Topic: "hotel.commands", Type: "room.release", ReplyEvent: "room.released"},
		Timeout:     time.Minute,
		MaxAttempts: 5,
		Backoff:     sagas.Backoff{Initial: time.Second, Max: time.Minute},
	}
	return sagas.Saga{Name: "BookTrip", Steps: []sagas.Step{
		{
			Name:         "hold-room",
			Command:      topics.CommandSpec{Topic: "hotel.commands", Type: "room.hold", ReplyEvent: "room.held"},
			Timeout:      time.Minute,
			MaxAttempts:  3,
			Compensation: &release,
		},
		{
			Name:        "charge-card",
			Command:     topics.CommandSpec{Topic: "payment.commands", Type: "card.charge", ReplyEvent: "card.charged"},
			Timeout:     time.Minute,
			MaxAttempts: 3,
		},
	}}
}

// register is everything this worker adds to sagabridge; the test
// registers the same.
func register(r *registry.Registry) error {
	return r.RegisterSaga(bookTrip())
}

func main() {
	file := flag.String("c", "bridge.yaml", "config file")
	flag.Parse()
	if err := run(*file); err != nil {
		fmt.Fprintln(os.Stderr, "gosaga:", err)
		os.Exit(1)
	}
}

func run(file string) error {
	sagaRegistry := registry.New()
	if err := register(sagaRegistry); err != nil {
		return err
	}
	cfg, err := config.Load(file)
	if err != nil {
		return err
	}
	log, err := zap.NewProduction()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := bridge.New(ctx, cfg, bridge.Options{Sagas: sagaRegistry, Connect: brokers.Connect, Logger: log})
	if err != nil {
		return err
	}
	runErr := b.Run(ctx)
	if errors.Is(runErr, context.Canceled) {
		runErr = nil // stopped by a signal
	}
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return errors.Join(runErr, b.Close(closeCtx))
}
