package bridge

import (
	"sync"
	"time"

	"github.com/sagabridge/sagabridge/sagas/progress"
	"github.com/sagabridge/sagabridge/topics"
)

// runningSagas remembers, from the progress and outcome events every
// replica sees, since when each saga instance has been running, so the
// metrics can say how old the oldest running one of each saga is: a saga
// stuck on a participant that never answers shows as a growing age.
//
// A saga is known from its first progress event seen (its Since: when that
// wait began) until its outcome; one that started before this worker did
// is known from its next progress event on. It keeps at most max
// instances, the ones seen first: a saga first seen when it is full is
// newer than those it holds, so the oldest stays right.
type runningSagas struct {
	max  int
	mu   sync.Mutex
	byID map[string]runningSaga
}

type runningSaga struct {
	saga  string
	since time.Time
}

const maxRunningSagas = 100_000

func newRunningSagas(max int) *runningSagas {
	return &runningSagas{max: max, byID: map[string]runningSaga{}}
}

// Apply implements progressSink.
func (r *runningSagas) Apply(ev topics.CloudEvent) (progress.Progress, error) {
	p, err := progress.Decode(ev)
	if err != nil {
		return p, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch p.Status {
	case progress.Running, progress.Compensating:
		if _, known := r.byID[p.InstanceID]; known || len(r.byID) >= r.max {
			return p, nil
		}
		since := p.Since
		if since.IsZero() {
			since = time.Now()
		}
		r.byID[p.InstanceID] = runningSaga{saga: p.Saga, since: since}
	default:
		delete(r.byID, p.InstanceID)
	}
	return p, nil
}

// Oldest is the age of the oldest running instance of each saga.
func (r *runningSagas) Oldest(now time.Time) map[string]time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]time.Duration{}
	for _, s := range r.byID {
		if age := now.Sub(s.since); age > out[s.saga] {
			out[s.saga] = age
		}
	}
	return out
}

// OldestRunning is the age of the oldest running instance of each saga
// this worker has heard of.
func (b *Bridge) OldestRunning() map[string]time.Duration { return b.running.Oldest(time.Now()) }
