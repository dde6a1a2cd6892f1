package sagatest

import (
	"sync"
	"time"
)

// clock is the embedded engine's time in a test: the wall clock plus the
// jumps Advance made. Time still passes on its own, so a saga written with
// short real timeouts behaves as it would in production; a jump makes a
// long one due at once.
type clock struct {
	mu      sync.Mutex
	offset  time.Duration
	changed chan struct{}
}

func newClock() *clock { return &clock{changed: make(chan struct{})} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
	close(c.changed)
	c.changed = make(chan struct{})
}
