package store

import (
	"context"
	"fmt"
	"time"

	"github.com/dapr/durabletask-go/api"
)

// Retention purges finished instances some time after they finished, in
// the background, a batch at a time. Finding them is a read (an index on
// status and creation time); each batch is one write among the others, so
// the engine's work goes on meanwhile. Deleted pages are reused by later
// writes: the database file stops growing once it holds one retention
// period of instances (no VACUUM, which would rewrite the whole file while
// holding the writer).
//
// An instance started as a child of another is deleted with its root, the
// instance with no (remaining) parent, once the whole tree has finished:
// durabletask's recursive purge of a parent fails on a child that is gone.
type Retention struct {
	// Completed, Failed and Terminated are how long an instance that
	// finished with that status is kept, counted from when it finished.
	// Zero keeps such instances.
	Completed, Failed, Terminated time.Duration
	// Keep, if set, is asked about each instance past its age; true keeps
	// it, and it is asked again at the next sweep. The engine layer uses it
	// for distinctions of its own (a saga that compensated completes like
	// one that did not, and may be kept longer) or to keep an instance
	// until its outcome was published. It runs on the sweeper's goroutine.
	Keep func(RetentionCandidate) bool
	// Interval is the time between sweeps: default a tenth of the shortest
	// age, at least a second and at most a minute.
	Interval time.Duration
	// Batch is how many instances one write deletes (default 128).
	Batch int
}

// RetentionCandidate is an instance Retention is about to purge.
type RetentionCandidate struct {
	ID, Name     string
	Status       api.OrchestrationStatus
	CreatedAt    time.Time
	CompletedAt  time.Time
	CustomStatus string
	Output       string
}

func (r *Retention) setDefaults() error {
	shortest := time.Duration(0)
	for _, age := range []time.Duration{r.Completed, r.Failed, r.Terminated} {
		if age < 0 {
			return fmt.Errorf("store: retention age %s is negative", age)
		}
		if age > 0 && (shortest == 0 || age < shortest) {
			shortest = age
		}
	}
	if r.Interval <= 0 {
		r.Interval = min(max(shortest/10, time.Second), time.Minute)
	}
	if r.Batch <= 0 {
		r.Batch = 128
	}
	return nil
}

func (b *Backend) retentionLoop() {
	defer close(b.rdone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-b.quit
		cancel()
	}()
	t := time.NewTicker(b.opts.Retention.Interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if _, err := b.Sweep(ctx); err != nil && ctx.Err() == nil {
				b.log.Warnf("store: retention: %v", err)
			}
		case <-b.quit:
			return
		}
	}
}

// Sweep runs one retention pass now and returns how many instances it
// deleted. It does nothing without Options.Retention.
func (b *Backend) Sweep(ctx context.Context) (int, error) {
	ret := b.opts.Retention
	if ret == nil {
		return 0, nil
	}
	b.sweepMu.Lock()
	defer b.sweepMu.Unlock()
	total := 0
	now := time.Now()
	for _, s := range []struct {
		status api.OrchestrationStatus
		age    time.Duration
	}{
		{api.RUNTIME_STATUS_COMPLETED, ret.Completed},
		{api.RUNTIME_STATUS_FAILED, ret.Failed},
		{api.RUNTIME_STATUS_TERMINATED, ret.Terminated},
	} {
		if s.age <= 0 {
			continue
		}
		n, err := b.sweepStatus(ctx, ret, s.status, now.Add(-s.age).UnixNano())
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// sweepStatus deletes the instances of one status that finished before
// cutoff, walking them in creation order a page at a time.
func (b *Backend) sweepStatus(ctx context.Context, ret *Retention, status api.OrchestrationStatus, cutoff int64) (int, error) {
	q := "SELECT id, name, created_at, completed_at, parent_id, rowid, custom_status, output FROM sb_instances" +
		" WHERE status = ? AND completed_at IS NOT NULL AND created_at < ? AND (created_at, rowid) > (?, ?) ORDER BY created_at, rowid LIMIT ?"
	var afterAt, afterRow int64 = -1 << 63, -1 << 63
	deleted := 0
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := b.deleteFinished(ctx, batch)
		deleted += n
		batch = batch[:0]
		return err
	}
	for {
		var page []RetentionCandidate
		var parents []string
		rows := 0
		err := b.read(ctx, func(r *reader) error {
			s, err := r.cached(q)
			if err != nil {
				return err
			}
			return s.query(func() error {
				rows++
				afterAt, afterRow = s.int64(2), s.int64(5)
				if s.int64(3) >= cutoff {
					return nil
				}
				c := RetentionCandidate{
					ID: s.text(0), Name: s.text(1), Status: status,
					CreatedAt: time.Unix(0, s.int64(2)), CompletedAt: time.Unix(0, s.int64(3)),
				}
				if ret.Keep != nil {
					c.CustomStatus, c.Output = s.text(6), s.text(7)
				}
				page = append(page, c)
				parents = append(parents, s.text(4))
				return nil
			}, int64(status), cutoff, afterAt, afterRow, int64(ret.Batch))
		})
		if err != nil {
			return deleted, err
		}
		for i, c := range page {
			tree, ok, err := b.finishedTree(ctx, c.ID, parents[i])
			if err != nil {
				return deleted, err
			}
			if !ok || (ret.Keep != nil && ret.Keep(c)) {
				continue
			}
			batch = append(batch, tree...)
			if len(batch) >= ret.Batch {
				if err := flush(); err != nil {
					return deleted, err
				}
			}
		}
		if rows < ret.Batch {
			return deleted, flush()
		}
	}
}

// finishedTree returns id and its descendants if id is a root (no parent,
// or a parent since deleted) and every descendant has finished.
func (b *Backend) finishedTree(ctx context.Context, id, parent string) ([]string, bool, error) {
	tree := []string{id}
	ok := true
	err := b.read(ctx, func(r *reader) error {
		if parent != "" {
			if err := r.exists.query(func() error { ok = false; return nil }, parent); err != nil || !ok {
				return err
			}
		}
		for i := 0; i < len(tree) && ok; i++ {
			err := r.children.query(func() error {
				if !isFinished(api.OrchestrationStatus(r.children.int64(1))) {
					ok = false
				}
				tree = append(tree, r.children.text(0))
				return nil
			}, tree[i])
			if err != nil {
				return err
			}
		}
		return nil
	})
	return tree, ok, err
}

// deleteFinished deletes the instances among ids that are (still)
// finished, in one write.
func (b *Backend) deleteFinished(ctx context.Context, ids []string) (int, error) {
	ids = append([]string(nil), ids...)
	n := 0
	r := &request{}
	r.apply = func() (func(), error) {
		var done []string
		for _, id := range ids {
			status, exists, err := b.instanceStatus(id)
			if err != nil {
				return nil, err
			}
			if exists && isFinished(status) {
				done = append(done, id)
			}
		}
		n = len(done)
		if n == 0 {
			return func() {}, nil
		}
		return b.deleteInstances(done)
	}
	if err := b.submit(ctx, r); err != nil {
		return 0, fmt.Errorf("delete %d finished instances: %w", len(ids), err)
	}
	return n, nil
}
