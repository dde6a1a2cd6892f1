// Command peers measures sagabridge next to what a team would pick instead
// (Temporal, DBOS Transact), running the same saga on the same machine in
// the same run, and writes a table, peers.json and peers.svg.
//
// Each system runs in a process of its own, started fresh for every round,
// and the rounds alternate the order of the systems (a, b, c, then c, b, a)
// so that this machine's drifting speed weighs on all of them alike:
//
//	go run . --repo ../.. --out ../../docs/bench
//
// `peers worker` is one round of one system, started by the run above.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		err = workerMain(ctx, os.Args[2:])
	} else {
		err = runMain(ctx, os.Args[1:])
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

func splitInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func joinArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"") {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
