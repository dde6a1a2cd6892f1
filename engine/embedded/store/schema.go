package store

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/dapr/durabletask-go/backend"
)

// schemaVersion is kept in PRAGMA user_version. Version 0 is an empty file,
// or one the stock durabletask backend wrote: its instances are imported
// when the schema is created (importStock) and its tables left alone.
const schemaVersion = 2

// The tables carry an sb_ prefix so they never collide with the stock
// backend's (SQLite table names ignore case).
//
//   - sb_instances: one row per orchestration instance, its status and
//     payloads as GetOrchestrationMetadata returns them.
//   - sb_history: an instance's history, one row per completed work item
//     (a chunk of events, see encodeEvents), keyed by the sequence number of
//     the chunk's first event.
//   - sb_inbox: events not yet consumed by a work item. visible_at > 0 is a
//     durable timer (unix nanoseconds).
//   - sb_tasks: activity tasks not yet completed.
//
// sb_inbox and sb_tasks have no index on instance_id: every commit would
// write it, and only purge and retention (rare, batched) look rows up by
// instance, scanning tables that hold only pending work.
//
// Locks are not stored: the process owns the file (see acquire), so
// whatever is in sb_inbox and sb_tasks at start is simply ready again.
//
// The history encoding is durabletask's HistoryEvent protobuf, which
// dapr/durabletask-go v0.11 and microsoft/durabletask-go v0.5 encode alike
// (same field numbers; v0.11 only adds fields), so a version 1 file written
// by the v0.5 store reads as is.
var migrations = []string{
	// 0 -> 1
	`
CREATE TABLE sb_instances (
	id            TEXT PRIMARY KEY NOT NULL,
	name          TEXT NOT NULL,
	version       TEXT NOT NULL DEFAULT '',
	execution_id  TEXT NOT NULL DEFAULT '',
	parent_id     TEXT,
	status        INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	completed_at  INTEGER,
	input         TEXT,
	output        TEXT,
	custom_status TEXT,
	failure       BLOB
);
CREATE TABLE sb_history (
	instance_id TEXT NOT NULL,
	seq         INTEGER NOT NULL,
	events      BLOB NOT NULL,
	PRIMARY KEY (instance_id, seq)
) WITHOUT ROWID;
CREATE TABLE sb_inbox (
	seq         INTEGER PRIMARY KEY,
	instance_id TEXT NOT NULL,
	visible_at  INTEGER NOT NULL DEFAULT 0,
	event       BLOB NOT NULL
);
CREATE TABLE sb_tasks (
	seq         INTEGER PRIMARY KEY,
	instance_id TEXT NOT NULL,
	event       BLOB NOT NULL
);
`,
	// 1 -> 2: indexes for listing instances (newest first, by name, the
	// running ones, the finished ones by status), for retention (finished
	// ones by status, oldest first) and for finding an instance's
	// children. Ordering by created_at then rowid lets a page continue
	// from the last row of the previous one through the index (each index
	// ends with the rowid). Which of running and finished an instance is
	// shows in completed_at, which only the work item that finishes it
	// sets: a status change on the way (pending, running, suspended)
	// touches neither index.
	`
CREATE INDEX sb_instances_created ON sb_instances (created_at);
CREATE INDEX sb_instances_name ON sb_instances (name, created_at);
CREATE INDEX sb_instances_live ON sb_instances (created_at) WHERE completed_at IS NULL;
CREATE INDEX sb_instances_done ON sb_instances (status, created_at) WHERE completed_at IS NOT NULL;
CREATE INDEX sb_instances_parent ON sb_instances (parent_id) WHERE parent_id IS NOT NULL;
UPDATE sb_instances SET completed_at = updated_at WHERE completed_at IS NULL AND status IN (1, 3, 5);
`,
}

// migrate creates or upgrades the schema in one transaction.
func migrate(c *conn) error {
	v, err := userVersion(c)
	if err != nil {
		return err
	}
	switch {
	case v == schemaVersion:
		return nil
	case v > schemaVersion:
		return fmt.Errorf("store: database schema version %d is newer than this build's %d", v, schemaVersion)
	}
	if err := c.execScript("BEGIN IMMEDIATE"); err != nil {
		return err
	}
	for i := v; i < schemaVersion; i++ {
		if err := c.execScript(migrations[i]); err != nil {
			_ = c.execScript("ROLLBACK")
			return fmt.Errorf("store: upgrade schema to version %d: %w", i+1, err)
		}
		if i == 0 {
			if err := importStock(c); err != nil {
				_ = c.execScript("ROLLBACK")
				return err
			}
		}
	}
	if err := c.execScript(fmt.Sprintf("PRAGMA user_version = %d;", schemaVersion)); err != nil {
		_ = c.execScript("ROLLBACK")
		return err
	}
	return c.execScript("COMMIT")
}

func userVersion(c *conn) (int64, error) {
	s, err := c.prepare("PRAGMA user_version")
	if err != nil {
		return 0, err
	}
	var v int64
	err = s.query(func() error { v = s.int64(0); return nil })
	return v, err
}

// encodeEvents writes events as consecutive length-delimited protobuf
// messages: one history row per work item instead of one per event.
func encodeEvents(events []*backend.HistoryEvent) ([]byte, error) {
	var buf []byte
	opts := proto.MarshalOptions{}
	for _, e := range events {
		size := opts.Size(e)
		buf = protowire.AppendVarint(buf, uint64(size))
		var err error
		if buf, err = opts.MarshalAppend(buf, e); err != nil {
			return nil, fmt.Errorf("store: marshal history event: %w", err)
		}
	}
	return buf, nil
}

func decodeEvents(b []byte, out []*backend.HistoryEvent) ([]*backend.HistoryEvent, error) {
	for len(b) > 0 {
		m, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return out, fmt.Errorf("store: corrupt history chunk: %w", protowire.ParseError(n))
		}
		e, err := backend.UnmarshalHistoryEvent(m)
		if err != nil {
			return out, err
		}
		out = append(out, e)
		b = b[n:]
	}
	return out, nil
}
