// Package store is a dapr/durabletask-go backend.Backend built for one
// process that owns its SQLite file: the embedded engine's task hub.
//
// Durable state lives in SQLite (WAL mode, prepared statements, a schema of
// its own). The work queues live in memory: a FIFO of instances that have
// events ready, a min-heap of durable timers, a FIFO of activity tasks, and
// the set of instances handed out. They are rebuilt from the tables at
// Open, which is also how work cut short by a crash is recovered: nothing
// about locks is stored, so whatever was not completed is ready again.
// Open takes an exclusive lock on the file, which is what makes keeping
// the queues in memory sound.
//
// Every write goes through one goroutine that commits whatever has queued
// up meanwhile in one transaction (group commit), each request inside its
// own savepoint; a caller is answered after the commit that holds its
// write. A completed orchestration work item is one request: the history
// append, the instance's status and payloads, the deletion of the events it
// consumed, its activity tasks, timers and messages to other instances.
//
// NextOrchestrationWorkItem and NextActivityWorkItem block until work
// exists or their context ends; nothing polls. WatchOrchestrationRuntimeStatus
// is woken by the commits that change the instance. The orchestrator and
// activity task plumbing of the gRPC executor (Complete/Cancel/WaitFor …
// Task) is durabletask's local.TasksBackend, as in its own SQLite backend.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/dapr/durabletask-go/api"
	"github.com/dapr/durabletask-go/api/protos"
	"github.com/dapr/durabletask-go/backend"
	"github.com/dapr/durabletask-go/backend/local"
	"github.com/dapr/durabletask-go/backend/runtimestate"
)

// ErrClosed is returned after Close.
var ErrClosed = errors.New("store: closed")

// maxEventsPerWorkItem bounds one orchestration work item, as the stock
// backend does.
const maxEventsPerWorkItem = 1000

// lockKey is where a work item carries its lock in Properties.
const lockKey = "sagabridge.store.lock"

// Options configure a store.
type Options struct {
	// Path is the SQLite file. Open creates it (mode 0600) if missing,
	// and <Path>.lock beside it.
	Path string
	// Synchronous is "normal" (default: a process crash loses nothing, a
	// power cut can lose the last commits) or "full".
	Synchronous string
	// Readers is how many connections serve reads (default 4).
	Readers int
	// MaxBatch bounds how many writes one transaction commits (default 256).
	MaxBatch int
	// HistoryCache is how many running instances' histories are kept in
	// memory, so that their next work item does not read them back
	// (default 1024; negative: none).
	HistoryCache int
	// Retention, when set, purges finished instances in the background;
	// see Retention.
	Retention *Retention
	// Logger receives warnings; nil discards them.
	Logger backend.Logger
	// Clock says when timers are due; nil is the wall clock. A test kit
	// passes one it moves forward, so that a step's timeout fires without
	// the test waiting for it.
	Clock Clock
}

// Clock is the store's time.
type Clock interface {
	Now() time.Time
	// Changed is closed when the time jumps forward, so that the wait for
	// the next timer ends early.
	Changed() <-chan struct{}
}

// Backend implements backend.Backend.
type Backend struct {
	*local.TasksBackend

	opts Options
	log  backend.Logger
	lock *dbLock

	w            *conn // used by the writer goroutine only (and by Open)
	ws           writeStmts
	nextSeq      int64           // writer goroutine only
	batchDeleted map[string]bool // writer goroutine only: instances deleted in the current batch
	reqDeleted   []string        // writer goroutine only: by the current request
	stats        stats
	health       health
	sweepMu      sync.Mutex
	walID        fileID

	ckpt     *conn // the checkpointer's connection
	ckptStmt *stmt
	ckptPoke chan struct{}
	cdone    chan struct{}

	readers chan *reader
	nReader int

	closeMu sync.RWMutex
	closed  bool
	reqs    chan *request
	quit    chan struct{}
	wdone   chan struct{}
	tdone   chan struct{}
	poke    chan struct{}
	rdone   chan struct{}

	mu        sync.Mutex
	orchCond  *sync.Cond
	actCond   *sync.Cond
	stopped   bool
	insts     map[string]*inst
	ready     fifo[*inst]
	timers    timerHeap
	timerSeqs map[int64]*timerEntry
	tasks     fifo[*qTask]
	taskSeqs  map[int64]*qTask
	history   historyCache
	watchers  map[string]map[*watcher]struct{}
}

var _ backend.Backend = (*Backend)(nil)

type writeStmts struct {
	begin, commit, rollback, savepoint, release, rollbackTo, checkpoint *stmt

	status, insInstance, updSame, updStatus, updDone, updStarted, delInstance *stmt
	insHistory, delHistory                                                    *stmt
	insInbox, delInbox, delInboxOf                                            *stmt
	insTask, delTask, delTasksOf                                              *stmt
}

type reader struct {
	c        *conn
	meta     *stmt
	history  *stmt
	ids      *stmt
	exists   *stmt
	children *stmt
	queries  map[string]*stmt
}

// Open takes the database's lock, opens (creating if needed) the database,
// rebuilds the queues from it and starts the writer, the timers, the
// checkpointer and the file check. A database another process (or another
// Backend) has open fails with a *LockedError ("database <path> is locked
// by pid N").
func Open(opts Options) (*Backend, error) {
	if opts.Path == "" {
		return nil, errors.New("store: no path")
	}
	switch strings.ToLower(opts.Synchronous) {
	case "":
		opts.Synchronous = "normal"
	case "normal", "full":
		opts.Synchronous = strings.ToLower(opts.Synchronous)
	default:
		return nil, fmt.Errorf("store: synchronous %q is not normal or full", opts.Synchronous)
	}
	if opts.Readers <= 0 {
		opts.Readers = 4
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.Retention != nil {
		r := *opts.Retention
		if err := r.setDefaults(); err != nil {
			return nil, err
		}
		opts.Retention = &r
	}
	b := &Backend{
		TasksBackend: local.NewTasksBackend(),
		opts:         opts,
		log:          opts.Logger,
		batchDeleted: map[string]bool{},
		readers:      make(chan *reader, opts.Readers),
		reqs:         make(chan *request, 1024),
		quit:         make(chan struct{}),
		wdone:        make(chan struct{}),
		tdone:        make(chan struct{}),
		poke:         make(chan struct{}, 1),
		ckptPoke:     make(chan struct{}, 1),
		cdone:        make(chan struct{}),
		rdone:        make(chan struct{}),
		insts:        map[string]*inst{},
		timerSeqs:    map[int64]*timerEntry{},
		taskSeqs:     map[int64]*qTask{},
		watchers:     map[string]map[*watcher]struct{}{},
	}
	b.history.init(opts.HistoryCache)
	if b.log == nil {
		b.log = nopLogger{}
	}
	b.orchCond = sync.NewCond(&b.mu)
	b.actCond = sync.NewCond(&b.mu)
	var err error
	if b.lock, err = acquire(opts.Path); err != nil {
		return nil, err
	}
	if err := b.open(); err != nil {
		_ = b.closeConns()
		b.lock.release()
		return nil, err
	}
	go b.writeLoop()
	go b.timerLoop()
	go b.checkpointLoop()
	if opts.Retention != nil {
		go b.retentionLoop()
	} else {
		close(b.rdone)
	}
	return b, nil
}

func (b *Backend) open() error {
	var err error
	if b.w, err = openConn(b.opts.Path); err != nil {
		return err
	}
	// wal_autocheckpoint = 0: checkpoints (the only fsyncs in NORMAL
	// mode) run on their own connection and goroutine, off the writer's
	// path; see checkpointLoop.
	if err := b.w.execScript("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = " +
		strings.ToUpper(b.opts.Synchronous) + "; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 33554432;"); err != nil {
		return classify(err)
	}
	if err := migrate(b.w); err != nil {
		return classify(err)
	}
	if b.walID, err = statID(b.opts.Path + "-wal"); err != nil {
		return fmt.Errorf("store: stat the WAL file: %w", err)
	}
	if err := b.prepareWriter(); err != nil {
		return err
	}
	if b.ckpt, err = openConn(b.opts.Path); err != nil {
		return err
	}
	if err := b.ckpt.execScript("PRAGMA busy_timeout = 10000; PRAGMA synchronous = " + strings.ToUpper(b.opts.Synchronous)); err != nil {
		return err
	}
	if b.ckptStmt, err = b.ckpt.prepare("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		return err
	}
	for i := 0; i < b.opts.Readers; i++ {
		r, err := openReader(b.opts.Path)
		if err != nil {
			return err
		}
		b.nReader++
		b.readers <- r
	}
	return b.rebuild()
}

func (b *Backend) prepareWriter() error {
	w := &b.ws
	for _, p := range []struct {
		s   **stmt
		sql string
	}{
		{&w.begin, "BEGIN IMMEDIATE"},
		{&w.commit, "COMMIT"},
		{&w.rollback, "ROLLBACK"},
		{&w.savepoint, "SAVEPOINT r"},
		{&w.release, "RELEASE r"},
		{&w.rollbackTo, "ROLLBACK TO r"},
		{&w.checkpoint, "PRAGMA wal_checkpoint(PASSIVE)"},
		{&w.status, "SELECT status FROM sb_instances WHERE id = ?"},
		{&w.insInstance, `INSERT INTO sb_instances (id, name, version, execution_id, parent_id, status, created_at, updated_at, input)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		// Four updates, so that a work item leaves alone the indexed
		// columns it does not change: SQLite rewrites an index entry
		// whenever a column the index uses is assigned, even to the same
		// value. updSame: the status did not change (most work items; it
		// checks the status it assumes); updStatus: it changed, the
		// instance runs on (no finished-time index is touched); updDone:
		// the instance finished; updStarted: it continued as new.
		{&w.updSame, `UPDATE sb_instances SET
			updated_at = ?1,
			custom_status = CASE WHEN ?2 THEN ?3 ELSE custom_status END
			WHERE id = ?4 AND status = ?5`},
		{&w.updStatus, `UPDATE sb_instances SET
			status = ?5, updated_at = ?1,
			custom_status = CASE WHEN ?2 THEN ?3 ELSE custom_status END
			WHERE id = ?4`},
		{&w.updDone, `UPDATE sb_instances SET
			status = ?1, updated_at = ?2, completed_at = ?2, output = ?3, failure = ?4,
			custom_status = CASE WHEN ?5 THEN ?6 ELSE custom_status END
			WHERE id = ?7`},
		// ?3: the new generation finished in the same work item.
		{&w.updStarted, `UPDATE sb_instances SET
			status = ?1, updated_at = ?2,
			completed_at = CASE WHEN ?3 THEN ?4 END,
			output = CASE WHEN ?3 THEN ?5 END,
			failure = CASE WHEN ?3 THEN ?6 END,
			custom_status = CASE WHEN ?7 THEN ?8 ELSE custom_status END,
			created_at = ?10, input = ?11, execution_id = ?12
			WHERE id = ?9`},
		{&w.delInstance, "DELETE FROM sb_instances WHERE id = ?"},
		{&w.insHistory, "INSERT INTO sb_history (instance_id, seq, events) VALUES (?, ?, ?)"},
		{&w.delHistory, "DELETE FROM sb_history WHERE instance_id = ?"},
		{&w.insInbox, "INSERT INTO sb_inbox (seq, instance_id, visible_at, event) VALUES (?, ?, ?, ?)"},
		{&w.delInbox, "DELETE FROM sb_inbox WHERE seq = ?"},
		// ?1 is a JSON array of instance IDs: one scan of the table of
		// pending events for a whole batch of deleted instances.
		{&w.delInboxOf, "DELETE FROM sb_inbox WHERE instance_id IN (SELECT value FROM json_each(?1)) RETURNING seq"},
		{&w.insTask, "INSERT INTO sb_tasks (seq, instance_id, event) VALUES (?, ?, ?)"},
		{&w.delTask, "DELETE FROM sb_tasks WHERE seq = ?"},
		{&w.delTasksOf, "DELETE FROM sb_tasks WHERE instance_id IN (SELECT value FROM json_each(?1)) RETURNING seq"},
	} {
		s, err := b.w.prepare(p.sql)
		if err != nil {
			return err
		}
		*p.s = s
	}
	return nil
}

func openReader(path string) (*reader, error) {
	c, err := openConn(path)
	if err != nil {
		return nil, err
	}
	r := &reader{c: c}
	if err := c.execScript("PRAGMA busy_timeout = 10000; PRAGMA query_only = 1; PRAGMA temp_store = MEMORY;"); err != nil {
		_ = c.close()
		return nil, err
	}
	for _, p := range []struct {
		s   **stmt
		sql string
	}{
		{&r.meta, `SELECT ` + metaColumns + ` FROM sb_instances WHERE id = ?`},
		{&r.history, "SELECT events FROM sb_history WHERE instance_id = ? ORDER BY seq"},
		{&r.ids, "SELECT id FROM sb_instances WHERE id > ? ORDER BY id LIMIT ?"},
		{&r.exists, "SELECT 1 FROM sb_instances WHERE id = ?"},
		{&r.children, "SELECT id, status FROM sb_instances WHERE parent_id = ?"},
	} {
		s, err := c.prepare(p.sql)
		if err != nil {
			_ = c.close()
			return nil, err
		}
		*p.s = s
	}
	return r, nil
}

// rebuild loads the queues: visible inbox events become pending work for
// their instances, future ones durable timers, and every task is queued.
func (b *Backend) rebuild() error {
	for _, q := range []string{"SELECT coalesce(max(seq), 0) FROM sb_inbox", "SELECT coalesce(max(seq), 0) FROM sb_tasks"} {
		s, err := b.w.prepare(q)
		if err != nil {
			return err
		}
		if err := s.query(func() error { b.nextSeq = max(b.nextSeq, s.int64(0)); return nil }); err != nil {
			return err
		}
	}
	b.nextSeq++
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	s, err := b.w.prepare("SELECT seq, instance_id, visible_at, event FROM sb_inbox ORDER BY seq")
	if err != nil {
		return err
	}
	err = s.query(func() error {
		seq, id, at, payload := s.int64(0), s.text(1), s.int64(2), s.bytes(3)
		if at > now {
			e := &timerEntry{at: at, seq: seq, inst: id, payload: payload}
			b.timerSeqs[seq] = e
			b.pushTimer(e)
			return nil
		}
		ev, err := backend.UnmarshalHistoryEvent(payload)
		if err != nil {
			return fmt.Errorf("store: inbox event %d of %s: %w", seq, id, err)
		}
		b.addPending(id, &qEvent{seq: seq, event: ev})
		return nil
	})
	if err != nil {
		return err
	}
	s, err = b.w.prepare("SELECT seq, instance_id, event FROM sb_tasks ORDER BY seq")
	if err != nil {
		return err
	}
	return s.query(func() error {
		seq, id := s.int64(0), s.text(1)
		ev, err := backend.UnmarshalHistoryEvent(s.bytes(2))
		if err != nil {
			return fmt.Errorf("store: task %d of %s: %w", seq, id, err)
		}
		t := &qTask{seq: seq, instance: id, event: ev}
		b.taskSeqs[seq] = t
		b.pushTask(t)
		return nil
	})
}

func (b *Backend) now() int64 {
	if b.opts.Clock != nil {
		return b.opts.Clock.Now().UnixNano()
	}
	return time.Now().UnixNano()
}

// clockChanged is closed when the clock jumps; nil (never) on the wall
// clock.
func (b *Backend) clockChanged() <-chan struct{} {
	if b.opts.Clock == nil {
		return nil
	}
	return b.opts.Clock.Changed()
}

// Close stops the writer after it has committed what was submitted, stops
// the timers, closes the database and releases its lock. Work items still
// out are simply not completed: they are ready again at the next Open.
func (b *Backend) Close() error {
	b.closeMu.Lock()
	if b.closed {
		b.closeMu.Unlock()
		return nil
	}
	b.closed = true
	close(b.reqs)
	b.closeMu.Unlock()
	<-b.wdone
	close(b.quit)
	<-b.tdone
	<-b.cdone
	<-b.rdone
	b.mu.Lock()
	b.stopped = true
	b.orchCond.Broadcast()
	b.actCond.Broadcast()
	b.mu.Unlock()
	err := b.closeConns()
	b.lock.release()
	return err
}

func (b *Backend) closeConns() error {
	var errs []error
	for i := 0; i < b.nReader; i++ {
		r := <-b.readers
		errs = append(errs, r.c.close())
	}
	b.nReader = 0
	if b.ckpt != nil {
		errs = append(errs, b.ckpt.close())
		b.ckpt = nil
	}
	if b.w != nil {
		errs = append(errs, b.w.close())
		b.w = nil
	}
	return errors.Join(errs...)
}

func (b *Backend) timerLoop() {
	defer close(b.tdone)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		jumped := b.clockChanged()
		b.mu.Lock()
		now := b.now()
		b.fireDue(now)
		wait := time.Hour
		if len(b.timers) > 0 {
			wait = time.Duration(b.timers[0].at - now)
		}
		b.mu.Unlock()
		t.Reset(wait)
		select {
		case <-t.C:
		case <-b.poke:
		case <-jumped:
		case <-b.quit:
			return
		}
	}
}

// checkpointEvery is how many commits the writer makes between
// checkpoints (each commit writes a few pages to the WAL), and
// writerCheckpointEvery how many between the checkpoints it runs itself.
const (
	checkpointEvery       = 256
	writerCheckpointEvery = 1024
)

// checkpointLoop copies the WAL back into the database file when the writer
// asks (every checkpointEvery commits) or once a second after writes, and
// once more at Close. A PASSIVE checkpoint never blocks the writer, so its
// fsyncs cost the writer nothing. The same loop checks every second, and
// before each checkpoint, that the files are still those opened.
func (b *Backend) checkpointLoop() {
	defer close(b.cdone)
	t := time.NewTicker(fileCheckEvery)
	defer t.Stop()
	last := int64(-1)
	run := func() {
		if n := b.stats.batches.Load(); n != last {
			last = n
			b.checkFiles()
			if b.health.goneErr() != nil {
				return
			}
			if _, err := b.ckptStmt.exec(); err != nil {
				b.log.Warnf("store: checkpoint: %v", err)
			}
		}
	}
	for {
		select {
		case <-b.ckptPoke:
			run()
		case <-t.C:
			b.checkFiles()
			run()
		case <-b.quit:
			run()
			return
		}
	}
}

// ---- backend.Backend ----

// CreateTaskHub is a no-op: Open creates the schema.
func (b *Backend) CreateTaskHub(context.Context) error { return nil }

// DeleteTaskHub is not supported: delete the file while no process has it.
func (b *Backend) DeleteTaskHub(context.Context) error {
	return errors.New("store: DeleteTaskHub is not supported; remove the database file instead")
}

// Start is a no-op: Open starts the store.
func (b *Backend) Start(context.Context) error { return nil }

// Stop is a no-op: durabletask calls it before draining its workers, whose
// last completions still need the database. Close closes it.
func (b *Backend) Stop(context.Context) error { return nil }

func (b *Backend) String() string { return "sagabridge-sqlite::" + b.opts.Path }

// CreateOrchestrationInstance stores a new instance and its ExecutionStarted
// event (due at its ScheduledStartTimestamp, if it has one). An existing ID
// fails with api.ErrDuplicateInstance ("orchestration instance already
// exists") unless the reuse policy names its status: IGNORE then does
// nothing and returns nil, TERMINATE deletes the old instance and creates
// the new one.
func (b *Backend) CreateOrchestrationInstance(ctx context.Context, e *backend.HistoryEvent, opts ...backend.OrchestrationIdReusePolicyOptions) error {
	if e == nil || e.Timestamp == nil {
		return errors.New("store: ExecutionStarted event with a timestamp required")
	}
	es := e.GetExecutionStarted()
	if es == nil || es.OrchestrationInstance.GetInstanceId() == "" {
		return errors.New("store: ExecutionStarted event with an instance ID required")
	}
	policy := &protos.OrchestrationIdReusePolicy{}
	for _, o := range opts {
		if err := o(policy); err != nil {
			return err
		}
	}
	payload, err := backend.MarshalHistoryEvent(e)
	if err != nil {
		return err
	}
	id := es.OrchestrationInstance.GetInstanceId()
	r := &request{}
	r.apply = func() (func(), error) {
		status, exists, err := b.instanceStatus(id)
		if err != nil {
			return nil, err
		}
		var dropped func()
		if exists {
			if !statusIn(status, policy.OperationStatus) {
				return nil, api.ErrDuplicateInstance
			}
			switch policy.Action {
			case api.REUSE_ID_ACTION_IGNORE:
				return nil, nil
			case api.REUSE_ID_ACTION_TERMINATE:
				if dropped, err = b.deleteInstances([]string{id}); err != nil {
					return nil, err
				}
			default:
				return nil, api.ErrDuplicateInstance
			}
		}
		post, err := b.insertInstance(e, payload)
		if err != nil {
			return nil, err
		}
		return func() {
			if dropped != nil {
				dropped()
			}
			post()
		}, nil
	}
	return b.submit(ctx, r)
}

// AddNewOrchestrationEvent queues an event for an instance. Unlike the
// stock backend it fails with api.ErrInstanceNotFound ("no such instance
// exists") for a missing instance instead of storing an event nobody will
// read, and refuses an event raised on a finished instance (FinishedMessage).
// Terminate, suspend and resume of a finished instance, and terminate of a
// missing one, do nothing and return nil: durabletask's recursive terminate
// sends terminate to every child, finished or purged, from inside the
// parent's work item, and an error there would put the parent's work item
// back forever. (The gRPC TerminateInstance still reports a missing
// instance: it waits for the instance to finish, and that wait finds none.)
func (b *Backend) AddNewOrchestrationEvent(ctx context.Context, id api.InstanceID, e *backend.HistoryEvent) error {
	if e == nil || e.Timestamp == nil {
		return errors.New("store: event with a timestamp required")
	}
	payload, err := backend.MarshalHistoryEvent(e)
	if err != nil {
		return err
	}
	raised := e.GetEventRaised() != nil
	terminate := e.GetExecutionTerminated() != nil
	control := terminate || e.GetExecutionSuspended() != nil || e.GetExecutionResumed() != nil
	r := &request{}
	r.apply = func() (func(), error) {
		status, exists, err := b.instanceStatus(string(id))
		if err != nil {
			return nil, err
		}
		if !exists {
			if terminate {
				return nil, nil
			}
			return nil, api.ErrInstanceNotFound
		}
		if isFinished(status) {
			if raised {
				// Stored, it would be dropped unseen when the instance
				// is next loaded; saying so spares callers a status
				// query before every raise.
				return nil, fmt.Errorf("%s: %s is %s", FinishedMessage, id, statusName(status))
			}
			if control {
				return nil, nil
			}
		}
		seq := b.seq()
		if _, err := b.ws.insInbox.exec(seq, string(id), int64(0), payload); err != nil {
			return nil, err
		}
		return func() { b.addPending(string(id), &qEvent{seq: seq, event: e}) }, nil
	}
	return b.submit(ctx, r)
}

// FinishedMessage starts the error of an event raised on a finished
// instance; it crosses the engine's gRPC API as text, so callers match it.
const FinishedMessage = "orchestration already finished"

// NextOrchestrationWorkItem blocks until an instance has events ready and
// is not already handed out, locks it and returns its events. After Close
// it waits for ctx to end (durabletask's worker loop retries at once on any
// other error) and returns ctx's error.
func (b *Backend) NextOrchestrationWorkItem(ctx context.Context) (*backend.OrchestrationWorkItem, error) {
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.orchCond.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			if b.ready.len() > 0 {
				b.orchCond.Signal() // pass a wake-up meant for this waiter on
			}
			return nil, err
		}
		if in := b.popReadyUnlessStopped(); in != nil {
			n := min(len(in.pending), maxEventsPerWorkItem)
			lk := &orchLock{inst: in, events: in.pending[:n:n]}
			in.pending = in.pending[n:]
			if len(in.pending) == 0 {
				in.pending = nil
			}
			in.lock = lk
			events := make([]*backend.HistoryEvent, n)
			var dq int32
			for i, q := range lk.events {
				q.dequeues++
				dq = max(dq, q.dequeues)
				events[i] = q.event
			}
			return &backend.OrchestrationWorkItem{
				InstanceID: api.InstanceID(in.id),
				NewEvents:  events,
				LockedBy:   "sagabridge",
				RetryCount: dq - 1,
				Properties: map[string]any{lockKey: lk},
			}, nil
		}
		b.orchCond.Wait()
	}
}

// GetOrchestrationRuntimeState returns the instance's stored history; the
// orchestration worker appends the work item's new events to it. A missing
// instance has an empty history (durabletask's recursive purge reads it so).
func (b *Backend) GetOrchestrationRuntimeState(ctx context.Context, wi *backend.OrchestrationWorkItem) (*backend.OrchestrationRuntimeState, error) {
	if lk, _ := wi.Properties[lockKey].(*orchLock); lk != nil && startsInstance(wi.NewEvents) {
		// There is no history to read: the ExecutionStarted event leaves
		// the inbox in the commit that writes the first history chunk,
		// and re-creating an instance deletes the old one's.
		return runtimestate.NewOrchestrationRuntimeState(string(wi.InstanceID), nil, nil), nil
	}
	b.mu.Lock()
	events, ok := b.history.get(string(wi.InstanceID))
	b.mu.Unlock()
	if ok {
		return runtimestate.NewOrchestrationRuntimeState(string(wi.InstanceID), nil, events), nil
	}
	events, err := b.readHistory(ctx, string(wi.InstanceID))
	if err != nil {
		return nil, err
	}
	return runtimestate.NewOrchestrationRuntimeState(string(wi.InstanceID), nil, events), nil
}

func startsInstance(events []*backend.HistoryEvent) bool {
	for _, e := range events {
		if e.GetExecutionStarted() != nil {
			return true
		}
	}
	return false
}

func (b *Backend) readHistory(ctx context.Context, id string) ([]*backend.HistoryEvent, error) {
	r, err := b.reader(ctx)
	if err != nil {
		return nil, err
	}
	defer b.release(r)
	var events []*backend.HistoryEvent
	err = r.history.query(func() error {
		var err error
		events, err = decodeEvents(r.history.bytes(0), events)
		return err
	}, id)
	if err != nil {
		return nil, fmt.Errorf("store: read history of %s: %w", id, err)
	}
	return events, nil
}

// metaColumns are what scanMeta reads, in order.
const metaColumns = "id, name, status, created_at, updated_at, completed_at, input, output, custom_status, failure, parent_id"

// scanMeta reads a row of metaColumns. withPayloads false leaves input
// and output out.
func scanMeta(s *stmt, withPayloads bool) (*backend.OrchestrationMetadata, error) {
	md := &backend.OrchestrationMetadata{
		InstanceId:       s.text(0),
		Name:             s.text(1),
		RuntimeStatus:    api.OrchestrationStatus(s.int64(2)),
		CreatedAt:        timestamppb.New(time.Unix(0, s.int64(3))),
		LastUpdatedAt:    timestamppb.New(time.Unix(0, s.int64(4))),
		ParentInstanceId: s.text(10),
	}
	if !s.isNull(5) {
		md.CompletedAt = timestamppb.New(time.Unix(0, s.int64(5)))
	}
	for i, p := range []**wrapperspb.StringValue{&md.Input, &md.Output, &md.CustomStatus} {
		if (withPayloads || i == 2) && !s.isNull(6+i) {
			*p = wrapperspb.String(s.text(6 + i))
		}
	}
	if f := s.bytes(9); len(f) > 0 {
		fd := &protos.TaskFailureDetails{}
		if err := proto.Unmarshal(f, fd); err != nil {
			return nil, fmt.Errorf("store: failure details of %s: %w", md.InstanceId, err)
		}
		md.FailureDetails = fd
	}
	return md, nil
}

// GetOrchestrationMetadata returns api.ErrInstanceNotFound for a missing
// instance. The custom status is the last one the orchestration set.
func (b *Backend) GetOrchestrationMetadata(ctx context.Context, id api.InstanceID) (*backend.OrchestrationMetadata, error) {
	r, err := b.reader(ctx)
	if err != nil {
		return nil, err
	}
	defer b.release(r)
	var md *backend.OrchestrationMetadata
	err = r.meta.query(func() error {
		md, err = scanMeta(r.meta, true)
		return err
	}, string(id))
	if err != nil {
		return nil, err
	}
	if md == nil {
		return nil, api.ErrInstanceNotFound
	}
	return md, nil
}

// WatchOrchestrationRuntimeStatus calls condition with the instance's
// metadata now and after every commit that changes the instance, until it
// returns true (nil), ctx ends, the instance is missing
// (api.ErrInstanceNotFound) or the store closes. Nothing polls: the writer
// wakes the watchers of the instances it changed.
func (b *Backend) WatchOrchestrationRuntimeStatus(ctx context.Context, id api.InstanceID, condition func(*backend.OrchestrationMetadata) bool) error {
	w := &watcher{changed: make(chan struct{}, 1)}
	b.mu.Lock()
	ws := b.watchers[string(id)]
	if ws == nil {
		ws = map[*watcher]struct{}{}
		b.watchers[string(id)] = ws
	}
	ws[w] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(ws, w)
		if len(ws) == 0 {
			delete(b.watchers, string(id))
		}
		b.mu.Unlock()
	}()
	for {
		md, err := b.GetOrchestrationMetadata(ctx, id)
		if err != nil {
			return err
		}
		if condition(md) {
			return nil
		}
		select {
		case <-w.changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-b.quit:
			return ErrClosed
		}
	}
}

// CompleteOrchestrationWorkItem commits everything the work item produced
// in one transaction and releases the instance.
func (b *Backend) CompleteOrchestrationWorkItem(ctx context.Context, wi *backend.OrchestrationWorkItem) error {
	lk, _ := wi.Properties[lockKey].(*orchLock)
	if lk == nil || wi.State == nil {
		return backend.ErrWorkItemLockLost
	}
	c, err := prepareCompletion(wi)
	if err != nil {
		return err
	}
	r := &request{}
	r.apply = func() (func(), error) { return b.applyCompletion(lk, c) }
	return b.submit(ctx, r)
}

// AbandonOrchestrationWorkItem puts the work item's events back, after the
// work item's abandon delay.
func (b *Backend) AbandonOrchestrationWorkItem(_ context.Context, wi *backend.OrchestrationWorkItem) error {
	lk, _ := wi.Properties[lockKey].(*orchLock)
	if lk == nil {
		return backend.ErrWorkItemLockLost
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	in := lk.inst
	if in.lock != lk {
		return backend.ErrWorkItemLockLost
	}
	in.lock = nil
	if lk.stale {
		b.makeReady(in)
		b.forget(in)
		return nil
	}
	in.pending = append(lk.events[:len(lk.events):len(lk.events)], in.pending...)
	if d := int64(wi.GetAbandonDelay()); d > 0 {
		in.notBefore = b.now() + d
		b.pushTimer(&timerEntry{at: in.notBefore, inst: in.id})
		return nil
	}
	b.makeReady(in)
	return nil
}

// NextActivityWorkItem blocks until an activity task is queued and hands it
// out. After Close it waits for ctx to end, as NextOrchestrationWorkItem.
func (b *Backend) NextActivityWorkItem(ctx context.Context) (*backend.ActivityWorkItem, error) {
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.actCond.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			if b.tasks.len() > 0 {
				b.actCond.Signal()
			}
			return nil, err
		}
		if !b.stopped {
			if t, ok := b.tasks.pop(); ok {
				if t.dead {
					continue
				}
				t.out = true
				t.dequeues++
				return &backend.ActivityWorkItem{
					SequenceNumber: t.seq,
					InstanceID:     api.InstanceID(t.instance),
					NewEvent:       t.event,
					LockedBy:       "sagabridge",
				}, nil
			}
		}
		b.actCond.Wait()
	}
}

// CompleteActivityWorkItem deletes the task and queues its result for the
// orchestration in one transaction.
func (b *Backend) CompleteActivityWorkItem(ctx context.Context, wi *backend.ActivityWorkItem) error {
	if wi.Result == nil {
		return errors.New("store: activity work item without a result")
	}
	b.mu.Lock()
	t := b.taskSeqs[wi.SequenceNumber]
	out := t != nil && t.out
	b.mu.Unlock()
	if !out {
		return backend.ErrWorkItemLockLost
	}
	payload, err := backend.MarshalHistoryEvent(wi.Result)
	if err != nil {
		return err
	}
	r := &request{}
	r.apply = func() (func(), error) {
		n, err := b.ws.delTask.exec(t.seq)
		if err != nil {
			return nil, err
		}
		if n == 0 { // purged meanwhile
			return nil, backend.ErrWorkItemLockLost
		}
		seq := b.seq()
		if _, err := b.ws.insInbox.exec(seq, t.instance, int64(0), payload); err != nil {
			return nil, err
		}
		return func() {
			delete(b.taskSeqs, t.seq)
			t.out = false
			b.addPending(t.instance, &qEvent{seq: seq, event: wi.Result})
		}, nil
	}
	return b.submit(ctx, r)
}

// AbandonActivityWorkItem queues the task again, backing off as
// orchestration work items do.
func (b *Backend) AbandonActivityWorkItem(_ context.Context, wi *backend.ActivityWorkItem) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.taskSeqs[wi.SequenceNumber]
	if t == nil || !t.out {
		return backend.ErrWorkItemLockLost
	}
	t.out = false
	if d := abandonDelay(t.dequeues); d > 0 {
		b.pushTimer(&timerEntry{at: b.now() + d, seq: t.seq, task: t})
		return nil
	}
	b.pushTask(t)
	return nil
}

// PurgeOrchestrationState deletes an instance: api.ErrInstanceNotFound if
// it does not exist, api.ErrNotCompleted while it runs unless force is
// set. A forced purge of a running instance drops its queued work; a work
// item out at the time can be neither completed nor put back. Children
// are durabletask's to purge (recursive purge calls this once per
// instance, children first).
func (b *Backend) PurgeOrchestrationState(ctx context.Context, id api.InstanceID, force bool) error {
	r := &request{}
	r.apply = func() (func(), error) {
		status, exists, err := b.instanceStatus(string(id))
		if err != nil {
			return nil, err
		}
		if !exists {
			return nil, api.ErrInstanceNotFound
		}
		if !force && !isFinished(status) {
			return nil, api.ErrNotCompleted
		}
		return b.deleteInstances([]string{string(id)})
	}
	return b.submit(ctx, r)
}

func isFinished(s api.OrchestrationStatus) bool {
	switch s {
	case api.RUNTIME_STATUS_COMPLETED, api.RUNTIME_STATUS_FAILED, api.RUNTIME_STATUS_TERMINATED:
		return true
	}
	return false
}

func statusIn(s api.OrchestrationStatus, list []api.OrchestrationStatus) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// statusName is the status as durabletask's stock backends store it
// ("COMPLETED").
func statusName(s api.OrchestrationStatus) string {
	return strings.TrimPrefix(s.String(), "ORCHESTRATION_STATUS_")
}

// ---- reads ----

func (b *Backend) reader(ctx context.Context) (*reader, error) {
	select {
	case r := <-b.readers:
		return r, nil
	default:
	}
	select {
	case r := <-b.readers:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.quit:
		return nil, ErrClosed
	}
}

func (b *Backend) release(r *reader) { b.readers <- r }

// read runs fn with a reader.
func (b *Backend) read(ctx context.Context, fn func(*reader) error) error {
	r, err := b.reader(ctx)
	if err != nil {
		return err
	}
	defer b.release(r)
	return fn(r)
}

type nopLogger struct{}

func (nopLogger) Debug(...any)          {}
func (nopLogger) Debugf(string, ...any) {}
func (nopLogger) Info(...any)           {}
func (nopLogger) Infof(string, ...any)  {}
func (nopLogger) Warn(...any)           {}
func (nopLogger) Warnf(string, ...any)  {}
func (nopLogger) Error(...any)          {}
func (nopLogger) Errorf(string, ...any) {}
