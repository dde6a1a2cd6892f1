package benchmark_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/cmd/sagabridge/internal/benchmark"
)

func TestRunLongMeasuresWindowsRestartAndParkedSagas(t *testing.T) {
	rep, err := benchmark.RunLong(context.Background(), benchmark.LongOptions{
		Sagas: 60, Window: 20, Concurrency: 8, Parked: 30, DataDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Retention != "defaults" {
		t.Errorf("retention %q, want the configuration's defaults", rep.Retention)
	}
	if len(rep.Windows) != 3 || rep.Windows[2].Done != 60 {
		t.Fatalf("windows %+v, want three of 20 sagas", rep.Windows)
	}
	for _, w := range rep.Windows {
		if w.PerSecond <= 0 || w.DBMiB <= 0 || w.RSSMiB <= 0 {
			t.Errorf("window %+v: want throughput, database and RSS measured", w)
		}
		// The configuration's default retention purges nothing this soon.
		if w.Instances < w.Done {
			t.Errorf("window %+v: want every saga so far kept", w)
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

// TestRunLongWithRetentionPurgesFinishedSagas: with a retention period the
// store holds about one period's sagas. The pause after the first window
// outlasts the period and a sweep (every second for a 1 s period), so by
// the end of the second window the warm-up's and the first window's sagas
// are gone.
func TestRunLongWithRetentionPurgesFinishedSagas(t *testing.T) {
	retention := time.Second
	const window = 20
	rep, err := benchmark.RunLong(context.Background(), benchmark.LongOptions{
		Sagas: 2 * window, Window: window, Concurrency: 8, DataDir: t.TempDir(), Retention: &retention,
		Progress: func(w benchmark.Window) {
			if w.Index == 1 {
				time.Sleep(4 * time.Second)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Retention != "1s" || len(rep.Windows) != 2 {
		t.Fatalf("retention %q, windows %+v", rep.Retention, rep.Windows)
	}
	if w := rep.Windows[1]; w.Instances > window || w.DBMiB <= 0 {
		t.Errorf("second window %+v: want at most its own %d sagas kept", w, window)
	}
	var sb strings.Builder
	if err := rep.WriteTable(&sb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "retention 1s") || !strings.Contains(sb.String(), "instances kept") {
		t.Errorf("table lacks the retention and the instances kept:\n%s", sb.String())
	}
}

func TestRunLongRefusesANegativeRetention(t *testing.T) {
	retention := -time.Second
	_, err := benchmark.RunLong(context.Background(), benchmark.LongOptions{Sagas: 20, Window: 20, DataDir: t.TempDir(), Retention: &retention})
	if err == nil || !strings.Contains(err.Error(), "retention -1s is negative") {
		t.Fatalf("err = %v, want a refusal of a negative retention", err)
	}
}
