package bridge

import (
	"fmt"
	"testing"
)

func TestCountsAreBoundedAndForget(t *testing.T) {
	c := counts{max: 100}
	for i := range 1000 {
		c.next(fmt.Sprint(i))
	}
	if n := c.len(); n != 100 {
		t.Fatalf("%d counts held, want the bound 100", n)
	}
	if got := c.next("999"); got != 2 {
		t.Errorf("the newest key was evicted (count %d)", got)
	}
	if got := c.next("0"); got != 1 {
		t.Errorf("the oldest key was kept (count %d)", got)
	}
	for i := range 1000 {
		c.forget(fmt.Sprint(i))
	}
	if n := c.len(); n != 0 || len(c.order) > 64 {
		t.Errorf("after forgetting everything: %d counts, %d in the order list", n, len(c.order))
	}
}
