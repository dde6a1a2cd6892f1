package benchmark_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/sagabridge/sagabridge/bridge/benchmark"
	"github.com/sagabridge/sagabridge/internal/daprtest"
)

// BenchmarkSagasDapr runs the saga benchmark with the engine in a real
// daprd v1.14 sidecar (placement, scheduler and a Redis actor store on
// loopback), bridge next to daprd's own direct throughput in the same run:
//
//	make dapr && go test -run '^$' -bench BenchmarkSagasDapr -benchtime 1x ./bridge/benchmark
func BenchmarkSagasDapr(b *testing.B) {
	shared := daprtest.Options{
		Placement:  daprtest.StartPlacement(b),
		Scheduler:  daprtest.StartScheduler(b),
		StateStore: daprtest.StartPostgres(b),
	}
	sidecar := daprtest.Start(b, shared)
	rep, err := benchmark.Run(context.Background(), benchmark.Options{
		Brokers:     []string{"nats"},
		Concurrency: []int{1, 32},
		Sagas:       300,
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
	os.Stdout.WriteString("\ndaprd v1.14 (scheduler reminders, Redis actor store), NATS:\n" + sb.String())
	for _, r := range rep.Results {
		if r.Mode == benchmark.ModeBridge && r.Concurrency == 32 {
			b.ReportMetric(r.PerSecond, "bridge-sagas/s")
		}
		if r.Mode == benchmark.ModeDirect && r.Concurrency == 32 {
			b.ReportMetric(r.PerSecond, "direct-sagas/s")
		}
	}
}
