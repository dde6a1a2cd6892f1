// Package retention keeps the record of finished sagas a worker must purge
// from an engine that cannot list them (daprd 1.16 has no API to list
// workflow instances), and purges them when their time comes.
//
// The record is one append-only journal per outcome status in a directory
// of the worker's own. Every entry of one journal has the same retention
// period and entries are appended as sagas finish, so each journal is
// also in the order its entries fall due: the sweeper reads it front to
// back from a cursor it saves, and never searches. A journal is cut into
// segment files; a segment read to its end is deleted. Nothing is kept in
// memory but the cursors.
//
// Durable enough: entries are written without fsync, so a process crash
// loses none and a power cut may lose the last ones, whose instances are
// then never purged (a leak an operator can purge by hand, never a lost
// saga). A record that reaches MaxBytes takes no more entries until the
// sweeper frees room; those instances are counted as not recorded.
package retention

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Purger deletes an instance. A purge of an instance that is gone must
// return an error for which IsGone is true.
type Purger func(ctx context.Context, instanceID string) error

// Config configures a Journal.
type Config struct {
	// Dir holds the journals; it is created if missing.
	Dir string
	// Periods are the retention periods by outcome status; a status with
	// no period (or zero) is not recorded: kept forever.
	Periods map[string]time.Duration
	// Purge deletes an instance whose period has passed.
	Purge Purger
	// IsGone tells a purge error that means the instance no longer exists
	// (purged already, with its parent or by hand).
	IsGone func(error) bool
	// Retry tells a purge error worth retrying at the next sweep (the
	// engine is unavailable) from one that is final for that instance.
	Retry func(error) bool
	// SegmentBytes is a segment's size before the next one starts
	// (default 1 MiB, about 20,000 entries).
	SegmentBytes int64
	// MaxBytes bounds the whole record (default 256 MiB).
	MaxBytes int64
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Journal is the record. It is safe for concurrent use.
type Journal struct {
	cfg Config

	mu      sync.Mutex
	streams map[string]*stream
	bytes   int64
	// Dropped counts entries not recorded because the record was full.
	dropped int64
	// failed counts purges that failed for good.
	failed int64
}

// stream is one status's journal: segments numbered from 1.
type stream struct {
	status string
	w      *os.File // the segment being written
	wSeq   int
	wSize  int64
}

// Open opens (or creates) the record in cfg.Dir.
func Open(cfg Config) (*Journal, error) {
	if cfg.Dir == "" || cfg.Purge == nil || cfg.IsGone == nil || cfg.Retry == nil {
		return nil, errors.New("retention: Dir, Purge, IsGone and Retry are required")
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = 1 << 20
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 256 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	j := &Journal{cfg: cfg, streams: map[string]*stream{}}
	for status, p := range cfg.Periods {
		if p <= 0 {
			continue
		}
		segs, err := j.segments(status)
		if err != nil {
			return nil, err
		}
		s := &stream{status: status, wSeq: 1}
		if len(segs) > 0 {
			s.wSeq = segs[len(segs)-1]
		}
		for _, seq := range segs {
			if fi, err := os.Stat(j.segPath(status, seq)); err == nil {
				j.bytes += fi.Size()
				if seq == s.wSeq {
					s.wSize = fi.Size()
				}
			}
		}
		if s.w, err = os.OpenFile(j.segPath(status, s.wSeq), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
			return nil, errors.Join(fmt.Errorf("retention: %w", err), j.Close())
		}
		j.streams[status] = s
	}
	return j, nil
}

// Close closes the journals, syncing what was written.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var errs []error
	for _, s := range j.streams {
		if s.w != nil {
			errs = append(errs, s.w.Sync(), s.w.Close())
			s.w = nil
		}
	}
	return errors.Join(errs...)
}

// Add records that an instance finished with status at time at; it is
// purged once the status's period has passed. Called again for the same
// instance (an activity that ran twice), it records it twice, which costs
// one purge that finds nothing.
func (j *Journal) Add(instanceID, status string, at time.Time) error {
	if strings.ContainsAny(instanceID, " \n") {
		return fmt.Errorf("retention: instance ID %q has a space or newline", instanceID)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	s, ok := j.streams[status]
	if !ok || s.w == nil {
		return nil // kept forever, or closed
	}
	line := strconv.FormatInt(at.UnixMilli(), 10) + " " + instanceID + "\n"
	if j.bytes+int64(len(line)) > j.cfg.MaxBytes {
		j.dropped++
		return nil
	}
	if s.wSize+int64(len(line)) > j.cfg.SegmentBytes && s.wSize > 0 {
		if err := s.w.Close(); err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		s.wSeq++
		s.wSize = 0
		f, err := os.OpenFile(j.segPath(status, s.wSeq), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			s.w = nil
			return fmt.Errorf("retention: %w", err)
		}
		s.w = f
	}
	n, err := s.w.WriteString(line)
	s.wSize += int64(n)
	j.bytes += int64(n)
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	return nil
}

// Stats are the record's counters.
type Stats struct {
	Bytes   int64
	Dropped int64
	Failed  int64
}

// Stats returns the record's size and counters.
func (j *Journal) Stats() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	return Stats{Bytes: j.bytes, Dropped: j.dropped, Failed: j.failed}
}

// Run sweeps every interval until ctx ends.
func (j *Journal) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = j.Sweep(ctx)
		}
	}
}

// Sweep purges every recorded instance whose period has passed. It stops
// at the first purge worth retrying (the engine is unavailable) and
// returns its error; the next sweep starts there.
func (j *Journal) Sweep(ctx context.Context) error {
	j.mu.Lock()
	statuses := make([]string, 0, len(j.streams))
	for st := range j.streams {
		statuses = append(statuses, st)
	}
	j.mu.Unlock()
	slices.Sort(statuses)
	var errs []error
	for _, st := range statuses {
		errs = append(errs, j.sweep(ctx, st, j.cfg.Now().Add(-j.cfg.Periods[st])))
	}
	return errors.Join(errs...)
}

// sweep purges status's entries that finished before cutoff, segment by
// segment from the oldest, saving the cursor after each purge batch.
func (j *Journal) sweep(ctx context.Context, status string, cutoff time.Time) error {
	segs, err := j.segments(status)
	if err != nil {
		return err
	}
	for _, seq := range segs {
		done, err := j.sweepSegment(ctx, status, seq, cutoff)
		if err != nil || !done {
			return err
		}
		j.mu.Lock()
		current := j.streams[status].wSeq == seq
		j.mu.Unlock()
		if current {
			return nil // read to its end, but still written to
		}
		if fi, err := os.Stat(j.segPath(status, seq)); err == nil {
			j.mu.Lock()
			j.bytes -= fi.Size()
			j.mu.Unlock()
		}
		if err := errors.Join(os.Remove(j.segPath(status, seq)), removeIfExists(j.cursorPath(status, seq))); err != nil {
			return fmt.Errorf("retention: %w", err)
		}
	}
	return nil
}

// sweepSegment purges one segment's due entries from its cursor on; done
// is true when it reached the segment's end.
func (j *Journal) sweepSegment(ctx context.Context, status string, seq int, cutoff time.Time) (done bool, err error) {
	pos := j.cursor(status, seq)
	f, err := os.Open(j.segPath(status, seq))
	if err != nil {
		return false, fmt.Errorf("retention: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(pos, 0); err != nil {
		return false, fmt.Errorf("retention: %w", err)
	}
	r := bufio.NewReader(f)
	saved := pos
	defer func() {
		if pos != saved {
			err = errors.Join(err, j.saveCursor(status, seq, pos))
		}
	}()
	for {
		line, rerr := r.ReadString('\n')
		if rerr != nil {
			// The end, or a line still being written: read it next time.
			return true, nil
		}
		ms, id, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		at, perr := strconv.ParseInt(ms, 10, 64)
		if !ok || perr != nil {
			pos += int64(len(line)) // not ours: skip it
			continue
		}
		if time.UnixMilli(at).After(cutoff) {
			return false, nil
		}
		if err := j.cfg.Purge(ctx, id); err != nil && !j.cfg.IsGone(err) {
			if j.cfg.Retry(err) {
				return false, err
			}
			j.mu.Lock()
			j.failed++
			j.mu.Unlock()
		}
		pos += int64(len(line))
		if pos-saved >= 64<<10 {
			if err := j.saveCursor(status, seq, pos); err != nil {
				return false, err
			}
			saved = pos
		}
	}
}

func (j *Journal) segments(status string) ([]int, error) {
	matches, err := filepath.Glob(filepath.Join(j.cfg.Dir, status+"-*.log"))
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	var out []int
	for _, m := range matches {
		base := strings.TrimSuffix(filepath.Base(m), ".log")
		if n, err := strconv.Atoi(strings.TrimPrefix(base, status+"-")); err == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (j *Journal) segPath(status string, seq int) string {
	return filepath.Join(j.cfg.Dir, fmt.Sprintf("%s-%08d.log", status, seq))
}

func (j *Journal) cursorPath(status string, seq int) string {
	return filepath.Join(j.cfg.Dir, fmt.Sprintf("%s-%08d.pos", status, seq))
}

func (j *Journal) cursor(status string, seq int) int64 {
	b, err := os.ReadFile(j.cursorPath(status, seq))
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// saveCursor replaces the cursor file whole (write, then rename), so a
// crash leaves the old cursor or the new one: entries after the old one
// are purged again, which finds nothing.
func (j *Journal) saveCursor(status string, seq int, pos int64) error {
	path := j.cursorPath(status, seq)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(pos, 10)), 0o600); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	return nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
