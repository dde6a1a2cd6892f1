package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dapr/durabletask-go/api"
	"github.com/dapr/durabletask-go/backend"
)

// ListInstanceIDs lists instance IDs in ID order, PageSize at a time (all
// of them if unset); a response with a ContinuationToken has more after it.
func (b *Backend) ListInstanceIDs(ctx context.Context, req *backend.ListInstanceIDsRequest) (*backend.ListInstanceIDsResponse, error) {
	limit := int64(-1)
	if req.PageSize != nil && req.GetPageSize() > 0 {
		limit = int64(req.GetPageSize()) + 1 // one more tells whether a next page exists
	}
	r, err := b.reader(ctx)
	if err != nil {
		return nil, err
	}
	defer b.release(r)
	var ids []string
	if err := r.ids.query(func() error { ids = append(ids, r.ids.text(0)); return nil }, req.GetContinuationToken(), limit); err != nil {
		return nil, err
	}
	resp := &backend.ListInstanceIDsResponse{InstanceIds: ids}
	if limit > 0 && int64(len(ids)) == limit {
		resp.InstanceIds = ids[:limit-1]
		last := ids[limit-2]
		resp.ContinuationToken = &last
	}
	return resp, nil
}

// GetInstanceHistory returns an instance's history, api.ErrInstanceNotFound
// for a missing instance.
func (b *Backend) GetInstanceHistory(ctx context.Context, req *backend.GetInstanceHistoryRequest) (*backend.GetInstanceHistoryResponse, error) {
	r, err := b.reader(ctx)
	if err != nil {
		return nil, err
	}
	defer b.release(r)
	found := false
	if err := r.exists.query(func() error { found = true; return nil }, req.GetInstanceId()); err != nil {
		return nil, err
	}
	if !found {
		return nil, api.ErrInstanceNotFound
	}
	var events []*backend.HistoryEvent
	err = r.history.query(func() error {
		var err error
		events, err = decodeEvents(r.history.bytes(0), events)
		return err
	}, req.GetInstanceId())
	if err != nil {
		return nil, fmt.Errorf("store: read history of %s: %w", req.GetInstanceId(), err)
	}
	return &backend.GetInstanceHistoryResponse{Events: events}, nil
}

// InstanceFilter selects instances for ListInstances; zero fields do not
// filter. Time ranges include their start and exclude their end.
type InstanceFilter struct {
	Name     string
	IDPrefix string
	Statuses []api.OrchestrationStatus

	CreatedFrom, CreatedTo     time.Time
	CompletedFrom, CompletedTo time.Time

	// PageSize bounds the page: default 100, at most 1000.
	PageSize int
	// PageToken continues after the page that returned it.
	PageToken string
	// WithPayloads includes input and output (the custom status is
	// always there).
	WithPayloads bool
}

// InstancePage is one page of ListInstances.
type InstancePage struct {
	Instances []*backend.OrchestrationMetadata
	// NextPageToken is "" on the last page.
	NextPageToken string
}

// ErrBadPageToken is returned for a page token ListInstances did not make.
var ErrBadPageToken = errors.New("store: bad page token")

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// ListInstances returns the instances that match f, newest first. Each
// filter is served by an index: by name, by status, by creation time, by
// ID prefix, so that a page costs about its own size.
func (b *Backend) ListInstances(ctx context.Context, f InstanceFilter) (*InstancePage, error) {
	q, args, limit, err := f.query()
	if err != nil {
		return nil, err
	}
	r, err := b.reader(ctx)
	if err != nil {
		return nil, err
	}
	defer b.release(r)
	s, err := r.cached(q)
	if err != nil {
		return nil, err
	}
	page := &InstancePage{}
	var rowids []int64
	err = s.query(func() error {
		md, err := scanMeta(s, f.WithPayloads)
		if err != nil {
			return err
		}
		page.Instances = append(page.Instances, md)
		rowids = append(rowids, s.int64(11))
		return nil
	}, args...)
	if err != nil {
		return nil, err
	}
	if len(page.Instances) > limit {
		page.Instances = page.Instances[:limit]
		last := page.Instances[limit-1]
		page.NextPageToken = strconv.FormatInt(last.CreatedAt.AsTime().UnixNano(), 36) + "." + strconv.FormatInt(rowids[limit-1], 36)
	}
	return page, nil
}

// query builds the statement for f: the WHERE clause names only the
// filters set, so that SQLite picks the index that serves them.
func (f InstanceFilter) query() (string, []any, int, error) {
	limit := f.PageSize
	switch {
	case limit <= 0:
		limit = defaultPageSize
	case limit > maxPageSize:
		limit = maxPageSize
	}
	var w conditions
	if f.Name != "" {
		w.add("name = ?", f.Name)
	}
	if f.IDPrefix != "" {
		if hi, ok := prefixEnd(f.IDPrefix); ok {
			w.add("id >= ? AND id < ?", f.IDPrefix, hi)
		} else {
			w.add("id >= ?", f.IDPrefix)
		}
	}
	w.statuses(f.Statuses)
	for _, t := range []struct {
		cond string
		at   time.Time
	}{
		{"created_at >= ?", f.CreatedFrom}, {"created_at < ?", f.CreatedTo},
		{"completed_at >= ?", f.CompletedFrom}, {"completed_at < ?", f.CompletedTo},
	} {
		if !t.at.IsZero() {
			w.add(t.cond, t.at.UnixNano())
		}
	}
	if f.PageToken != "" {
		at, row, ok := strings.Cut(f.PageToken, ".")
		atN, err1 := strconv.ParseInt(at, 36, 64)
		rowN, err2 := strconv.ParseInt(row, 36, 64)
		if !ok || err1 != nil || err2 != nil {
			return "", nil, 0, fmt.Errorf("%w: %q", ErrBadPageToken, f.PageToken)
		}
		w.add("(created_at, rowid) < (?, ?)", atN, rowN)
	}
	cols := metaColumns
	if !f.WithPayloads { // not even read: they can span many pages
		cols = strings.Replace(cols, "input, output,", "NULL, NULL,", 1)
	}
	q := "SELECT " + cols + ", rowid FROM sb_instances"
	if len(w.where) > 0 {
		q += " WHERE " + strings.Join(w.where, " AND ")
	}
	q += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
	w.args = append(w.args, int64(limit+1)) // one more tells whether a next page exists
	return q, w.args, limit, nil
}

// conditions are the WHERE conditions of a query and their arguments.
type conditions struct {
	where []string
	args  []any
}

func (w *conditions) add(cond string, a ...any) {
	w.where = append(w.where, cond)
	w.args = append(w.args, a...)
}

// statuses adds the condition that the status is one of these (none: any).
func (w *conditions) statuses(in []api.OrchestrationStatus) {
	var statuses []any
	for _, st := range in {
		if !slices.Contains(statuses, any(int64(st))) {
			statuses = append(statuses, int64(st))
		}
	}
	switch len(statuses) {
	case 0:
	case 1:
		w.add("status = ?", statuses...)
	default:
		w.add("status IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(statuses)), ", ")+")", statuses...)
	}
	// Only finished instances have a completed_at: saying so lets SQLite
	// use the index of the finished ones, or of the running ones.
	finished := 0
	for _, st := range statuses {
		if isFinished(api.OrchestrationStatus(st.(int64))) {
			finished++
		}
	}
	switch {
	case len(statuses) == 0:
	case finished == len(statuses):
		w.add("completed_at IS NOT NULL")
	case finished == 0:
		w.add("completed_at IS NULL")
	}
}

// prefixEnd is the smallest string above every string that starts with
// prefix, if there is one.
func prefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// cached returns the reader's prepared statement for q, preparing it once.
// The combinations of filters, hence the statements, are finite (under two
// thousand: statuses are deduplicated).
func (r *reader) cached(q string) (*stmt, error) {
	if s := r.queries[q]; s != nil {
		return s, nil
	}
	s, err := r.c.prepare(q)
	if err != nil {
		return nil, err
	}
	if r.queries == nil {
		r.queries = map[string]*stmt{}
	}
	r.queries[q] = s
	return s, nil
}

// CountInstances is how many instances the store holds, whatever their
// status: with retention on, it stays about one retention period's worth.
func (b *Backend) CountInstances(ctx context.Context) (int, error) {
	var n int
	err := b.read(ctx, func(r *reader) error {
		s, err := r.cached(`SELECT COUNT(*) FROM sb_instances`)
		if err != nil {
			return err
		}
		return s.query(func() error { n = int(s.int64(0)); return nil })
	})
	if err != nil {
		return 0, fmt.Errorf("store: count instances: %w", err)
	}
	return n, nil
}
