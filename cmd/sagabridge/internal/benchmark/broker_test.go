package benchmark_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/sagabridge/sagabridge/cmd/sagabridge/internal/benchmark"
)

// brokerHelperEnv makes this test binary serve a broker instead of running
// tests: it stands in for `sagabridge bench broker`.
const brokerHelperEnv = "SAGABRIDGE_BENCH_BROKER_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(brokerHelperEnv) == "1" {
		os.Exit(serveBrokerHelper())
	}
	os.Exit(m.Run())
}

func serveBrokerHelper() int {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	kind := fs.String("kind", "", "")
	store := fs.String("store", "", "")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if err := benchmark.ServeBroker(context.Background(), *kind, *store, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestRunWithBrokerInItsOwnProcess(t *testing.T) {
	t.Setenv(brokerHelperEnv, "1") // inherited by the broker process only
	const sagas = 20
	rep, err := benchmark.Run(context.Background(), benchmark.Options{
		Brokers:       []string{"nats", "kafka"},
		Concurrency:   []int{4},
		Sagas:         sagas,
		DataDir:       t.TempDir(),
		BrokerCommand: []string{os.Args[0]},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 4 {
		t.Fatalf("got %d results, want direct and bridge on two brokers: %+v", len(rep.Results), rep.Results)
	}
	for _, r := range rep.Results {
		if r.Sagas != sagas || !r.BrokerProcess {
			t.Errorf("%s %s: %d sagas, broker process %v; want %d sagas in a broker process", r.Broker, r.Mode, r.Sagas, r.BrokerProcess, sagas)
		}
		// Both paths use the broker: the bridge for its events and
		// outcomes, the direct path for its outcomes.
		if r.BrokerCPUSecondsPer1k <= 0 || r.CPUSecondsPer1k <= 0 {
			t.Errorf("%s %s: CPU %.3f s/1k, broker CPU %.3f s/1k; want both above zero", r.Broker, r.Mode, r.CPUSecondsPer1k, r.BrokerCPUSecondsPer1k)
		}
	}
}

func TestServeBrokerRefusesAnUnknownKind(t *testing.T) {
	err := benchmark.ServeBroker(context.Background(), "rabbitmq", t.TempDir(), nil, nil)
	if err == nil {
		t.Fatal("ServeBroker accepted kind rabbitmq")
	}
}
