package retention_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/engine/retention"
)

var (
	errGone = errors.New("gone")
	errDown = errors.New("engine down")
)

// engine is a fake engine: the instances it holds, and whether it answers.
type engine struct {
	mu     sync.Mutex
	alive  map[string]bool
	purged []string
	down   bool
}

func (e *engine) purge(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.down {
		return errDown
	}
	if !e.alive[id] {
		return errGone
	}
	delete(e.alive, id)
	e.purged = append(e.purged, id)
	return nil
}

func (e *engine) purgedIDs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.purged)
}

func open(t *testing.T, dir string, e *engine, now *time.Time, segment int64) *retention.Journal {
	t.Helper()
	j, err := retention.Open(retention.Config{
		Dir:          dir,
		Periods:      map[string]time.Duration{"completed": time.Hour, "compensated": 2 * time.Hour, "failed": 0},
		Purge:        e.purge,
		IsGone:       func(err error) bool { return errors.Is(err, errGone) },
		Retry:        func(err error) bool { return errors.Is(err, errDown) },
		SegmentBytes: segment,
		MaxBytes:     4 << 10,
		Now:          func() time.Time { return *now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestJournalPurgesWhenDue: each status's instances are purged once their
// own period passed, in the order they finished, exactly once across a
// restart; an outage stops the sweep where it is and the next sweep goes
// on from there; segments read to their end are deleted; a full record
// counts what it could not take.
func TestJournalPurgesWhenDue(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	e := &engine{alive: map[string]bool{}}
	j := open(t, dir, e, &now, 200) // about 8 entries a segment
	ctx := context.Background()
	for i := range 20 {
		at := t0.Add(time.Duration(i) * time.Minute)
		for _, st := range []string{"completed", "compensated", "failed"} {
			id := fmt.Sprintf("%s-%02d", st, i)
			e.alive[id] = true
			if err := j.Add(id, st, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := j.Add("has space", "completed", t0); err == nil {
		t.Error("an instance ID with a space was recorded")
	}

	now = t0.Add(time.Hour + 4*time.Minute + time.Second) // completed-00 .. -04 due
	if err := j.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"completed-00", "completed-01", "completed-02", "completed-03", "completed-04"}
	if got := e.purgedIDs(); !slices.Equal(got, want) {
		t.Fatalf("purged %v, want %v", got, want)
	}

	// Restart: the cursor survives; nothing is purged twice.
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = open(t, dir, e, &now, 200)
	e.alive["completed-00"] = true // a second purge would find it
	if err := j.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.purgedIDs(); !slices.Equal(got, want) {
		t.Fatalf("after a restart purged %v, want %v", got, want)
	}
	delete(e.alive, "completed-00")

	// An outage: the sweep stops and says why; the next one goes on.
	now = t0.Add(2*time.Hour + 30*time.Minute)
	e.down = true
	if err := j.Sweep(ctx); !errors.Is(err, errDown) {
		t.Fatalf("sweep during an outage: %v", err)
	}
	e.down = false
	if err := j.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	got := e.purgedIDs()
	if len(got) != 40 {
		t.Fatalf("purged %d instances, want the 40 completed and compensated: %v", len(got), got)
	}
	for _, id := range got {
		if id[:6] == "failed" {
			t.Errorf("%s purged: failed instances are kept (period 0)", id)
		}
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(segs) != 2 { // each status's segment still being written
		t.Errorf("segments left: %v", segs)
	}
	if _, err := os.Stat(filepath.Join(dir, "failed-00000001.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a journal for a status kept forever: %v", err)
	}

	// A full record takes no more and counts what it dropped.
	for i := range 200 {
		if err := j.Add(fmt.Sprintf("late-%03d", i), "completed", now); err != nil {
			t.Fatal(err)
		}
	}
	if st := j.Stats(); st.Dropped == 0 || st.Bytes > 4<<10 {
		t.Errorf("stats of a full record: %+v", st)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}
