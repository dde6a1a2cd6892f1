// Package sagaview answers the operator's questions about saga instances
// on either engine: which instances there are (List, Counts), where each
// one is, and what happened to it (History, a timeline of what the saga
// sent, received, waited for and undid).
//
// The embedded engine lists its instances and keeps their histories; the
// timeline is read from the history, whose activity inputs say which
// command went out with which idempotency key. daprd 1.16 serves neither a
// list nor a history to its apps: the engine lists from the worker's own
// bounded record (engine.Remember), and the timeline is built from the
// progress and outcome events this worker saw (ProgressLog), which say
// less (no reply payloads, no timers). Every answer says which it is.
package sagaview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/sagas/progress"
	"github.com/sagabridge/sagabridge/topics"
)

// Saga statuses as an operator reads them. The engine says COMPLETED for a
// saga that completed, compensated or failed to compensate; the saga's
// custom status tells them apart, and says whether a running saga waits
// for an event.
const (
	Pending      = "pending"
	Running      = "running"
	Waiting      = "waiting"
	Compensating = "compensating"
	Completed    = topics.StatusCompleted
	Compensated  = topics.StatusCompensated
	Failed       = topics.StatusFailed
	Terminated   = "terminated"
	Suspended    = "suspended"
)

// Statuses lists every status, in the order a console shows them.
var Statuses = []string{Running, Waiting, Compensating, Pending, Suspended, Completed, Compensated, Failed, Terminated}

// Engine is what sagaview needs of the workflow engine; *engine.Engine
// implements it.
type Engine interface {
	List(ctx context.Context, f engine.ListFilter) (engine.ListPage, error)
	History(ctx context.Context, instanceID string) ([]engine.HistoryEvent, error)
	Get(ctx context.Context, instanceID string) (engine.Status, error)
}

// ErrBadRequest marks a filter the caller got wrong.
var ErrBadRequest = errors.New("bad request")

// Filter selects instances; zero fields select all. Time ranges include
// their start and exclude their end.
type Filter struct {
	Saga    string
	Version int
	// Statuses are saga statuses (Running, Waiting, ...).
	Statuses []string
	// Step is the step an unfinished instance is on.
	Step string
	// Text is a substring of the instance ID; IDPrefix a prefix (which
	// the embedded store serves from an index).
	Text     string
	IDPrefix string

	StartedFrom, StartedTo   time.Time
	FinishedFrom, FinishedTo time.Time

	// PageSize is how many instances a page holds at least, unless it is
	// the last (default 50, at most 500).
	PageSize  int
	PageToken string
}

// Instance is one saga instance in a list.
type Instance struct {
	InstanceID    string    `json:"instanceId"`
	Saga          string    `json:"saga"`
	Version       int       `json:"version,omitempty"`
	Status        string    `json:"status"`
	RuntimeStatus string    `json:"runtimeStatus"`
	Step          string    `json:"step,omitempty"`
	StepKind      string    `json:"stepKind,omitempty"`
	Attempt       int       `json:"attempt,omitempty"`
	WaitingFor    []string  `json:"waitingFor,omitempty"`
	Since         time.Time `json:"since,omitzero"`
	StartedAt     time.Time `json:"startedAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
	FinishedAt    time.Time `json:"finishedAt,omitzero"`
	Error         string    `json:"error,omitempty"`
}

// Page is one page of List.
type Page struct {
	Instances     []Instance `json:"instances"`
	NextPageToken string     `json:"nextPageToken,omitempty"`
	// Source is engine.SourceEngine or engine.SourceRecord; Note says
	// what the list covers when that is not every instance.
	Source string `json:"source"`
	Note   string `json:"note,omitempty"`
}

// Service answers list and history questions.
type Service struct {
	eng      Engine
	progress *ProgressLog
}

// New builds a service on an engine; progress (may be nil) is the log of
// progress events that makes timelines where the engine keeps no history.
func New(eng Engine, progress *ProgressLog) (*Service, error) {
	if eng == nil {
		return nil, errors.New("sagaview: engine is required")
	}
	return &Service{eng: eng, progress: progress}, nil
}

// Validate checks a filter.
func (f Filter) Validate() error {
	var errs []error
	for _, s := range f.Statuses {
		if !slices.Contains(Statuses, s) {
			errs = append(errs, fmt.Errorf("status %q is not one of %s", s, strings.Join(Statuses, ", ")))
		}
	}
	if f.Version < 0 {
		errs = append(errs, errors.New("version must not be negative"))
	}
	if f.PageSize < 0 {
		errs = append(errs, errors.New("page size must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return nil
}

// runtimeStatuses are the engine statuses a saga status can have.
func runtimeStatuses(statuses []string) []string {
	var out []string
	add := func(s ...string) {
		for _, x := range s {
			if !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
	}
	for _, s := range statuses {
		switch s {
		case Running, Waiting, Compensating:
			add("RUNNING")
		case Pending:
			add("PENDING")
		case Suspended:
			add("SUSPENDED")
		case Terminated:
			add("TERMINATED")
		case Completed, Compensated:
			add("COMPLETED")
		case Failed:
			add("COMPLETED", "FAILED")
		}
	}
	return out
}

// maxScan bounds the instances one List call reads to fill a page whose
// filters the engine does not serve (status detail, version, step, text).
const maxScan = 5000

// List returns instances newest first.
func (s *Service) List(ctx context.Context, f Filter) (Page, error) {
	if err := f.Validate(); err != nil {
		return Page{}, err
	}
	limit := f.PageSize
	switch {
	case limit <= 0:
		limit = 50
	case limit > 500:
		limit = 500
	}
	ef := engine.ListFilter{
		Workflow: f.Saga, IDPrefix: f.IDPrefix, Statuses: runtimeStatuses(f.Statuses),
		CreatedFrom: f.StartedFrom, CreatedTo: f.StartedTo,
		CompletedFrom: f.FinishedFrom, CompletedTo: f.FinishedTo,
		PageSize: limit, PageToken: f.PageToken,
	}
	page := Page{Instances: []Instance{}}
	scanned := 0
	for {
		ep, err := s.eng.List(ctx, ef)
		if errors.Is(err, engine.ErrBadPageToken) {
			return Page{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		if err != nil {
			return Page{}, err
		}
		page.Source, page.Note = ep.Source, ep.Note
		for _, st := range ep.Instances {
			if in := Describe(st); f.match(in) {
				page.Instances = append(page.Instances, in)
			}
		}
		scanned += len(ep.Instances)
		page.NextPageToken = ep.NextPageToken
		if ep.NextPageToken == "" || len(page.Instances) >= limit || scanned >= maxScan {
			return page, nil
		}
		ef.PageToken = ep.NextPageToken
	}
}

func (f Filter) match(in Instance) bool {
	if len(f.Statuses) > 0 && !slices.Contains(f.Statuses, in.Status) {
		return false
	}
	if f.Version > 0 && in.Version != f.Version {
		return false
	}
	if f.Step != "" && in.Step != f.Step {
		return false
	}
	return f.Text == "" || strings.Contains(strings.ToLower(in.InstanceID), strings.ToLower(f.Text))
}

// Counts are instances per status among the most recent ones.
type Counts struct {
	Counts map[string]int `json:"counts"`
	// Scanned is how many recent instances were counted; Complete says
	// they were all the instances the filter selects.
	Scanned  int  `json:"scanned"`
	Complete bool `json:"complete"`
}

// maxCount bounds the instances Counts reads.
const maxCount = 2000

// Counts counts the instances f selects (its statuses aside) per status,
// over the most recent maxCount of them.
func (s *Service) Counts(ctx context.Context, f Filter) (Counts, error) {
	f.Statuses, f.PageToken, f.PageSize = nil, "", 500
	out := Counts{Counts: map[string]int{}}
	for _, st := range Statuses {
		out.Counts[st] = 0
	}
	for {
		p, err := s.List(ctx, f)
		if err != nil {
			return Counts{}, err
		}
		for _, in := range p.Instances {
			out.Counts[in.Status]++
		}
		out.Scanned += len(p.Instances)
		if p.NextPageToken == "" {
			out.Complete = true
			return out, nil
		}
		if out.Scanned >= maxCount {
			return out, nil
		}
		f.PageToken = p.NextPageToken
	}
}

// Describe reads what a saga instance is doing from the engine's status
// and the saga's custom status (progress.Progress).
func Describe(st engine.Status) Instance {
	in := Instance{
		InstanceID: st.InstanceID, Saga: st.Workflow, RuntimeStatus: st.RuntimeStatus,
		StartedAt: st.CreatedAt, UpdatedAt: st.LastUpdatedAt, FinishedAt: st.CompletedAt, Error: st.Failure,
	}
	var p progress.Progress
	known := false
	if cs := strings.TrimSpace(st.CustomStatus); cs != "" {
		known = json.Unmarshal([]byte(cs), &p) == nil && p.Status != ""
	}
	if known {
		in.Version = p.Version
		if p.Saga != "" {
			in.Saga = p.Saga
		}
	}
	switch st.RuntimeStatus {
	case "PENDING":
		in.Status = Pending
	case "SUSPENDED":
		in.Status = Suspended
	case "TERMINATED":
		in.Status = Terminated
	case "FAILED":
		in.Status = Failed
	case "COMPLETED":
		in.Status = Completed
		if known && (p.Status == Compensated || p.Status == Failed) {
			in.Status = p.Status
		}
		if o, err := progress.FromOutput(st.Output); err == nil && o.Outcome != nil {
			in.Status, in.Error = o.Outcome.Status, o.Outcome.Error
		}
	default:
		in.Status = Running
		if known && p.Status == progress.Compensating {
			in.Status = Compensating
		} else if known {
			for _, w := range p.WaitingFor {
				if strings.HasPrefix(w, "event ") {
					in.Status = Waiting
				}
			}
		}
	}
	if known && st.CompletedAt.IsZero() {
		in.Step, in.StepKind, in.Attempt, in.WaitingFor, in.Since = p.Step, p.Kind, p.Attempt, p.WaitingFor, p.Since
	}
	return in
}
