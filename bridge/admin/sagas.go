package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sagabridge/sagabridge/bridge/dlq"
	"github.com/sagabridge/sagabridge/bridge/dlqstore"
	"github.com/sagabridge/sagabridge/bridge/migrate"
	"github.com/sagabridge/sagabridge/bridge/sagaview"
)

// Sagas lists saga instances and tells their histories;
// *sagaview.Service implements it.
type Sagas interface {
	List(ctx context.Context, f sagaview.Filter) (sagaview.Page, error)
	Counts(ctx context.Context, f sagaview.Filter) (sagaview.Counts, error)
	History(ctx context.Context, instanceID string) (sagaview.History, error)
}

// DeadLetters is the worker's dead-letter topic; dlqstore.Store and
// dlqstore.KafkaStore implement it.
type DeadLetters interface {
	Topic() string
	Count(ctx context.Context) (uint64, error)
	List(ctx context.Context, f dlqstore.Filter, fn func(dlqstore.Item) error) error
	Get(ctx context.Context, id string) (dlqstore.Item, error)
	Purge(ctx context.Context, f dlqstore.Filter) (int, error)
	Replay(ctx context.Context, opts dlqstore.ReplayOptions) (dlqstore.ReplayResult, error)
}

// MigrationReport summarises the migrating sagas over a window.
type MigrationReport func(ctx context.Context, since, until time.Time, examples int) (migrate.Report, error)

// WorkflowList is the answer of GET /v1/workflows.
type WorkflowList struct {
	sagaview.Page
	// Counts is set when the request asked for counts=true.
	Counts *sagaview.Counts `json:"counts,omitempty"`
	// EngineKind is embedded or dapr.
	EngineKind string `json:"engineKind,omitempty"`
}

// ListQuery is the query string of GET /v1/workflows for f.
func ListQuery(f sagaview.Filter, counts bool) url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("saga", f.Saga)
	if f.Version > 0 {
		q.Set("version", strconv.Itoa(f.Version))
	}
	set("status", strings.Join(f.Statuses, ","))
	set("step", f.Step)
	set("q", f.Text)
	set("idPrefix", f.IDPrefix)
	for k, t := range map[string]time.Time{"startedFrom": f.StartedFrom, "startedTo": f.StartedTo, "finishedFrom": f.FinishedFrom, "finishedTo": f.FinishedTo} {
		if !t.IsZero() {
			q.Set(k, t.UTC().Format(time.RFC3339Nano))
		}
	}
	if f.PageSize > 0 {
		q.Set("pageSize", strconv.Itoa(f.PageSize))
	}
	set("pageToken", f.PageToken)
	if counts {
		q.Set("counts", "true")
	}
	return q
}

// parseWhen reads an RFC 3339 time, a date, or a duration ago ("2h").
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02T15:04", s); err == nil { // a datetime-local field
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time, a date or a duration ago", s)
}

func parseListQuery(q url.Values) (sagaview.Filter, bool, error) {
	f := sagaview.Filter{
		Saga: q.Get("saga"), Step: q.Get("step"), Text: q.Get("q"), IDPrefix: q.Get("idPrefix"),
		PageToken: q.Get("pageToken"),
	}
	var errs []error
	if s := q.Get("status"); s != "" {
		for _, st := range strings.Split(s, ",") {
			if st = strings.TrimSpace(strings.ToLower(st)); st != "" {
				f.Statuses = append(f.Statuses, st)
			}
		}
	}
	for k, p := range map[string]*int{"version": &f.Version, "pageSize": &f.PageSize} {
		if s := q.Get(k); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				errs = append(errs, fmt.Errorf("%s %q is not a number", k, s))
			}
			*p = n
		}
	}
	now := time.Now()
	for k, p := range map[string]*time.Time{"startedFrom": &f.StartedFrom, "startedTo": &f.StartedTo, "finishedFrom": &f.FinishedFrom, "finishedTo": &f.FinishedTo} {
		t, err := parseWhen(q.Get(k), now)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
		*p = t
	}
	counts, _ := strconv.ParseBool(q.Get("counts"))
	return f, counts, errors.Join(errs...)
}

func (s *Server) listWorkflows(ctx context.Context, r *http.Request) (any, error) {
	f, counts, err := parseListQuery(r.URL.Query())
	if err != nil {
		return nil, badRequest{err}
	}
	page, err := s.cfg.Sagas.List(ctx, f)
	if err != nil {
		return nil, viewErr(err)
	}
	out := WorkflowList{Page: page, EngineKind: s.cfg.Info.EngineKind}
	if counts {
		c, err := s.cfg.Sagas.Counts(ctx, f)
		if err != nil {
			return nil, viewErr(err)
		}
		out.Counts = &c
	}
	return out, nil
}

func viewErr(err error) error {
	if errors.Is(err, sagaview.ErrBadRequest) {
		return badRequest{err}
	}
	return err
}

func (s *Server) workflowHistory(ctx context.Context, _ *http.Request, id string) (any, error) {
	h, err := s.cfg.Sagas.History(ctx, id)
	if err != nil {
		return nil, viewErr(err)
	}
	return h, nil
}

// DeadLetterList is the answer of GET /v1/dlq.
type DeadLetterList struct {
	Topic string          `json:"topic"`
	Total uint64          `json:"total"`
	Items []dlqstore.View `json:"items"`
	// More: the limit cut the list.
	More bool `json:"more,omitempty"`
	// Kinds are the kinds a dead letter can have, for filters.
	Kinds []string `json:"kinds"`
}

func parseDLQFilter(q url.Values) (dlqstore.Filter, error) {
	f := dlqstore.Filter{Route: q.Get("route"), Reason: q.Get("reason"), Kind: q.Get("kind"), Type: q.Get("type"), Topic: q.Get("topic")}
	var errs []error
	now := time.Now()
	var err error
	if f.Since, err = parseWhen(q.Get("since"), now); err != nil {
		errs = append(errs, fmt.Errorf("since: %w", err))
	}
	if f.Until, err = parseWhen(q.Get("until"), now); err != nil {
		errs = append(errs, fmt.Errorf("until: %w", err))
	}
	return f, errors.Join(errs...)
}

func (s *Server) listDeadLetters(ctx context.Context, r *http.Request) (any, error) {
	f, err := parseDLQFilter(r.URL.Query())
	if err != nil {
		return nil, badRequest{err}
	}
	limit := 200
	if l := r.URL.Query().Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit <= 0 {
			return nil, badRequest{fmt.Errorf("limit %q is not a positive number", l)}
		}
	}
	dl := s.cfg.DeadLetters
	out := DeadLetterList{Topic: dl.Topic(), Items: []dlqstore.View{}, Kinds: dlq.Kinds}
	if out.Total, err = dl.Count(ctx); err != nil {
		return nil, err
	}
	err = dl.List(ctx, f, func(it dlqstore.Item) error {
		if len(out.Items) >= limit {
			out.More = true
			return dlqstore.ErrStop
		}
		out.Items = append(out.Items, dlqstore.NewView(it, false))
		return nil
	})
	if err != nil && !errors.Is(err, dlqstore.ErrStop) {
		return nil, err
	}
	return out, nil
}

func (s *Server) getDeadLetter(ctx context.Context, r *http.Request) (any, error) {
	it, err := s.cfg.DeadLetters.Get(ctx, r.PathValue("ref"))
	if errors.Is(err, dlqstore.ErrNotFound) {
		return nil, notFound{err}
	}
	if err != nil {
		return nil, err
	}
	return dlqstore.NewView(it, true), nil
}

// DeadLetterAction is the body of POST /v1/dlq/replay and /v1/dlq/purge:
// either the messages named by Refs, or All of them.
type DeadLetterAction struct {
	Refs []string `json:"refs,omitempty"`
	All  bool     `json:"all,omitempty"`
}

// DeadLetterResult is the answer of POST /v1/dlq/replay and /v1/dlq/purge.
type DeadLetterResult struct {
	Replayed int `json:"replayed,omitempty"`
	Purged   int `json:"purged,omitempty"`
	// Kept lists messages left in place, with why.
	Kept []string `json:"kept,omitempty"`
}

// maxDLQRefs bounds the messages one request names.
const maxDLQRefs = 1000

func (s *Server) dlqAction(ctx context.Context, r *http.Request) (any, error) {
	var req DeadLetterAction
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.All == (len(req.Refs) > 0) {
		return nil, badRequest{errors.New("name the messages in refs, or set all (not both)")}
	}
	if len(req.Refs) > maxDLQRefs {
		return nil, badRequest{fmt.Errorf("at most %d refs at once", maxDLQRefs)}
	}
	filters := []dlqstore.Filter{{}}
	if !req.All {
		filters = filters[:0]
		for _, ref := range req.Refs {
			filters = append(filters, dlqstore.Filter{Ref: ref})
		}
	}
	dl := s.cfg.DeadLetters
	var out DeadLetterResult
	for _, f := range filters {
		if r.PathValue("op") == "purge" {
			n, err := dl.Purge(ctx, f)
			out.Purged += n
			if err != nil {
				return out, err
			}
			continue
		}
		res, err := dl.Replay(ctx, dlqstore.ReplayOptions{
			Filter: f, ConsumerKey: dl.Topic() + "\x00console\x00" + f.Ref, Check: s.cfg.ReplayCheck,
		})
		out.Replayed += res.Replayed
		out.Kept = append(out.Kept, res.KeptWhy...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func (s *Server) migrationReport(ctx context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	now := time.Now()
	since := q.Get("since")
	if since == "" {
		since = "1h"
	}
	from, err1 := parseWhen(since, now)
	to, err2 := parseWhen(q.Get("until"), now)
	if to.IsZero() {
		to = now
	}
	examples := 3
	var err3 error
	if e := q.Get("examples"); e != "" {
		if examples, err3 = strconv.Atoi(e); err3 == nil && examples < 0 {
			err3 = errors.New("examples must not be negative")
		}
	}
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, badRequest{err}
	}
	return s.cfg.Migration(ctx, from, to, examples)
}
