package benchmark_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/sagabridge/sagabridge/cmd/sagabridge/internal/benchmark"
)

// brokerHelperEnv makes this test binary serve a broker or a driver
// instead of running tests (its first argument says which): it stands in
// for `sagabridge bench broker` and `sagabridge bench driver`.
const brokerHelperEnv = "SAGABRIDGE_BENCH_BROKER_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(brokerHelperEnv) == "1" && len(os.Args) > 1 {
		os.Exit(serveHelper(os.Args[1], os.Args[2:]))
	}
	os.Exit(m.Run())
}

func serveHelper(role string, args []string) int {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	kind := fs.String("kind", "", "")
	store := fs.String("store", "", "")
	addr := fs.String("addr", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	switch role {
	case "broker":
		err = benchmark.ServeBroker(context.Background(), *kind, *store, os.Stdin, os.Stdout)
	case "driver":
		err = benchmark.ServeDriver(context.Background(), *kind, *addr, os.Stdin, os.Stdout)
	default:
		err = fmt.Errorf("no helper %q", role)
	}
	if err != nil {
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
		BrokerCommand: []string{os.Args[0], "broker"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 4 {
		t.Fatalf("got %d results, want direct and bridge on two brokers: %+v", len(rep.Results), rep.Results)
	}
	brokerCPU := map[string]float64{}
	for _, r := range rep.Results {
		if r.Sagas != sagas || !r.BrokerProcess {
			t.Errorf("%s %s: %d sagas, broker process %v; want %d sagas in a broker process", r.Broker, r.Mode, r.Sagas, r.BrokerProcess, sagas)
		}
		if r.CPUSecondsPer1k <= 0 || r.BrokerCPUSecondsPer1k <= 0 {
			t.Errorf("%s %s: CPU %.3f s/1k, broker CPU %.3f s/1k; want both above zero", r.Broker, r.Mode, r.CPUSecondsPer1k, r.BrokerCPUSecondsPer1k)
		}
		brokerCPU[r.Broker] += r.BrokerCPUSecondsPer1k
	}
	// Both paths use the broker: the bridge for its events and outcomes,
	// the direct path for its outcomes. Asserted over both paths: the
	// direct path's 20 outcomes cost the broker little.
	for _, b := range []string{"nats", "kafka"} {
		if brokerCPU[b] <= 0 {
			t.Errorf("%s: the broker process spent no CPU on either path", b)
		}
	}
}

func TestServeBrokerRefusesAnUnknownKind(t *testing.T) {
	err := benchmark.ServeBroker(context.Background(), "rabbitmq", t.TempDir(), nil, nil)
	if err == nil {
		t.Fatal("ServeBroker accepted kind rabbitmq")
	}
}

// With the driver in a process of its own too, both paths' sagas complete
// through it (it hears every outcome, and publishes the bridge path's
// events), and its CPU is counted apart.
func TestRunWithDriverInItsOwnProcess(t *testing.T) {
	t.Setenv(brokerHelperEnv, "1") // inherited by the child processes only
	const sagas = 40
	rep, err := benchmark.Run(context.Background(), benchmark.Options{
		Brokers:       []string{"nats", "kafka"},
		Concurrency:   []int{4},
		Sagas:         sagas,
		DataDir:       t.TempDir(),
		BrokerCommand: []string{os.Args[0], "broker"},
		DriverCommand: []string{os.Args[0], "driver"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 4 {
		t.Fatalf("got %d results, want direct and bridge on two brokers: %+v", len(rep.Results), rep.Results)
	}
	var driverCPU float64
	for _, r := range rep.Results {
		if r.Sagas != sagas || !r.DriverProcess || !r.BrokerProcess {
			t.Errorf("%s %s: %d sagas, broker process %v, driver process %v; want %d sagas, both", r.Broker, r.Mode, r.Sagas, r.BrokerProcess, r.DriverProcess, sagas)
		}
		if r.CPUSecondsPer1k <= 0 || r.DriverCPUSecondsPer1k <= 0 {
			t.Errorf("%s %s: CPU %.3f s/1k, driver CPU %.3f s/1k; want both above zero", r.Broker, r.Mode, r.CPUSecondsPer1k, r.DriverCPUSecondsPer1k)
		}
		driverCPU += r.DriverCPUSecondsPer1k
		// Each saga writes its start, its raise and the completions of
		// its work items; the writer groups some of them.
		if r.EngineTxPerSaga <= 0 {
			t.Errorf("%s %s: %.2f engine transactions per saga, want some", r.Broker, r.Mode, r.EngineTxPerSaga)
		}
	}
	if driverCPU <= 0 {
		t.Error("the driver process spent no CPU")
	}
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"driver CPU s/1k", "engine tx/saga"} {
		if !strings.Contains(b.String(), col) {
			t.Errorf("table has no %q column:\n%s", col, b.String())
		}
	}
}

func TestDriverProcessNeedsABrokerProcess(t *testing.T) {
	err := benchmark.Options{Sagas: 1, DriverCommand: []string{"x"}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "driver process") {
		t.Fatalf("Validate = %v, want the driver process refused without a broker process", err)
	}
}

func TestServeDriverRefusesAnUnknownKind(t *testing.T) {
	err := benchmark.ServeDriver(context.Background(), "rabbitmq", "127.0.0.1:1", strings.NewReader(""), io.Discard)
	if err == nil {
		t.Fatal("ServeDriver accepted kind rabbitmq")
	}
}
