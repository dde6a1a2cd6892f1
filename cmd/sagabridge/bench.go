package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sagabridge/sagabridge/cmd/sagabridge/internal/benchmark"
)

// benchFlags are the flags of bench; the string ones complete opts when it runs.
type benchFlags struct {
	opts                                                         benchmark.Options
	brokers, modes, conc, out, commit, level, cpuProfile, output string
	brokerProcess, driverProcess                                 bool
}

func newBenchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure sagas/s and latency through the bridge and directly against the engine",
		Long: `Measure sagas/s and latency through the bridge and directly against the engine.
With -o json or yaml the report (what --out writes to bench.json) goes to
stdout and the progress lines to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBench(cmd, &f) },
	}
	f.register(cmd)
	cmd.AddCommand(newBenchBrokerCmd(), newBenchDriverCmd(), newBenchLongCmd())
	return cmd
}

func (f *benchFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.brokers, "brokers", "nats,kafka", "brokers to measure: nats, kafka")
	cmd.Flags().StringVar(&f.modes, "modes", "direct,bridge", "paths to measure: direct (engine client), bridge (events on the broker)")
	cmd.Flags().StringVar(&f.conc, "concurrency", "1,8,32,128", "sagas in flight, comma separated")
	cmd.Flags().IntVar(&f.opts.Sagas, "sagas", 2000, "sagas per measurement")
	cmd.Flags().IntVar(&f.opts.Parked, "parked", 10000, "instances left waiting for an event, for the memory figure (0: skip)")
	cmd.Flags().StringVar(&f.opts.DataDir, "data", "data/bench", "directory for databases and broker stores")
	cmd.Flags().IntVar(&f.opts.EngineParallelism, "engine-parallelism", 128, "embedded engine work items at once")
	cmd.Flags().IntVar(&f.opts.BrokerConcurrency, "broker-concurrency", 128, "messages per topic handled at once")
	cmd.Flags().StringVar(&f.out, "out", "", "directory for bench.json and bench.svg")
	cmd.Flags().StringVar(&f.commit, "commit", "", "commit recorded in the report")
	cmd.Flags().StringVar(&f.level, "log-level", "error", "log level")
	cmd.Flags().StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile (go tool pprof)")
	cmd.Flags().StringVarP(&f.output, "output", "o", "table", "output format: table, json or yaml")
	cmd.Flags().StringVar(&f.opts.DaprGRPC, "dapr-grpc", "",
		"run the engine in the daprd sidecar at this host:port (its gRPC API) instead of the embedded one; the parked case is skipped")
	cmd.Flags().BoolVar(&f.brokerProcess, "broker-process", false,
		"run the broker in a process of its own (this binary), reached over loopback TCP; the CPU column is then the worker's alone")
	cmd.Flags().BoolVar(&f.driverProcess, "driver-process", true,
		"with --broker-process, also run the driver (the publisher of the bridge path's events and the outcome listener, standing in for other services) in a process of its own, so the worker's CPU counts it on neither path")
}

// complete fills f.opts from the string flags and validates it.
func (f *benchFlags) complete() error {
	log, err := newLogger(f.level, true)
	if err != nil {
		return exitError{exitUsage, err}
	}
	f.opts.Logger = log
	f.opts.Brokers = strings.Split(f.brokers, ",")
	f.opts.Modes = strings.Split(f.modes, ",")
	if f.brokerProcess {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		f.opts.BrokerCommand = []string{self, "bench", "broker"}
		if f.driverProcess {
			f.opts.DriverCommand = []string{self, "bench", "driver"}
		}
	}
	for _, c := range strings.Split(f.conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil {
			return exitError{exitUsage, fmt.Errorf("--concurrency: %w", err)}
		}
		f.opts.Concurrency = append(f.opts.Concurrency, n)
	}
	if err := f.opts.Validate(); err != nil {
		return usageErr(err)
	}
	return nil
}

func runBench(cmd *cobra.Command, f *benchFlags) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	if err := f.complete(); err != nil {
		return err
	}
	w := progressWriter(cmd, f.output)
	f.opts.Progress = func(r benchmark.Result) {
		fmt.Fprintf(w, "  %-5s %-6s in flight %3d: %6.0f sagas/s, p50 %.1f ms, p99 %.1f ms\n",
			r.Broker, r.Mode, r.Concurrency, r.PerSecond, r.P50Ms, r.P99Ms)
	}
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := benchmark.Run(cmd.Context(), f.opts)
	if err != nil {
		return err
	}
	rep.Commit = f.commit
	rep.Machine = fmt.Sprintf("%d cores, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	return writeBenchReport(cmd, w, f.output, f.out, rep)
}

// writeBenchReport prints the report as -o asks and, with --out, writes
// bench.json and bench.svg there.
func writeBenchReport(cmd *cobra.Command, w io.Writer, output, out string, rep benchmark.Report) error {
	if output != "table" {
		if err := printAs(cmd.OutOrStdout(), output, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "\n%s — %s — commit %s\n", rep.Date, rep.Machine, rep.Commit)
		if err := rep.WriteTable(w); err != nil {
			return err
		}
	}
	if out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		if err := rep.WriteJSON(filepath.Join(out, "bench.json")); err != nil {
			return err
		}
		if err := rep.WriteSVG(filepath.Join(out, "bench.svg")); err != nil {
			return err
		}
		fmt.Fprintf(w, "\nwrote %s and %s\n", filepath.Join(out, "bench.json"), filepath.Join(out, "bench.svg"))
	}
	return nil
}

func newBenchLongCmd() *cobra.Command {
	var opts benchmark.LongOptions
	var out, commit, level, output string
	var retention time.Duration
	cmd := &cobra.Command{
		Use:   "long",
		Short: "Run many sagas through the embedded engine: throughput, database and memory per window, restart, parked sagas",
		Long: `Run many sagas through the embedded engine: throughput, database and memory
per window, restart, parked sagas. With -o json or yaml the report (what
--out writes to long.json) goes to stdout and the progress lines to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			log, err := newLogger(level, true)
			if err != nil {
				return exitError{exitUsage, err}
			}
			opts.Logger = log
			if cmd.Flags().Changed("retention") {
				opts.Retention = &retention
			}
			if err := opts.Validate(); err != nil {
				return exitError{exitUsage, err}
			}
			w := progressWriter(cmd, output)
			opts.Progress = func(x benchmark.Window) {
				fmt.Fprintf(w, "  window %2d (%8d sagas, %6.0f s): %6.0f sagas/s, p99 %.1f ms, RSS %.0f MiB, database %.1f MiB, %d instances kept\n",
					x.Index, x.Done, x.AtSeconds, x.PerSecond, x.P99Ms, x.RSSMiB, x.DBMiB, x.Instances)
			}
			rep, err := benchmark.RunLong(cmd.Context(), opts)
			if err != nil {
				return err
			}
			rep.Commit = commit
			rep.Machine = fmt.Sprintf("%d cores, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
			if output != "table" {
				if err := printAs(cmd.OutOrStdout(), output, rep); err != nil {
					return err
				}
			} else if err := rep.WriteTable(w); err != nil {
				return err
			}
			if out != "" {
				if err := os.MkdirAll(out, 0o755); err != nil {
					return err
				}
				if err := rep.WriteJSON(filepath.Join(out, "long.json")); err != nil {
					return err
				}
				if err := rep.WriteSVG(filepath.Join(out, "long.svg")); err != nil {
					return err
				}
				fmt.Fprintf(w, "\nwrote %s and %s\n", filepath.Join(out, "long.json"), filepath.Join(out, "long.svg"))
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&opts.Sagas, "sagas", 1_000_000, "sagas in all")
	cmd.Flags().IntVar(&opts.Window, "window", 100_000, "sagas per measured window")
	cmd.Flags().IntVar(&opts.Concurrency, "concurrency", 128, "sagas in flight")
	cmd.Flags().IntVar(&opts.Parked, "parked", 100_000, "sagas left waiting for their event, then approved (0: skip)")
	cmd.Flags().StringVar(&opts.DataDir, "data", "data/bench-long", "directory for the database and broker store")
	cmd.Flags().DurationVar(&retention, "retention", 0,
		"purge finished sagas this long after they finished, whatever their outcome (engine.retention.*; 0 keeps them all); unset: the configuration's defaults, which purge nothing within a run")
	cmd.Flags().StringVar(&out, "out", "", "directory for long.json and long.svg")
	cmd.Flags().StringVar(&commit, "commit", "", "commit recorded in the report")
	cmd.Flags().StringVar(&level, "log-level", "error", "log level")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}

// progressWriter is where a benchmark's progress lines go: stdout beside
// the table, stderr when stdout carries a JSON or YAML report.
func progressWriter(cmd *cobra.Command, output string) io.Writer {
	if output == "table" {
		return cmd.OutOrStdout()
	}
	return cmd.ErrOrStderr()
}

// newBenchBrokerCmd is the broker process of `bench --broker-process`.
func newBenchBrokerCmd() *cobra.Command {
	var kind, store string
	cmd := &cobra.Command{
		Use:    "broker",
		Short:  "Serve a broker for `bench --broker-process` until stdin closes",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return benchmark.ServeBroker(cmd.Context(), kind, store, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "nats", "nats or kafka")
	cmd.Flags().StringVar(&store, "store", "", "directory for the broker's data")
	return cmd
}

// newBenchDriverCmd is the driver process of `bench --broker-process`.
func newBenchDriverCmd() *cobra.Command {
	var kind, addr string
	cmd := &cobra.Command{
		Use:    "driver",
		Short:  "Publish a benchmark's events and report its outcomes, for `bench --broker-process`, until stdin closes",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return benchmark.ServeDriver(cmd.Context(), kind, addr, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "nats", "nats or kafka")
	cmd.Flags().StringVar(&addr, "addr", "", "the broker's address (NATS URL, or Kafka brokers separated by commas)")
	return cmd
}
