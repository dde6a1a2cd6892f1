package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/dapr/durabletask-go/api"
	"github.com/dapr/durabletask-go/api/protos"
	"github.com/dapr/durabletask-go/backend"
	"github.com/dapr/durabletask-go/backend/runtimestate"
)

// request is one write. apply runs on the writer goroutine inside the
// transaction; the func it returns runs after the commit, under b.mu, and
// applies the write to the in-memory queues.
type request struct {
	apply func() (func(), error)
	done  chan error
}

// submit hands r to the writer and waits for its commit. Once handed over
// it waits regardless of ctx: an answer before the commit could let a
// caller put back work that the commit then consumes.
func (b *Backend) submit(ctx context.Context, r *request) error {
	r.done = make(chan error, 1)
	b.closeMu.RLock()
	if b.closed {
		b.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		b.closeMu.RUnlock()
		return ctx.Err()
	}
	b.closeMu.RUnlock()
	return <-r.done
}

func (b *Backend) writeLoop() {
	defer close(b.wdone)
	batch := make([]*request, 0, b.opts.MaxBatch)
	for {
		r, ok := <-b.reqs
		if !ok {
			return
		}
		batch = append(batch[:0], r)
	more:
		for len(batch) < b.opts.MaxBatch {
			select {
			case r2, ok := <-b.reqs:
				if !ok {
					break more
				}
				batch = append(batch, r2)
			default:
				break more
			}
		}
		b.runBatch(batch)
		clear(batch)
	}
}

// runBatch commits a batch in one transaction, each request in its own
// savepoint so that one failing request leaves the others' writes intact.
// Requests that delete instances (purge, re-create, retention) share
// batches with the others: a later request of the batch that completes a
// work item of a deleted instance fails as a lost lock (batchDeleted), as
// it would once the deletion's in-memory part ran.
func (b *Backend) runBatch(batch []*request) {
	errs := make([]error, len(batch))
	if err := b.health.goneErr(); err != nil {
		b.failBatch(batch, errs, err)
		return
	}
	tb := time.Now()
	defer func() { b.stats.batchNanos.Add(int64(time.Since(tb))) }()
	clear(b.batchDeleted)
	if _, err := b.ws.begin.exec(); err != nil {
		b.failBatch(batch, errs, err)
		return
	}
	posts, applied, err := b.applyBatch(batch, errs)
	if err != nil {
		b.failBatch(batch, errs, err)
		return
	}
	if applied == 0 {
		_, _ = b.ws.rollback.exec()
		b.replyBatch(batch, errs)
		return
	}
	t0 := time.Now()
	if _, err := b.ws.commit.exec(); err != nil {
		_, _ = b.ws.rollback.exec()
		b.failBatch(batch, errs, fmt.Errorf("store: commit: %w", err))
		return
	}
	b.health.setOutage(nil)
	b.stats.commitNanos.Add(int64(time.Since(t0)))
	b.batchCommitted()
	b.stats.writes.Add(int64(applied))
	b.mu.Lock()
	for _, p := range posts {
		if p != nil {
			p()
		}
	}
	b.mu.Unlock()
	b.replyBatch(batch, errs)
}

// applyBatch applies each request of batch in the open transaction, in a
// savepoint of its own when there are several: errs[i] is what failed
// request i, posts[i] the in-memory half of one that applied, applied how
// many did. An error means the transaction could not be kept and is rolled
// back.
func (b *Backend) applyBatch(batch []*request, errs []error) (posts []func(), applied int, err error) {
	posts = make([]func(), len(batch))
	multi := len(batch) > 1
	for i, r := range batch {
		if multi {
			if _, err := b.ws.savepoint.exec(); err != nil {
				errs[i] = err
				continue
			}
		}
		b.reqDeleted = b.reqDeleted[:0]
		post, err := r.apply()
		if err != nil {
			errs[i] = err
			if multi {
				// SQLite rolls the whole transaction back itself after
				// some errors (a full disk, an I/O error); then there is
				// no savepoint left to roll back to.
				_, e1 := b.ws.rollbackTo.exec()
				_, e2 := b.ws.release.exec()
				if e1 != nil || e2 != nil {
					_, _ = b.ws.rollback.exec()
					return nil, 0, errors.Join(classify(err), fmt.Errorf("store: roll back a failed write: %w", errors.Join(e1, e2)))
				}
			}
			continue
		}
		if multi {
			if _, err := b.ws.release.exec(); err != nil {
				_, _ = b.ws.rollback.exec()
				return nil, 0, err
			}
		}
		for _, id := range b.reqDeleted {
			b.batchDeleted[id] = true
		}
		posts[i] = post
		applied++
	}
	return posts, applied, nil
}

// batchCommitted counts a committed batch and, now and then, checkpoints
// the WAL or pokes the checkpointer.
func (b *Backend) batchCommitted() {
	switch n := b.stats.batches.Add(1); {
	case n%writerCheckpointEvery == 0:
		// The checkpointer copies frames while the writer goes on, so the
		// WAL never catches up under steady writes and SQLite only
		// restarts it once a checkpoint covers every frame. The writer
		// checkpoints the (short) rest now and then, between two commits,
		// so that the next commit starts the WAL over.
		if _, err := b.ws.checkpoint.exec(); err != nil {
			b.log.Warnf("store: checkpoint: %v", err)
		}
	case n%checkpointEvery == 0:
		select {
		case b.ckptPoke <- struct{}{}:
		default:
		}
	}
}

// replyBatch tells each request of batch its error (nil: committed), after
// marking the store unavailable if one of them says so.
func (b *Backend) replyBatch(batch []*request, errs []error) {
	outage := false
	for i := range errs {
		if errs[i] != nil {
			errs[i] = classify(errs[i])
			outage = outage || errors.Is(errs[i], ErrUnavailable)
		}
	}
	if outage { // before the callers hear of it: Healthy agrees with what they were told
		b.health.setOutage(errors.Join(errs...))
	}
	for i, r := range batch {
		r.done <- errs[i]
	}
}

// failBatch fails with err every request of batch that has no error yet,
// and replies.
func (b *Backend) failBatch(batch []*request, errs []error, err error) {
	for i := range errs {
		if errs[i] == nil {
			errs[i] = err
		}
	}
	b.replyBatch(batch, errs)
}

// seq allocates an inbox or task sequence number (writer goroutine only).
// Numbers are never reused within a process, so the in-memory maps keyed
// by them cannot confuse a deleted row with a new one.
func (b *Backend) seq() int64 {
	s := b.nextSeq
	b.nextSeq++
	return s
}

func (b *Backend) instanceStatus(id string) (api.OrchestrationStatus, bool, error) {
	var status int64
	found := false
	err := b.ws.status.query(func() error { status, found = b.ws.status.int64(0), true; return nil }, id)
	return api.OrchestrationStatus(status), found, err
}

// insertInstance writes a new instance row and its ExecutionStarted event,
// due now or at its ScheduledStartTimestamp. The returned func queues it
// after the commit.
func (b *Backend) insertInstance(e *backend.HistoryEvent, payload []byte) (func(), error) {
	es := e.GetExecutionStarted()
	id := es.OrchestrationInstance.GetInstanceId()
	var parent any
	if p := es.ParentInstance.GetOrchestrationInstance().GetInstanceId(); p != "" {
		parent = p
	}
	var input any
	if es.Input != nil {
		input = es.Input.GetValue()
	}
	ts := e.Timestamp.AsTime().UnixNano()
	if _, err := b.ws.insInstance.exec(id, es.Name, es.Version.GetValue(), es.OrchestrationInstance.ExecutionId.GetValue(),
		parent, int64(api.RUNTIME_STATUS_PENDING), ts, b.now(), input); err != nil {
		return nil, err
	}
	var at int64
	if st := es.GetScheduledStartTimestamp(); st != nil && st.AsTime().UnixNano() > b.now() {
		at = st.AsTime().UnixNano()
	}
	seq := b.seq()
	if _, err := b.ws.insInbox.exec(seq, id, at, payload); err != nil {
		return nil, err
	}
	return func() {
		if at > 0 {
			te := &timerEntry{at: at, seq: seq, inst: id, payload: payload}
			b.timerSeqs[seq] = te
			b.pushTimer(te)
		} else {
			b.addPending(id, &qEvent{seq: seq, event: e})
		}
		b.notify(id)
	}, nil
}

// deleteInstances deletes every row of the instances; the returned func
// drops them from memory after the commit and wakes their watchers.
func (b *Backend) deleteInstances(ids []string) (func(), error) {
	for _, id := range ids {
		if _, err := b.ws.delInstance.exec(id); err != nil {
			return nil, err
		}
		if _, err := b.ws.delHistory.exec(id); err != nil {
			return nil, err
		}
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	var inbox, tasks []int64
	s := b.ws.delInboxOf
	if err := s.query(func() error { inbox = append(inbox, s.int64(0)); return nil }, string(list)); err != nil {
		return nil, err
	}
	s = b.ws.delTasksOf
	if err := s.query(func() error { tasks = append(tasks, s.int64(0)); return nil }, string(list)); err != nil {
		return nil, err
	}
	b.reqDeleted = append(b.reqDeleted, ids...)
	return func() {
		b.dropInstances(ids, inbox, tasks)
		for _, id := range ids {
			b.notify(id)
		}
	}, nil
}

// completion is a work item's outcome, marshaled before it reaches the
// writer so that the writer only writes.
type completion struct {
	id             string
	status         int64
	oldStatus      int64 // before the work item, from its history
	continuedAsNew bool
	historySeq     int
	history        []byte

	started     bool
	createdAt   int64
	input       any
	executionID string

	completed bool
	output    any
	failure   any

	customSet bool
	custom    any

	tasks    []*backend.HistoryEvent
	taskData [][]byte
	timers   []*backend.HistoryEvent
	timerAt  []int64
	timerRaw [][]byte
	msgs     []*protos.OrchestrationRuntimeStateMessage
	msgData  [][]byte

	finished bool                    // no further work items expected
	full     []*backend.HistoryEvent // the history after this work item
}

func prepareCompletion(wi *backend.OrchestrationWorkItem) (*completion, error) {
	st := wi.State
	c := &completion{
		id:             string(wi.InstanceID),
		status:         int64(runtimestate.RuntimeStatus(st)),
		oldStatus:      int64(historyStatus(st.OldEvents)),
		continuedAsNew: st.ContinuedAsNew,
		historySeq:     len(st.OldEvents),
	}
	var err error
	if len(st.NewEvents) > 0 {
		if c.history, err = encodeEvents(st.NewEvents); err != nil {
			return nil, err
		}
	}
	for _, e := range st.NewEvents {
		if es := e.GetExecutionStarted(); es != nil && !c.started {
			c.started = true
			c.createdAt = e.Timestamp.AsTime().UnixNano()
			if es.Input != nil {
				c.input = es.Input.GetValue()
			}
			c.executionID = es.OrchestrationInstance.GetExecutionId().GetValue()
		}
		if ec := e.GetExecutionCompleted(); ec != nil && !c.completed {
			c.completed = true
			if ec.Result != nil {
				c.output = ec.Result.GetValue()
			}
			if ec.FailureDetails != nil {
				b, err := proto.Marshal(ec.FailureDetails)
				if err != nil {
					return nil, fmt.Errorf("store: marshal failure details: %w", err)
				}
				c.failure = b
			}
		}
	}
	c.finished = runtimestate.IsCompleted(st)
	if !c.finished {
		c.full = make([]*backend.HistoryEvent, 0, len(st.OldEvents)+len(st.NewEvents))
		c.full = append(append(c.full, st.OldEvents...), st.NewEvents...)
	}
	if st.CustomStatus != nil {
		c.customSet = true
		c.custom = st.CustomStatus.GetValue()
	}
	for _, e := range st.PendingTasks {
		p, err := backend.MarshalHistoryEvent(e)
		if err != nil {
			return nil, err
		}
		c.tasks = append(c.tasks, e)
		c.taskData = append(c.taskData, p)
	}
	for _, e := range st.PendingTimers {
		p, err := backend.MarshalHistoryEvent(e)
		if err != nil {
			return nil, err
		}
		c.timers = append(c.timers, e)
		c.timerAt = append(c.timerAt, max(1, e.GetTimerFired().GetFireAt().AsTime().UnixNano()))
		c.timerRaw = append(c.timerRaw, p)
	}
	for _, m := range st.PendingMessages {
		p, err := backend.MarshalHistoryEvent(m.HistoryEvent)
		if err != nil {
			return nil, err
		}
		if m.TargetInstanceID == "" {
			// durabletask addresses a stall (ExecutionStalled: the
			// orchestrator version is not registered) to no one: the
			// instance itself is meant.
			m = &protos.OrchestrationRuntimeStateMessage{HistoryEvent: m.HistoryEvent, TargetInstanceID: c.id}
		}
		c.msgs = append(c.msgs, m)
		c.msgData = append(c.msgData, p)
	}
	return c, nil
}

// historyStatus is the status a history leaves its instance in, as
// runtimestate.RuntimeStatus computes it.
func historyStatus(events []*backend.HistoryEvent) api.OrchestrationStatus {
	started, suspended, stalled := false, false, false
	for _, e := range events {
		switch {
		case e.GetExecutionStarted() != nil:
			started = true
		case e.GetExecutionCompleted() != nil:
			return e.GetExecutionCompleted().GetOrchestrationStatus()
		case e.GetExecutionSuspended() != nil:
			suspended = true
		case e.GetExecutionResumed() != nil:
			suspended = false
		case e.GetExecutionStalled() != nil:
			stalled = true
		}
	}
	switch {
	case !started:
		return api.RUNTIME_STATUS_PENDING
	case stalled:
		return api.RUNTIME_STATUS_STALLED
	case suspended:
		return api.RUNTIME_STATUS_SUSPENDED
	}
	return api.RUNTIME_STATUS_RUNNING
}

// applyCompletion is the writer's half of CompleteOrchestrationWorkItem.
func (b *Backend) applyCompletion(lk *orchLock, c *completion) (func(), error) {
	b.mu.Lock()
	valid := lk.inst.lock == lk && !lk.stale
	b.mu.Unlock()
	if !valid || b.batchDeleted[c.id] {
		return nil, backend.ErrWorkItemLockLost
	}
	if err := b.writeCompletedStatus(c); err != nil {
		return nil, err
	}
	w := &b.ws
	if c.continuedAsNew {
		if _, err := w.delHistory.exec(c.id); err != nil {
			return nil, err
		}
	}
	if c.history != nil {
		if _, err := w.insHistory.exec(c.id, int64(c.historySeq), c.history); err != nil {
			return nil, err
		}
	}
	for _, q := range lk.events {
		if _, err := w.delInbox.exec(q.seq); err != nil {
			return nil, err
		}
	}
	taskSeqs := make([]int64, len(c.tasks))
	for i := range c.tasks {
		taskSeqs[i] = b.seq()
		if _, err := w.insTask.exec(taskSeqs[i], c.id, c.taskData[i]); err != nil {
			return nil, err
		}
	}
	timerSeqs := make([]int64, len(c.timers))
	for i := range c.timers {
		timerSeqs[i] = b.seq()
		if _, err := w.insInbox.exec(timerSeqs[i], c.id, c.timerAt[i], c.timerRaw[i]); err != nil {
			return nil, err
		}
	}
	msgSeqs, posts, err := b.writeMessages(c)
	if err != nil {
		return nil, err
	}
	return func() {
		in := lk.inst
		in.lock = nil
		if c.finished {
			b.history.remove(c.id)
		} else {
			b.history.put(c.id, c.full)
		}
		now := b.now()
		for i, e := range c.timers {
			if c.timerAt[i] <= now {
				in.pending = append(in.pending, &qEvent{seq: timerSeqs[i], event: e})
				continue
			}
			te := &timerEntry{at: c.timerAt[i], seq: timerSeqs[i], inst: c.id, payload: c.timerRaw[i]}
			b.timerSeqs[te.seq] = te
			b.pushTimer(te)
		}
		for i, e := range c.tasks {
			t := &qTask{seq: taskSeqs[i], instance: c.id, event: e}
			b.taskSeqs[t.seq] = t
			b.pushTask(t)
		}
		for _, p := range posts {
			p()
		}
		for i, m := range c.msgs {
			if msgSeqs[i] >= 0 {
				b.addPending(m.TargetInstanceID, &qEvent{seq: msgSeqs[i], event: m.HistoryEvent})
			}
		}
		b.makeReady(in)
		b.forget(in)
		b.notify(c.id)
	}, nil
}

// writeCompletedStatus updates the instance's row to what the completion
// says; a row in another state than the lock saw means the lock is lost.
func (b *Backend) writeCompletedStatus(c *completion) error {
	w := &b.ws
	now := b.now()
	var n int64
	var err error
	switch {
	case c.continuedAsNew:
		n, err = w.updStarted.exec(c.status, now, c.completed, now, c.output, c.failure, c.customSet, c.custom, c.id,
			c.createdAt, c.input, c.executionID)
	case c.completed:
		n, err = w.updDone.exec(c.status, now, c.output, c.failure, c.customSet, c.custom, c.id)
	case c.oldStatus == c.status:
		if n, err = w.updSame.exec(now, c.customSet, c.custom, c.id, c.status); err == nil && n == 0 {
			// the stored status was not the one the history says
			n, err = w.updStatus.exec(now, c.customSet, c.custom, c.id, c.status)
		}
	default:
		n, err = w.updStatus.exec(now, c.customSet, c.custom, c.id, c.status)
	}
	if err != nil {
		return err
	}
	if n == 0 {
		return backend.ErrWorkItemLockLost
	}
	return nil
}

// writeMessages writes the completion's messages to other instances (and
// the sub-orchestrations it creates): msgSeqs[i] is the inbox sequence of
// c.msgs[i], -1 when it was dropped or created an instance; posts are the
// in-memory halves of the instances it created or replaced.
func (b *Backend) writeMessages(c *completion) (msgSeqs []int64, posts []func(), err error) {
	w := &b.ws
	msgSeqs = make([]int64, len(c.msgs))
	for i, m := range c.msgs {
		target := m.TargetInstanceID
		msgSeqs[i] = -1
		status, exists, err := b.instanceStatus(target)
		if err != nil {
			return nil, nil, err
		}
		if m.HistoryEvent.GetExecutionStarted() != nil {
			if exists && !isFinished(status) {
				b.log.Warnf("%s: sub-orchestration %s already exists and runs; its creation is dropped", c.id, target)
				continue
			}
			if exists {
				// A finished instance with the child's ID (an earlier
				// run of a parent with the same ID): the new child
				// replaces it, or the parent would wait forever.
				drop, err := b.deleteInstances([]string{target})
				if err != nil {
					return nil, nil, err
				}
				posts = append(posts, drop)
			}
			post, err := b.insertInstance(m.HistoryEvent, c.msgData[i])
			if err != nil {
				return nil, nil, err
			}
			posts = append(posts, post)
			continue
		}
		switch {
		case !exists:
			b.log.Warnf("%s: message to missing instance %s dropped", c.id, target)
			continue
		case isFinished(status) && target != c.id:
			// Read by no one: the worker drops every event of a
			// finished instance.
			continue
		case target == c.id && c.finished:
			continue
		}
		msgSeqs[i] = b.seq()
		if _, err := w.insInbox.exec(msgSeqs[i], target, int64(0), c.msgData[i]); err != nil {
			return nil, nil, err
		}
	}
	return msgSeqs, posts, nil
}

// Stats are counters of the writer since Open.
type Stats struct {
	Batches    int64         // transactions committed
	Writes     int64         // requests committed in them
	CommitTime time.Duration // spent in COMMIT
	BatchTime  time.Duration // spent writing, COMMIT included
}

type stats struct {
	batches, writes, commitNanos, batchNanos atomic.Int64
}

// Stats reports the writer's counters.
func (b *Backend) Stats() Stats {
	return Stats{
		Batches:    b.stats.batches.Load(),
		Writes:     b.stats.writes.Load(),
		CommitTime: time.Duration(b.stats.commitNanos.Load()),
		BatchTime:  time.Duration(b.stats.batchNanos.Load()),
	}
}
