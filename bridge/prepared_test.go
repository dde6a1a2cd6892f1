package bridge

import (
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
)

func TestPreparedCacheHandsEachMessageOverOnceAndStaysBounded(t *testing.T) {
	c := newPreparedCache(2)
	a, b, d := message.NewMessage("a", nil), message.NewMessage("b", nil), message.NewMessage("d", nil)
	errA := errors.New("a")
	c.put(a, prepared{decodeErr: errA})
	c.put(b, prepared{})
	c.put(d, prepared{}) // past the bound: not kept, the handler does the work
	if p, ok := c.take(a); !ok || p.decodeErr != errA {
		t.Fatalf("take a: %+v %v", p, ok)
	}
	if _, ok := c.take(a); ok {
		t.Fatal("a handed over twice")
	}
	if _, ok := c.take(d); ok {
		t.Fatal("kept an entry past the bound")
	}
	// A copy (a retried message) is another message.
	if _, ok := c.take(b.Copy()); ok {
		t.Fatal("a copy found the original's entry")
	}
	var nilCache *preparedCache
	nilCache.put(a, prepared{})
	if _, ok := nilCache.take(a); ok {
		t.Fatal("nil cache returned an entry")
	}
}
