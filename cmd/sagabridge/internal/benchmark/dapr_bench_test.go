package benchmark_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/sagabridge/sagabridge/cmd/sagabridge/internal/benchmark"
	"github.com/sagabridge/sagabridge/internal/daprtest"
)

// BenchmarkSagasDapr runs the saga benchmark with the engine in a real
// daprd 1.16 sidecar (placement, scheduler and a PostgreSQL actor store on
// loopback), bridge next to daprd's own direct throughput in the same run,
// at 1 and 32 in flight. SAGABRIDGE_BENCH_DAPR_SAGAS sets the sagas per
// case (default 300; a small count checks that it runs):
//
//	make dapr && go test -run '^$' -bench BenchmarkSagasDapr -benchtime 1x ./cmd/sagabridge/internal/benchmark
func BenchmarkSagasDapr(b *testing.B) {
	shared := daprtest.Options{
		Placement:  daprtest.StartPlacement(b),
		Scheduler:  daprtest.StartScheduler(b),
		StateStore: daprtest.StartPostgres(b),
	}
	sagas := 300
	if v := os.Getenv("SAGABRIDGE_BENCH_DAPR_SAGAS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("SAGABRIDGE_BENCH_DAPR_SAGAS=%q is not a positive number", v)
		}
		sagas = n
	}
	sidecar := daprtest.Start(b, shared)
	rep, err := benchmark.Run(context.Background(), benchmark.Options{
		Brokers:     []string{"nats"},
		Concurrency: []int{1, 32},
		Sagas:       sagas,
		DataDir:     b.TempDir(),
		DaprGRPC:    sidecar.GRPCAddr(),
	})
	if err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	if err := rep.WriteTable(&sb); err != nil {
		b.Fatal(err)
	}
	os.Stdout.WriteString("\ndaprd " + daprtest.Version + " (PostgreSQL actor store), NATS:\n" + sb.String())
	for _, r := range rep.Results {
		if r.Mode == benchmark.ModeBridge && r.Concurrency == 32 {
			b.ReportMetric(r.PerSecond, "bridge-sagas/s")
		}
		if r.Mode == benchmark.ModeDirect && r.Concurrency == 32 {
			b.ReportMetric(r.PerSecond, "direct-sagas/s")
		}
	}
}
