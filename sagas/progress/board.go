package progress

import (
	"container/list"
	"errors"
	"sync"

	"github.com/sagabridge/sagabridge/topics"
)

// Board folds progress and outcome events into the latest position
// of each instance, for a process that consumes the progress and outcome
// topics (the admin API behind `sagabridge workflow get`). It keeps at most
// a fixed number of instances, forgetting the least recently updated.
// It is safe for concurrent use.
type Board struct {
	mu    sync.Mutex
	max   int
	byID  map[string]*list.Element // of Progress
	order *list.List               // front = most recently updated
}

// NewBoard builds a board that remembers up to maxInstances.
func NewBoard(maxInstances int) (*Board, error) {
	if maxInstances < 1 {
		return nil, errors.New("progress: board needs room for at least one instance")
	}
	return &Board{max: maxInstances, byID: map[string]*list.Element{}, order: list.New()}, nil
}

// Apply folds one event in. Events that are neither progress nor outcome
// return ErrNotProgress; an event older than what the board holds is
// ignored. It returns the instance's position after the event.
func (b *Board) Apply(ev topics.CloudEvent) (Progress, error) {
	p, err := Decode(ev)
	if err != nil {
		return Progress{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if el, ok := b.byID[p.InstanceID]; ok {
		cur := el.Value.(Progress)
		if !p.Newer(cur) {
			return cur, nil
		}
		el.Value = p
		b.order.MoveToFront(el)
		return p, nil
	}
	b.byID[p.InstanceID] = b.order.PushFront(p)
	for b.order.Len() > b.max {
		old := b.order.Back()
		b.order.Remove(old)
		delete(b.byID, old.Value.(Progress).InstanceID)
	}
	return p, nil
}

// Get returns an instance's latest known position.
func (b *Board) Get(instanceID string) (Progress, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	el, ok := b.byID[instanceID]
	if !ok {
		return Progress{}, false
	}
	return el.Value.(Progress), true
}
