package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/dapr/durabletask-go/api"
	"github.com/dapr/durabletask-go/api/protos"
	"github.com/dapr/durabletask-go/backend"
)

// explain returns SQLite's query plan for q, one step a line.
func explain(t *testing.T, b *Backend, q string, args ...any) string {
	t.Helper()
	var plan []string
	err := b.read(context.Background(), func(r *reader) error {
		s, err := r.c.prepare("EXPLAIN QUERY PLAN " + q)
		if err != nil {
			return err
		}
		return s.query(func() error { plan = append(plan, s.text(3)); return nil }, args...)
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "\n")
}

// TestQueriesUseIndexes: every query the console and retention run is
// served by an index, and the common ones come out in order without a
// sort, so a page costs about its size however many instances there are.
func TestQueriesUseIndexes(t *testing.T) {
	b, err := Open(Options{Path: filepath.Join(t.TempDir(), "wf.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	now := time.Now()
	for _, c := range []struct {
		name   string
		f      InstanceFilter
		sorted bool // rows come out in order: no temporary b-tree
	}{
		{"newest first", InstanceFilter{}, true},
		{"next page", InstanceFilter{PageToken: "a.b"}, true},
		{"by name", InstanceFilter{Name: "W", PageToken: "a.b"}, true},
		{"by status", InstanceFilter{Statuses: []api.OrchestrationStatus{api.RUNTIME_STATUS_FAILED}, PageToken: "a.b"}, true},
		{"running", InstanceFilter{Statuses: []api.OrchestrationStatus{api.RUNTIME_STATUS_RUNNING}, PageToken: "a.b"}, true},
		{"not finished", InstanceFilter{Statuses: []api.OrchestrationStatus{api.RUNTIME_STATUS_RUNNING, api.RUNTIME_STATUS_PENDING, api.RUNTIME_STATUS_SUSPENDED}}, true},
		{"created range", InstanceFilter{CreatedFrom: now, CreatedTo: now}, true},
		{"by name and created range", InstanceFilter{Name: "W", CreatedFrom: now, CreatedTo: now}, true},
		{"by ID prefix", InstanceFilter{IDPrefix: "order-"}, false},
		{"by statuses", InstanceFilter{Statuses: []api.OrchestrationStatus{api.RUNTIME_STATUS_FAILED, api.RUNTIME_STATUS_TERMINATED}}, false},
	} {
		q, args, _, err := c.f.query()
		if err != nil {
			t.Fatal(err)
		}
		plan := explain(t, b, q, args...)
		t.Logf("%s:\n%s", c.name, plan)
		if strings.Contains(plan, "SCAN sb_instances") && !strings.Contains(plan, "USING INDEX") {
			t.Errorf("%s: full table scan:\n%s", c.name, plan)
		}
		if c.sorted && strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("%s: sorts its rows:\n%s", c.name, plan)
		}
	}
	for name, q := range map[string]string{
		"retention": "SELECT id FROM sb_instances WHERE status = ? AND completed_at IS NOT NULL AND created_at < ? AND (created_at, rowid) > (?, ?) ORDER BY created_at, rowid LIMIT ?",
		"children":  "SELECT id, status FROM sb_instances WHERE parent_id = ?",
		"ids":       "SELECT id FROM sb_instances WHERE id > ? ORDER BY id LIMIT ?",
	} {
		plan := explain(t, b, q)
		t.Logf("%s:\n%s", name, plan)
		if !strings.Contains(plan, "USING") || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("%s: not served by an index:\n%s", name, plan)
		}
	}
}

// TestMigrateFromVersion1: a file the v0.5 store wrote (schema version 1,
// no indexes) opens: it gains the indexes, and its instances and pending
// events read as before (the history encoding did not change).
func TestMigrateFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wf.db")
	c, err := openConn(path)
	if err != nil {
		t.Fatal(err)
	}
	start := &backend.HistoryEvent{
		EventId:   -1,
		Timestamp: timestamppb.Now(),
		EventType: &protos.HistoryEvent_ExecutionStarted{ExecutionStarted: &protos.ExecutionStartedEvent{
			Name:                  "W",
			OrchestrationInstance: &protos.OrchestrationInstance{InstanceId: "old", ExecutionId: wrapperspb.String("x")},
		}},
	}
	chunk, err := encodeEvents([]*backend.HistoryEvent{start})
	if err != nil {
		t.Fatal(err)
	}
	raised, err := backend.MarshalHistoryEvent(&backend.HistoryEvent{
		EventId:   -1,
		Timestamp: timestamppb.Now(),
		EventType: &protos.HistoryEvent_EventRaised{EventRaised: &protos.EventRaisedEvent{Name: "go"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.execScript("PRAGMA journal_mode = WAL;" + migrations[0] + "PRAGMA user_version = 1;"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"INSERT INTO sb_instances (id, name, status, created_at, updated_at, custom_status) VALUES ('old', 'W', ?, 1, 1, 'step 2')", []any{int64(api.RUNTIME_STATUS_RUNNING)}},
		{"INSERT INTO sb_history (instance_id, seq, events) VALUES ('old', 0, ?)", []any{chunk}},
		{"INSERT INTO sb_inbox (seq, instance_id, visible_at, event) VALUES (7, 'old', 0, ?)", []any{raised}},
	} {
		s, err := c.prepare(q.sql)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.exec(q.args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}

	b, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if v, err := userVersion(b.w); err != nil || v != schemaVersion {
		t.Fatalf("schema version %d %v", v, err)
	}
	if plan := explain(t, b, "SELECT id FROM sb_instances WHERE name = ? ORDER BY created_at"); !strings.Contains(plan, "sb_instances_name") {
		t.Fatalf("no index after the upgrade:\n%s", plan)
	}
	ctx := context.Background()
	md, err := b.GetOrchestrationMetadata(ctx, "old")
	if err != nil || md.Name != "W" || md.GetCustomStatus().GetValue() != "step 2" {
		t.Fatalf("metadata %v %v", md, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	wi, err := b.NextOrchestrationWorkItem(wctx)
	if err != nil || wi.InstanceID != "old" || len(wi.NewEvents) != 1 || wi.NewEvents[0].GetEventRaised().GetName() != "go" {
		t.Fatalf("work item %v %v", wi, err)
	}
	st, err := b.GetOrchestrationRuntimeState(ctx, wi)
	if err != nil || len(st.OldEvents) != 1 || st.OldEvents[0].GetExecutionStarted().GetName() != "W" {
		t.Fatalf("history %v %v", st, err)
	}
}
