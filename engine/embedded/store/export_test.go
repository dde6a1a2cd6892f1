package store

import (
	"context"
	"fmt"
)

var t0ctx = context.Background()

// SetMaxPages caps the database at n pages (SQLite's max_page_count; it
// cannot go below the current size): past it, writes fail with
// SQLITE_FULL, the error a full disk gives.
func (b *Backend) SetMaxPages(n int) error {
	r := &request{}
	r.apply = func() (func(), error) {
		return func() {}, b.w.execScript(fmt.Sprintf("PRAGMA max_page_count = %d", n))
	}
	return b.submit(t0ctx, r)
}
