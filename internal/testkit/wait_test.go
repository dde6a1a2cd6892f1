package testkit_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/internal/testkit"
)

func TestWithin(t *testing.T) {
	var n atomic.Int32
	if d := testkit.Within(time.Second, func() bool { return n.Add(1) == 3 }); d < 0 || n.Load() != 3 {
		t.Fatalf("took %s after %d calls, want a duration after 3", d, n.Load())
	}
	start := time.Now()
	if d := testkit.Within(50*time.Millisecond, func() bool { return false }); d != -1 {
		t.Fatalf("never true: got %s, want -1", d)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond || waited > 2*time.Second {
		t.Fatalf("gave up after %s, want just past 50ms", waited)
	}
}

// fatalRecorder records Fatalf instead of stopping the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
}

func TestWaitUntilFailsWithWhat(t *testing.T) {
	r := &fatalRecorder{TB: t}
	testkit.WaitUntil(r, 10*time.Millisecond, "the outcome", func() bool { return false })
	if !strings.Contains(r.msg, "waiting for the outcome") {
		t.Fatalf("failure %q after the deadline, want one naming what it waited for", r.msg)
	}
	r.msg = ""
	testkit.WaitUntil(r, time.Second, "the outcome", func() bool { return true })
	if r.msg != "" {
		t.Fatalf("failed though the condition held: %s", r.msg)
	}
}
