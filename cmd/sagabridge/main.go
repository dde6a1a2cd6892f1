// Command sagabridge is the worker and its tools. main only wires flags to
// the packages; see bridge.New for how the worker is put together.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/registry"
)

// version is set by the linker: -ldflags "-X main.version=…".
var version = "dev"

// Exit codes scripts can rely on.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitNotFound = 3
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func main() {
	sagas, err := ownSagas()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sagabridge:", err)
		os.Exit(exitFailure)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(sagas)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "sagabridge:", err)
	code := exitFailure
	var ee exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if code == exitUsage && cmd != nil {
		fmt.Fprintf(os.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	os.Exit(code)
}

// ownSagas are the Go sagas this worker runs: the order demo's, registered
// as any user's main registers its own (docs/go-sagas.md).
func ownSagas() (*registry.Registry, error) {
	sagas := registry.New()
	if err := order.Register(sagas); err != nil {
		return nil, fmt.Errorf("register the order saga: %w", err)
	}
	return sagas, nil
}

// Environment variables that stand in for flags; a flag given on the
// command line wins.
var flagEnv = map[string]string{
	"config":    "SAGABRIDGE_CONFIG",
	"admin":     "SAGABRIDGE_ADMIN",
	"log-level": "SAGABRIDGE_LOG_LEVEL",
}

// newRoot is the command line of a worker running sagas (and, always, the
// config's declarative ones).
func newRoot(sagas *registry.Registry) *cobra.Command {
	root := &cobra.Command{
		Use:           "sagabridge",
		Short:         "Bridge pub/sub domain events to Dapr workflow sagas",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Environment stand-ins for flags the command line left out.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			for name, env := range flagEnv {
				f := cmd.Flags().Lookup(name)
				v, set := os.LookupEnv(env)
				if f == nil || f.Changed || !set {
					continue
				}
				if err := f.Value.Set(v); err != nil {
					return usageErr(fmt.Errorf("$%s: %w", env, err))
				}
				f.Changed = true
			}
			return nil
		},
	}
	root.SetVersionTemplate("sagabridge {{.Version}}\n")
	root.SetFlagErrorFunc(flagUsageErr)
	root.AddCommand(
		newRunCmd(sagas),
		newDevCmd(sagas),
		newValidateCmd(sagas),
		newVetCmd(),
		newVersionCmd(),
		newBenchCmd(),
		newPublishCmd(),
		newDLQCmd(sagas),
		newWorkflowCmd(),
		newMigrateCmd(),
	)
	applyConventions(root)
	return root
}

// groupAnnotation marks a command that only groups others: run alone it
// prints its usage and exits 2.
const groupAnnotation = "sagabridge/group"

// applyConventions gives every command the same habits: argument errors
// and unknown subcommands exit 2 (cobra's own would exit 1), a command
// group run without a subcommand prints its usage and exits 2, and flags
// with an environment stand-in say so in their help.
func applyConventions(c *cobra.Command) {
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[groupAnnotation] = "true"
		c.SuggestionsMinimumDistance = 2
		c.Args = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return usageErr(errors.New(msg))
		}
		c.RunE = func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(cmd.ErrOrStderr())
			_ = cmd.Usage()
			return usageErr(fmt.Errorf("%s needs a subcommand", cmd.CommandPath()))
		}
	} else if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				return usageErr(err)
			}
			return nil
		}
	}
	for name, env := range flagEnv {
		if f := c.LocalFlags().Lookup(name); f != nil && !strings.Contains(f.Usage, "$"+env) {
			f.Usage += " [$" + env + "]"
		}
	}
	for _, sub := range c.Commands() {
		applyConventions(sub)
	}
}

func newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if output != "table" {
				return printAs(cmd.OutOrStdout(), output, map[string]string{
					"version": version, "go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH,
				})
			}
			fmt.Fprintln(cmd.OutOrStdout(), "sagabridge", version)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}
