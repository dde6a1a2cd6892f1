package benchmark_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sagabridge/sagabridge/bridge/benchmark"
)

func TestRunLongMeasuresWindowsRestartAndParkedSagas(t *testing.T) {
	rep, err := benchmark.RunLong(context.Background(), benchmark.LongOptions{
		Sagas: 60, Window: 20, Concurrency: 8, Parked: 30, DataDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Windows) != 3 || rep.Windows[2].Done != 60 {
		t.Fatalf("windows %+v, want three of 20 sagas", rep.Windows)
	}
	for _, w := range rep.Windows {
		if w.PerSecond <= 0 || w.DBMiB <= 0 || w.RSSMiB <= 0 {
			t.Errorf("window %+v: want throughput, database and RSS measured", w)
		}
	}
	if rep.Restart <= 0 || rep.LastToFirst <= 0 {
		t.Errorf("restart %.3f s, last/first %.2f: want both measured", rep.Restart, rep.LastToFirst)
	}
	if p := rep.Parked; p == nil || p.Instances != 30 || p.ApproveAllSecond <= 0 || p.DBGrowthMiB <= 0 {
		t.Errorf("parked %+v: want 30 parked sagas that grew the database and were all approved", p)
	}
	var sb strings.Builder
	if err := rep.WriteTable(&sb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "30 parked sagas") {
		t.Errorf("table lacks the parked line:\n%s", sb.String())
	}
}

func TestRunLongRefusesAWindowThatDoesNotDivideTheSagas(t *testing.T) {
	_, err := benchmark.RunLong(context.Background(), benchmark.LongOptions{Sagas: 50, Window: 20, DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "multiple of the window") {
		t.Fatalf("err = %v, want a refusal of 50 sagas in windows of 20", err)
	}
}
