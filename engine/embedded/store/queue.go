package store

import (
	"cmp"
	"container/heap"
	"container/list"
	"slices"
	"time"

	"github.com/dapr/durabletask-go/backend"
)

// The in-memory side of the store. Everything here is guarded by
// Backend.mu and is rebuilt from sb_inbox and sb_tasks at start.

// qEvent is an inbox event visible now and not yet handed out.
type qEvent struct {
	seq      int64
	event    *backend.HistoryEvent
	dequeues int32
}

// inst is an instance that has pending events or a work item out. Parked
// instances (nothing to do until an event arrives) have no entry.
type inst struct {
	id        string
	pending   []*qEvent
	lock      *orchLock // the work item out, if any
	queued    bool      // in Backend.ready
	notBefore int64     // unix ns; set while an abandoned work item backs off
}

// orchLock is a work item handed out. stale means the instance was purged
// or re-created meanwhile: the work item can be neither completed nor put
// back.
type orchLock struct {
	inst   *inst
	events []*qEvent
	stale  bool
}

// qTask is an activity task, queued or out.
type qTask struct {
	seq      int64
	instance string
	event    *backend.HistoryEvent
	dequeues int32
	out      bool // handed out
	dead     bool // purged while queued or out
}

// timerEntry is something due later: a durable timer (payload set), the
// end of an abandoned work item's back-off (neither set), or an abandoned
// activity task's retry (task set).
type timerEntry struct {
	at      int64
	seq     int64
	inst    string
	payload []byte
	task    *qTask
	dead    bool
	index   int
}

type timerHeap []*timerEntry

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	e := x.(*timerEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	e.index = -1
	return e
}

// fifo is a slice queue that reuses its storage.
type fifo[T any] struct {
	items []T
	head  int
}

func (q *fifo[T]) len() int { return len(q.items) - q.head }

func (q *fifo[T]) push(v T) { q.items = append(q.items, v) }

func (q *fifo[T]) pop() (T, bool) {
	var zero T
	if q.head == len(q.items) {
		return zero, false
	}
	v := q.items[q.head]
	q.items[q.head] = zero
	q.head++
	switch {
	case q.head == len(q.items):
		q.items, q.head = q.items[:0], 0
	case q.head >= 1024 && q.head*2 >= len(q.items):
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return v, true
}

// instFor returns the entry for id, creating it.
func (b *Backend) instFor(id string) *inst {
	in := b.insts[id]
	if in == nil {
		in = &inst{id: id}
		b.insts[id] = in
	}
	return in
}

// addPending makes an event visible to the instance's next work item.
func (b *Backend) addPending(id string, q *qEvent) {
	in := b.instFor(id)
	in.pending = append(in.pending, q)
	b.makeReady(in)
}

// makeReady queues the instance if it can be handed out.
func (b *Backend) makeReady(in *inst) {
	if in.queued || in.lock != nil || len(in.pending) == 0 || in.notBefore > b.now() {
		return
	}
	in.queued = true
	b.ready.push(in)
	b.orchCond.Signal()
}

// popReady returns the next instance that can be handed out, or nil.
func (b *Backend) popReady() *inst {
	now := b.now()
	for {
		in, ok := b.ready.pop()
		if !ok {
			return nil
		}
		in.queued = false
		if in.lock == nil && len(in.pending) > 0 && in.notBefore <= now && b.insts[in.id] == in {
			return in
		}
		b.forget(in)
	}
}

func (b *Backend) popReadyUnlessStopped() *inst {
	if b.stopped {
		return nil
	}
	return b.popReady()
}

// forget drops the entry of an instance with nothing to do.
func (b *Backend) forget(in *inst) {
	if in.lock == nil && len(in.pending) == 0 && !in.queued && b.insts[in.id] == in {
		delete(b.insts, in.id)
	}
}

func (b *Backend) pushTimer(e *timerEntry) {
	heap.Push(&b.timers, e)
	if e.index == 0 {
		select {
		case b.poke <- struct{}{}:
		default:
		}
	}
}

// fireDue moves everything due by now out of the timer heap.
func (b *Backend) fireDue(now int64) {
	for len(b.timers) > 0 && b.timers[0].at <= now {
		e := heap.Pop(&b.timers).(*timerEntry)
		if e.dead {
			continue
		}
		switch {
		case e.task != nil:
			b.pushTask(e.task)
		case e.payload != nil:
			delete(b.timerSeqs, e.seq)
			ev, err := backend.UnmarshalHistoryEvent(e.payload)
			if err != nil {
				b.log.Errorf("store: dropping unreadable timer %d of %s: %v", e.seq, e.inst, err)
				continue
			}
			b.addPending(e.inst, &qEvent{seq: e.seq, event: ev})
		default:
			if in := b.insts[e.inst]; in != nil && in.notBefore <= now {
				in.notBefore = 0
				b.makeReady(in)
			}
		}
	}
}

func (b *Backend) pushTask(t *qTask) {
	if t.dead {
		return
	}
	b.tasks.push(t)
	b.actCond.Signal()
}

// dropInstances forgets everything queued for purged (or re-created)
// instances. Called after the rows are deleted, with the sequence numbers
// of their deleted inbox events and tasks.
func (b *Backend) dropInstances(ids []string, inboxSeqs, taskSeqs []int64) {
	for _, id := range ids {
		b.history.remove(id)
		if in := b.insts[id]; in != nil {
			in.pending = nil
			in.notBefore = 0
			if in.lock != nil {
				in.lock.stale = true
			}
			b.forget(in)
		}
	}
	for _, s := range inboxSeqs {
		if e := b.timerSeqs[s]; e != nil {
			e.dead = true
			delete(b.timerSeqs, s)
		}
	}
	for _, s := range taskSeqs {
		if t := b.taskSeqs[s]; t != nil {
			t.dead = true
			delete(b.taskSeqs, s)
		}
	}
}

// abandonDelay is durabletask's back-off for a work item put back
// (OrchestrationWorkItem.GetAbandonDelay), by how often it was handed out.
func abandonDelay(dequeues int32) int64 {
	wi := backend.OrchestrationWorkItem{RetryCount: dequeues - 1}
	return int64(wi.GetAbandonDelay())
}

// historyCache keeps the histories of recently run, unfinished instances:
// the store is the only writer, so what it committed last is what a read
// would return. Least recently used entries go first.
type historyCache struct {
	max     int
	entries map[string]*list.Element
	lru     list.List // of *historyEntry, most recent first
}

type historyEntry struct {
	id     string
	events []*backend.HistoryEvent
}

func (c *historyCache) init(n int) {
	if n == 0 {
		n = 1024
	}
	c.max = max(n, 0)
	c.entries = map[string]*list.Element{}
}

func (c *historyCache) get(id string) ([]*backend.HistoryEvent, bool) {
	el := c.entries[id]
	if el == nil {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*historyEntry).events, true
}

func (c *historyCache) put(id string, events []*backend.HistoryEvent) {
	if c.max == 0 {
		return
	}
	if el := c.entries[id]; el != nil {
		el.Value.(*historyEntry).events = events
		c.lru.MoveToFront(el)
		return
	}
	c.entries[id] = c.lru.PushFront(&historyEntry{id: id, events: events})
	for c.lru.Len() > c.max {
		el := c.lru.Back()
		c.lru.Remove(el)
		delete(c.entries, el.Value.(*historyEntry).id)
	}
}

func (c *historyCache) remove(id string) {
	if el := c.entries[id]; el != nil {
		c.lru.Remove(el)
		delete(c.entries, id)
	}
}

// watcher is a WatchOrchestrationRuntimeStatus call waiting for an
// instance's next change.
type watcher struct{ changed chan struct{} }

// notify wakes the watchers of an instance after a commit changed it
// (created, ran a work item, deleted). Called under b.mu.
func (b *Backend) notify(id string) {
	for w := range b.watchers[id] {
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
}

// Timer is a durable timer an instance waits on.
type Timer struct {
	// Seq orders timers by when they were set.
	Seq int64
	Due time.Time
}

// Timers lists the durable timers of an instance, in the order they were
// set. A timer stays after the wait it bounded ended (an event came
// first) until it is due. The saga test kit moves its clock to them.
func (b *Backend) Timers(instanceID string) []Timer {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Timer
	for _, e := range b.timers {
		if e.inst == instanceID && e.payload != nil && !e.dead {
			out = append(out, Timer{Seq: e.seq, Due: time.Unix(0, e.at)})
		}
	}
	slices.SortFunc(out, func(a, b Timer) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// Busy reports whether an instance has work queued or out: events to
// process, a work item or an activity task. An instance that is not busy
// waits for an event or a timer.
func (b *Backend) Busy(instanceID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.insts[instanceID]; ok {
		return true
	}
	for _, t := range b.taskSeqs {
		if t.instance == instanceID && !t.dead {
			return true
		}
	}
	return false
}
