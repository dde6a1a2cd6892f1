package engine

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dapr/durabletask-go/api"
	"github.com/dapr/durabletask-go/api/protos"
	"github.com/dapr/durabletask-go/backend"
	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/engine/embedded/store"
)

// ErrNoHistory: the engine serves no instance history (daprd 1.16 has no
// such API for its apps).
var ErrNoHistory = errors.New("the engine serves no workflow history")

// ErrBadPageToken: a page token List did not make.
var ErrBadPageToken = errors.New("bad page token")

// Sources of a list.
const (
	// SourceEngine: the engine listed its instances (embedded).
	SourceEngine = "engine"
	// SourceRecord: the engine cannot list (daprd 1.16), so the list is
	// the worker's own bounded record of the instances it started or
	// heard of, with each one's status asked of the engine.
	SourceRecord = "worker-record"
)

// ListFilter selects instances; zero fields select all. Time ranges
// include their start and exclude their end.
type ListFilter struct {
	Workflow string
	IDPrefix string
	// Statuses are runtime status names (RUNNING, COMPLETED, ...).
	Statuses                   []string
	CreatedFrom, CreatedTo     time.Time
	CompletedFrom, CompletedTo time.Time
	// PageSize bounds the page (default 100, at most 1000).
	PageSize  int
	PageToken string
	// WithPayloads includes input and output.
	WithPayloads bool
}

// ListPage is one page of instances, newest first.
type ListPage struct {
	Instances []Status
	// NextPageToken is "" on the last page.
	NextPageToken string
	// Source is SourceEngine or SourceRecord.
	Source string
	// Note says what the list covers when that is not everything.
	Note string
}

// List lists instances newest first. The embedded store lists from its
// indexes; on daprd, which cannot list, the worker's record of instances
// (Remember) is walked and each candidate's status asked of daprd.
func (e *Engine) List(ctx context.Context, f ListFilter) (ListPage, error) {
	if e.hub != nil {
		return e.listStore(ctx, f)
	}
	return e.listRecord(ctx, f)
}

func (e *Engine) listStore(ctx context.Context, f ListFilter) (ListPage, error) {
	sf := store.InstanceFilter{
		Name: f.Workflow, IDPrefix: f.IDPrefix,
		CreatedFrom: f.CreatedFrom, CreatedTo: f.CreatedTo,
		CompletedFrom: f.CompletedFrom, CompletedTo: f.CompletedTo,
		PageSize: f.PageSize, PageToken: f.PageToken, WithPayloads: f.WithPayloads,
	}
	for _, s := range f.Statuses {
		st, ok := runtimeStatus(s)
		if !ok {
			return ListPage{}, fmt.Errorf("engine: unknown status %q", s)
		}
		sf.Statuses = append(sf.Statuses, st)
	}
	page, err := e.hub.Store().ListInstances(ctx, sf)
	if errors.Is(err, store.ErrBadPageToken) {
		return ListPage{}, errors.Join(err, ErrBadPageToken)
	}
	if err != nil {
		return ListPage{}, classify(fmt.Errorf("engine: list: %w", err))
	}
	out := ListPage{Source: SourceEngine, NextPageToken: page.NextPageToken, Instances: make([]Status, 0, len(page.Instances))}
	for _, md := range page.Instances {
		out.Instances = append(out.Instances, statusOf((*protos.OrchestrationMetadata)(md), md.InstanceId))
	}
	return out, nil
}

// runtimeStatus parses a status name as statusName prints it.
func runtimeStatus(name string) (api.OrchestrationStatus, bool) {
	for v := range protos.OrchestrationStatus_name {
		s := api.OrchestrationStatus(v)
		if strings.EqualFold(statusName(s), name) {
			return s, true
		}
	}
	return 0, false
}

// maxRecordScan bounds the status look-ups one page of a record list
// makes on daprd; past it the page ends early with a token to go on.
const maxRecordScan = 500

func (e *Engine) listRecord(ctx context.Context, f ListFilter) (ListPage, error) {
	limit := f.PageSize
	switch {
	case limit <= 0:
		limit = 100
	case limit > 1000:
		limit = 1000
	}
	before := uint64(0)
	if f.PageToken != "" {
		n, err := strconv.ParseUint(f.PageToken, 36, 64)
		if err != nil {
			return ListPage{}, fmt.Errorf("engine: %w: %q", ErrBadPageToken, f.PageToken)
		}
		before = n
	}
	statuses := map[string]bool{}
	for _, s := range f.Statuses {
		st, ok := runtimeStatus(s)
		if !ok {
			return ListPage{}, fmt.Errorf("engine: unknown status %q", s)
		}
		statuses[statusName(st)] = true
	}
	out := ListPage{Source: SourceRecord, Note: fmt.Sprintf(
		"daprd cannot list workflow instances: these are the last %d instances this worker started or saw progress of, with each status asked of daprd", e.record.max)}
	scanned := 0
	for _, r := range e.record.before(before) {
		if f.Workflow != "" && r.workflow != f.Workflow || !strings.HasPrefix(r.id, f.IDPrefix) {
			continue
		}
		if len(out.Instances) == limit || scanned == maxRecordScan {
			out.NextPageToken = strconv.FormatUint(r.seq+1, 36)
			break
		}
		scanned++
		md, err := e.fetch(ctx, r.id, workflow.WithFetchPayloads(true))
		if errors.Is(classify(err), ErrNotFound) || (err == nil && md.GetInstanceId() == "") {
			continue // purged
		}
		if err != nil {
			return ListPage{}, classify(fmt.Errorf("engine: list: status of %s: %w", r.id, err))
		}
		st := statusOf(md, r.id)
		if !f.WithPayloads {
			st.Input, st.Output = "", ""
		}
		if len(statuses) > 0 && !statuses[st.RuntimeStatus] ||
			!inRange(st.CreatedAt, f.CreatedFrom, f.CreatedTo) ||
			(!f.CompletedFrom.IsZero() || !f.CompletedTo.IsZero()) && (st.CompletedAt.IsZero() || !inRange(st.CompletedAt, f.CompletedFrom, f.CompletedTo)) {
			continue
		}
		out.Instances = append(out.Instances, st)
	}
	return out, nil
}

func inRange(t, from, to time.Time) bool {
	return (from.IsZero() || !t.Before(from)) && (to.IsZero() || t.Before(to))
}

// statusOf turns metadata into a Status.
func statusOf(md *protos.OrchestrationMetadata, id string) Status {
	s := Status{
		InstanceID:    md.GetInstanceId(),
		Workflow:      md.GetName(),
		RuntimeStatus: statusName(md.GetRuntimeStatus()),
		CreatedAt:     md.GetCreatedAt().AsTime(),
		LastUpdatedAt: md.GetLastUpdatedAt().AsTime(),
		Input:         md.GetInput().GetValue(),
		Output:        md.GetOutput().GetValue(),
		CustomStatus:  md.GetCustomStatus().GetValue(),
	}
	if md.GetCompletedAt() != nil {
		s.CompletedAt = md.GetCompletedAt().AsTime()
	} else if isFinished(md.GetRuntimeStatus()) {
		s.CompletedAt = s.LastUpdatedAt
	}
	if s.InstanceID == "" {
		s.InstanceID = id
	}
	if md.GetFailureDetails() != nil {
		s.Failure = md.GetFailureDetails().GetErrorMessage()
	}
	return s
}

// Remember notes an instance in the record List walks on daprd (the
// embedded engine lists its own). The bridge calls it for each instance it
// starts and each one it hears progress of.
func (e *Engine) Remember(instanceID, workflowName string, at time.Time) {
	if e.hub != nil || instanceID == "" {
		return
	}
	e.record.add(instanceID, workflowName, at)
}

// DefaultRecordSize is how many instances the daprd record keeps.
const DefaultRecordSize = 10_000

// instanceRecord is a bounded record of instance IDs, most recent last;
// an ID noted again moves to the end.
type instanceRecord struct {
	mu    sync.Mutex
	max   int
	seq   uint64
	byID  map[string]*list.Element // of recorded
	order *list.List
}

type recorded struct {
	id, workflow string
	at           time.Time
	seq          uint64
}

func newInstanceRecord(max int) *instanceRecord {
	return &instanceRecord{max: max, byID: map[string]*list.Element{}, order: list.New()}
}

func (r *instanceRecord) add(id, workflowName string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.byID[id]; ok {
		rec := el.Value.(recorded)
		if workflowName != "" {
			rec.workflow = workflowName
		}
		el.Value = rec
		return
	}
	r.seq++
	r.byID[id] = r.order.PushBack(recorded{id: id, workflow: workflowName, at: at, seq: r.seq})
	for r.order.Len() > r.max {
		old := r.order.Front()
		r.order.Remove(old)
		delete(r.byID, old.Value.(recorded).id)
	}
}

// before returns the entries with seq below n (all when n is 0), newest
// first.
func (r *instanceRecord) before(n uint64) []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]recorded, 0, r.order.Len())
	for el := r.order.Back(); el != nil; el = el.Prev() {
		if rec := el.Value.(recorded); n == 0 || rec.seq < n {
			out = append(out, rec)
		}
	}
	return out
}

// HistoryEvent is one event of an instance's history, as the engine
// recorded it. TaskID links a completion to the event that scheduled it
// (its ID).
type HistoryEvent struct {
	ID         int32     `json:"id"`
	At         time.Time `json:"at"`
	Type       string    `json:"type"`
	Name       string    `json:"name,omitempty"`
	TaskID     int32     `json:"taskId,omitempty"`
	Input      string    `json:"input,omitempty"`
	Result     string    `json:"result,omitempty"`
	Failure    string    `json:"failure,omitempty"`
	FireAt     time.Time `json:"fireAt,omitzero"`
	InstanceID string    `json:"instanceId,omitempty"`
	Status     string    `json:"status,omitempty"`
}

// History event types.
const (
	EventStarted       = "started"
	EventTaskScheduled = "taskScheduled"
	EventTaskCompleted = "taskCompleted"
	EventTaskFailed    = "taskFailed"
	EventTimerCreated  = "timerCreated"
	EventTimerFired    = "timerFired"
	EventRaised        = "eventRaised"
	EventSent          = "eventSent"
	EventChildCreated  = "childCreated"
	EventChildDone     = "childCompleted"
	EventChildFailed   = "childFailed"
	EventCompleted     = "completed"
	EventTerminated    = "terminated"
	EventSuspended     = "suspended"
	EventResumed       = "resumed"
)

// History returns an instance's history in order: ErrNotFound for a
// missing instance, ErrNoHistory on daprd.
func (e *Engine) History(ctx context.Context, instanceID string) ([]HistoryEvent, error) {
	if e.hub == nil {
		return nil, fmt.Errorf("engine: history of %s: %w", instanceID, ErrNoHistory)
	}
	resp, err := e.hub.Store().GetInstanceHistory(ctx, &backend.GetInstanceHistoryRequest{InstanceId: instanceID})
	if errors.Is(err, api.ErrInstanceNotFound) {
		return nil, fmt.Errorf("engine: history of %s: %w", instanceID, ErrNotFound)
	}
	if err != nil {
		return nil, classify(fmt.Errorf("engine: history of %s: %w", instanceID, err))
	}
	out := make([]HistoryEvent, 0, len(resp.GetEvents()))
	for _, ev := range resp.GetEvents() {
		if h, ok := historyEvent(ev); ok {
			out = append(out, h)
		}
	}
	return out, nil
}

// historyEvent converts what an operator can read; the engine's
// bookkeeping (turn boundaries, entity events) is left out.
func historyEvent(ev *protos.HistoryEvent) (HistoryEvent, bool) {
	h := HistoryEvent{ID: ev.GetEventId(), At: ev.GetTimestamp().AsTime()}
	switch {
	case ev.GetExecutionStarted() != nil:
		x := ev.GetExecutionStarted()
		h.Type, h.Name, h.Input = EventStarted, x.GetName(), x.GetInput().GetValue()
	case ev.GetTaskScheduled() != nil:
		x := ev.GetTaskScheduled()
		h.Type, h.Name, h.Input = EventTaskScheduled, x.GetName(), x.GetInput().GetValue()
	case ev.GetTaskCompleted() != nil:
		x := ev.GetTaskCompleted()
		h.Type, h.TaskID, h.Result = EventTaskCompleted, x.GetTaskScheduledId(), x.GetResult().GetValue()
	case ev.GetTaskFailed() != nil:
		x := ev.GetTaskFailed()
		h.Type, h.TaskID, h.Failure = EventTaskFailed, x.GetTaskScheduledId(), x.GetFailureDetails().GetErrorMessage()
	case ev.GetTimerCreated() != nil:
		x := ev.GetTimerCreated()
		h.Type, h.FireAt, h.Name = EventTimerCreated, x.GetFireAt().AsTime(), x.GetName()
	case ev.GetTimerFired() != nil:
		x := ev.GetTimerFired()
		h.Type, h.TaskID, h.FireAt = EventTimerFired, x.GetTimerId(), x.GetFireAt().AsTime()
	case ev.GetEventRaised() != nil:
		x := ev.GetEventRaised()
		h.Type, h.Name, h.Input = EventRaised, x.GetName(), x.GetInput().GetValue()
	case ev.GetEventSent() != nil:
		x := ev.GetEventSent()
		h.Type, h.Name, h.InstanceID, h.Input = EventSent, x.GetName(), x.GetInstanceId(), x.GetInput().GetValue()
	case ev.GetSubOrchestrationInstanceCreated() != nil:
		x := ev.GetSubOrchestrationInstanceCreated()
		h.Type, h.Name, h.InstanceID, h.Input = EventChildCreated, x.GetName(), x.GetInstanceId(), x.GetInput().GetValue()
	case ev.GetSubOrchestrationInstanceCompleted() != nil:
		x := ev.GetSubOrchestrationInstanceCompleted()
		h.Type, h.TaskID, h.Result = EventChildDone, x.GetTaskScheduledId(), x.GetResult().GetValue()
	case ev.GetSubOrchestrationInstanceFailed() != nil:
		x := ev.GetSubOrchestrationInstanceFailed()
		h.Type, h.TaskID, h.Failure = EventChildFailed, x.GetTaskScheduledId(), x.GetFailureDetails().GetErrorMessage()
	case ev.GetExecutionCompleted() != nil:
		x := ev.GetExecutionCompleted()
		h.Type, h.Status, h.Result = EventCompleted, statusName(x.GetOrchestrationStatus()), x.GetResult().GetValue()
		h.Failure = x.GetFailureDetails().GetErrorMessage()
	case ev.GetExecutionTerminated() != nil:
		h.Type, h.Input = EventTerminated, ev.GetExecutionTerminated().GetInput().GetValue()
	case ev.GetExecutionSuspended() != nil:
		h.Type, h.Input = EventSuspended, ev.GetExecutionSuspended().GetInput().GetValue()
	case ev.GetExecutionResumed() != nil:
		h.Type, h.Input = EventResumed, ev.GetExecutionResumed().GetInput().GetValue()
	default:
		return h, false
	}
	return h, true
}
