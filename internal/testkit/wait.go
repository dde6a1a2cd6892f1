// Package testkit holds what the project's tests share: waiting for a
// condition that another goroutine or process brings about.
package testkit

import (
	"testing"
	"time"
)

// Polling starts at a millisecond, for conditions that hold almost at
// once, and backs off to this so that a long wait does not spin.
const maxPoll = 20 * time.Millisecond

// Within polls cond until it holds or d has passed, and returns how long
// it took; -1 when it did not hold in time.
func Within(d time.Duration, cond func() bool) time.Duration {
	start := time.Now()
	poll := time.Millisecond
	for !cond() {
		if time.Since(start) > d {
			return -1
		}
		time.Sleep(poll)
		poll = min(2*poll, maxPoll)
	}
	return time.Since(start)
}

// WaitUntil polls cond until it holds; after d it fails the test with
// what it was waiting for.
func WaitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if Within(d, cond) < 0 {
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}
