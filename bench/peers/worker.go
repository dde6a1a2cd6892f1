package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Systems that run in a worker process of this module.
const (
	sysTemporal       = "temporal"        // SQLite file, WAL
	sysTemporalMemory = "temporal-memory" // SQLite in memory, as temporaltest runs
	sysDBOS           = "dbos"            // PostgreSQL
	sysDBOSSQLite     = "dbos-sqlite"     // SQLite file
)

// workerMain is one round of one system: start it, warm it up, measure,
// print the Result as JSON on stdout, stop it.
func workerMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("peers worker", flag.ContinueOnError)
	system := fs.String("system", "", "temporal, temporal-memory, dbos or dbos-sqlite")
	c := fs.Int("concurrency", 1, "sagas in flight")
	n := fs.Int("sagas", 100, "sagas to measure")
	dir := fs.String("dir", "", "directory for the system's files")
	pgURL := fs.String("pg-url", "", "PostgreSQL server for dbos (a fresh database is made on it)")
	serverPids := fs.String("server-pids", "", "pids of server processes whose CPU and memory count too, comma separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("worker: --dir is required")
	}
	var servers []int
	if *serverPids != "" {
		var err error
		if servers, err = splitInts(*serverPids); err != nil {
			return fmt.Errorf("--server-pids: %w", err)
		}
	}
	out := newOutcomes()
	var sys saga
	switch *system {
	case sysTemporal, sysTemporalMemory:
		s, err := startTemporal(*dir, *system == sysTemporalMemory, out)
		if err != nil {
			return err
		}
		sys = s
	case sysDBOS:
		if *pgURL == "" {
			return fmt.Errorf("worker: dbos needs --pg-url")
		}
		name := "sagabench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
		dbURL, drop, err := freshDatabase(ctx, *pgURL, name)
		if err != nil {
			return err
		}
		defer drop()
		s, err := startDBOS(ctx, dbURL, out)
		if err != nil {
			return err
		}
		sys = s
	case sysDBOSSQLite:
		s, err := startDBOS(ctx, "sqlite:"+filepath.Join(*dir, "dbos.db"), out)
		if err != nil {
			return err
		}
		sys = s
	default:
		return fmt.Errorf("worker: unknown system %q", *system)
	}
	defer sys.close()
	if _, err := measure(ctx, sys, out, *system+"-warmup", warmupConcurrency, warmupSagas, nil); err != nil {
		return fmt.Errorf("%s warm-up: %w", *system, err)
	}
	res, err := measure(ctx, sys, out, *system, *c, *n, servers)
	if err != nil {
		return fmt.Errorf("%s: %w", *system, err)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// workerArgs is the command line of one worker round.
func workerArgs(system string, c, n int, dir, pgURL string, servers []int) []string {
	args := []string{"worker", "--system", system, "--concurrency", strconv.Itoa(c), "--sagas", strconv.Itoa(n), "--dir", dir}
	if pgURL != "" {
		args = append(args, "--pg-url", pgURL)
	}
	if len(servers) > 0 {
		s := make([]string, len(servers))
		for i, p := range servers {
			s[i] = strconv.Itoa(p)
		}
		args = append(args, "--server-pids", strings.Join(s, ","))
	}
	return args
}
