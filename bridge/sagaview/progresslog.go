package sagaview

import (
	"container/list"
	"encoding/json"
	"sort"
	"sync"

	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/progress"
	"github.com/sagabridge/sagabridge/topics"
)

// ProgressLog keeps the progress and outcome events of the most recent
// instances, for timelines where the engine keeps no history (daprd). It
// holds at most maxInstances instances and maxEvents events of each.
type ProgressLog struct {
	mu           sync.Mutex
	maxInstances int
	maxEvents    int
	byID         map[string]*list.Element // of *logged
	order        *list.List               // front: most recently updated
}

type logged struct {
	id     string
	events []progress.Progress
}

// Default bounds of a ProgressLog.
const (
	DefaultLogInstances = 10_000
	DefaultLogEvents    = 64
)

// NewProgressLog builds a log with the given bounds (defaults when < 1).
func NewProgressLog(maxInstances, maxEvents int) *ProgressLog {
	if maxInstances < 1 {
		maxInstances = DefaultLogInstances
	}
	if maxEvents < 1 {
		maxEvents = DefaultLogEvents
	}
	return &ProgressLog{maxInstances: maxInstances, maxEvents: maxEvents, byID: map[string]*list.Element{}, order: list.New()}
}

// Apply folds in one event; it returns progress.ErrNotProgress for other
// events.
func (l *ProgressLog) Apply(ev topics.CloudEvent) (progress.Progress, error) {
	p, err := progress.Decode(ev)
	if err != nil {
		return p, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.byID[p.InstanceID]
	if !ok {
		el = l.order.PushFront(&logged{id: p.InstanceID})
		l.byID[p.InstanceID] = el
		for l.order.Len() > l.maxInstances {
			old := l.order.Back()
			l.order.Remove(old)
			delete(l.byID, old.Value.(*logged).id)
		}
	}
	l.order.MoveToFront(el)
	lg := el.Value.(*logged)
	for _, q := range lg.events {
		if q.Seq == p.Seq {
			return p, nil // a re-published event
		}
	}
	lg.events = append(lg.events, p)
	sort.SliceStable(lg.events, func(i, j int) bool { return lg.events[i].Seq < lg.events[j].Seq })
	if len(lg.events) > l.maxEvents {
		// Keep the first (the start) and the latest.
		lg.events = append(lg.events[:1], lg.events[len(lg.events)-l.maxEvents+1:]...)
	}
	return p, nil
}

// Events returns an instance's events in order (nil log: none).
func (l *ProgressLog) Events(instanceID string) []progress.Progress {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.byID[instanceID]
	if !ok {
		return nil
	}
	return append([]progress.Progress(nil), el.Value.(*logged).events...)
}

// progressTimeline builds a timeline from progress events: each one is
// a round of a step or compensation, which for a command step sent the
// command whose idempotency key topics.CommandID derives.
func progressTimeline(st engine.Status, events []progress.Progress) []Entry {
	out := []Entry{{At: st.CreatedAt, Kind: EntryStarted, Name: st.Workflow, Payload: startInput(st.Input)}}
	for _, p := range events {
		if p.Outcome != nil {
			data, _ := json.Marshal(p.Outcome)
			out = append(out, Entry{At: p.Since, Kind: EntryOutcome, Name: topics.OutcomeType(p.Outcome.Status),
				Key: topics.OutcomeID(p.InstanceID, p.Outcome.Status), Status: p.Outcome.Status, Error: p.Outcome.Error, Payload: data})
			if m := p.Outcome.Migration; m != nil {
				for _, d := range m.Divergences {
					out = append(out, Entry{At: p.Since, Kind: EntryDivergence, Step: d.Step, Detail: d.Kind + ": " + d.Detail})
				}
			}
			continue
		}
		comp := p.Status == progress.Compensating
		e := Entry{At: p.Since, Kind: EntryStep, Step: p.Step, Attempt: p.Attempt, Name: p.Kind}
		if comp {
			e.Kind = EntryCompensate
		}
		if p.Kind == sagas.KindCommand || comp {
			if !comp {
				e.Kind = EntryCommand
			}
			e.Key = topics.CommandID(p.InstanceID, p.Step, comp, p.Attempt)
		}
		for _, w := range p.WaitingFor {
			e.Detail = joinDetail(e.Detail, "waiting for "+w)
		}
		out = append(out, e)
	}
	if st.RuntimeStatus == "TERMINATED" {
		out = append(out, Entry{At: st.LastUpdatedAt, Kind: EntryTerminated, Detail: unquote(st.Output)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}
