package store

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	lib "modernc.org/sqlite/lib"
)

// ErrUnavailable is matched (errors.Is) by errors that say the store cannot
// write now: the disk is full, an I/O error, the database file was deleted
// or replaced. They are outages, not refusals: the same write can succeed
// later (after the disk is freed, or the worker restarted on a good file),
// so a caller retries or reports not-ready; it never treats the input as
// bad. Across the engine's gRPC API they carry codes.Unavailable and this
// text.
var ErrUnavailable = errors.New(UnavailableMessage)

// UnavailableMessage starts the text of every ErrUnavailable error.
const UnavailableMessage = "workflow store unavailable"

// unavailableError wraps the cause of an outage.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return UnavailableMessage + ": " + e.err.Error() }

func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// GRPCStatus makes the gRPC server answer codes.Unavailable (grpc-go finds
// it through the executor's wrapping).
func (e *unavailableError) GRPCStatus() *status.Status {
	return status.New(codes.Unavailable, e.Error())
}

func unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	return &unavailableError{err: err}
}

// classify marks the SQLite errors that are outages: SQLITE_FULL (disk or
// database full), SQLITE_IOERR (the OS failed a read or write: ENOSPC and
// EIO end here), SQLITE_CANTOPEN and SQLITE_READONLY (the file or its
// directory changed under the process).
func classify(err error) error {
	var se *sqliteError
	if !errors.As(err, &se) {
		return err
	}
	switch se.code & 0xff {
	case lib.SQLITE_FULL, lib.SQLITE_IOERR, lib.SQLITE_CANTOPEN, lib.SQLITE_READONLY:
		return unavailable(err)
	}
	return err
}

// health is what Healthy reports: the database file gone (sticky: only a
// restart on a good file helps) or the last commit failed with an outage
// (cleared by the next successful commit).
type health struct {
	mu     sync.Mutex
	gone   error
	outage error
}

func (h *health) setGone(err error) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone != nil {
		return false
	}
	h.gone = err
	return true
}

func (h *health) goneErr() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gone
}

func (h *health) setOutage(err error) {
	h.mu.Lock()
	h.outage = err
	h.mu.Unlock()
}

// Healthy reports whether the store can write: nil, or an error matching
// ErrUnavailable (the database file was deleted or replaced while open;
// the last commit failed for want of space or an I/O error) or ErrClosed.
// The worker's readiness probe calls it.
func (b *Backend) Healthy() error {
	b.closeMu.RLock()
	closed := b.closed
	b.closeMu.RUnlock()
	if closed {
		return ErrClosed
	}
	b.health.mu.Lock()
	defer b.health.mu.Unlock()
	if b.health.gone != nil {
		return b.health.gone
	}
	return b.health.outage
}

// fileCheckEvery is how often the store checks that its files are still
// the ones it opened.
const fileCheckEvery = time.Second

// checkFiles compares the database and WAL paths' identities with those
// opened. A file deleted or replaced while open keeps being written by
// SQLite through its descriptors, and everything written is lost at the
// next start, so from then on the store refuses writes.
func (b *Backend) checkFiles() {
	for _, f := range []struct {
		path string
		id   fileID
	}{{b.opts.Path, b.lock.db}, {b.opts.Path + "-wal", b.walID}} {
		if f.id == (fileID{}) {
			continue
		}
		id, err := statID(f.path)
		var what string
		switch {
		case errors.Is(err, os.ErrNotExist):
			what = "was deleted"
		case err != nil:
			what = "cannot be checked: " + err.Error()
		case id != f.id:
			what = "was replaced by another file"
		default:
			continue
		}
		err = unavailable(fmt.Errorf("database file %s %s while the store had it open; writes are refused, restart the worker", f.path, what))
		if b.health.setGone(err) {
			b.log.Errorf("store: %v", err)
		}
		return
	}
}
