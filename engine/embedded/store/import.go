package store

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/dapr/durabletask-go/api"
)

// importStock copies what durabletask-go's stock SQLite backend left in the
// same file (tables Instances, History, NewEvents, NewTasks), so that
// instances running when the hub switched backends go on. It runs once,
// inside the transaction that creates the schema; the stock tables are left
// as they were.
func importStock(c *conn) error {
	found := false
	s, err := c.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name IN ('Instances', 'History', 'NewEvents', 'NewTasks')")
	if err != nil {
		return err
	}
	n := 0
	if err := s.query(func() error { n++; return nil }); err != nil {
		return err
	}
	found = n == 4
	if !found {
		return nil
	}
	if err := c.execScript(stockImportScript()); err != nil {
		return fmt.Errorf("store: import the stock backend's tables: %w", err)
	}
	return importStockHistory(c)
}

// stockImportScript copies the stock backend's instances, inbox and tasks
// into this store's tables.
func stockImportScript() string {
	// Stock times are text: time.Time.String() as modernc's driver writes
	// it ("2006-01-02 15:04:05.999999999 +0000 UTC", always UTC there) or
	// CURRENT_TIMESTAMP. SQLite's date functions read them once the zone
	// is cut off (to the millisecond).
	ns := func(col string) string {
		cut := fmt.Sprintf("CASE WHEN instr(%[1]s, ' +') > 0 THEN substr(%[1]s, 1, instr(%[1]s, ' +') - 1)"+
			" WHEN instr(%[1]s, ' -') > 0 THEN substr(%[1]s, 1, instr(%[1]s, ' -') - 1) ELSE %[1]s END", col)
		return fmt.Sprintf("CAST(round((julianday(%s) - 2440587.5) * 86400000) AS INTEGER) * 1000000", cut)
	}
	var status strings.Builder
	status.WriteString("CASE RuntimeStatus")
	for v := range int32(8) {
		st := api.OrchestrationStatus(v)
		fmt.Fprintf(&status, " WHEN '%s' THEN %d", strings.TrimPrefix(st.String(), "ORCHESTRATION_STATUS_"), v)
	}
	fmt.Fprintf(&status, " ELSE %d END", api.RUNTIME_STATUS_RUNNING)
	now := "CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER) * 1000000"
	return `
INSERT INTO sb_instances (id, name, version, execution_id, parent_id, status, created_at, updated_at, completed_at, input, output, custom_status, failure)
SELECT InstanceID, Name, coalesce(Version, ''), coalesce(ExecutionID, ''), ParentInstanceID, ` + status.String() + `,
	coalesce(` + ns("CreatedTime") + `, ` + now + `), coalesce(` + ns("LastUpdatedTime") + `, ` + now + `), ` + ns("CompletedTime") + `,
	Input, Output, CustomStatus, FailureDetails
FROM Instances;
INSERT INTO sb_inbox (seq, instance_id, visible_at, event)
SELECT SequenceNumber, InstanceID, coalesce(` + ns("VisibleTime") + `, 0), EventPayload
FROM NewEvents WHERE InstanceID IN (SELECT InstanceID FROM Instances);
INSERT INTO sb_tasks (seq, instance_id, event)
SELECT SequenceNumber, InstanceID, EventPayload
FROM NewTasks WHERE InstanceID IN (SELECT InstanceID FROM Instances);
`
}

// importStockHistory copies the stock backend's history.
func importStockHistory(c *conn) error {
	// History: the stock backend stores one event per row; here an
	// instance's whole history becomes its first chunk.
	hist, err := c.prepare("SELECT InstanceID, EventPayload FROM History ORDER BY InstanceID, SequenceNumber")
	if err != nil {
		return err
	}
	ins, err := c.prepare("INSERT INTO sb_history (instance_id, seq, events) VALUES (?, 0, ?)")
	if err != nil {
		return err
	}
	var cur string
	var chunk []byte
	flush := func() error {
		if cur == "" {
			return nil
		}
		_, err := ins.exec(cur, chunk)
		return err
	}
	err = hist.query(func() error {
		id := hist.text(0)
		if id != cur {
			if err := flush(); err != nil {
				return err
			}
			cur, chunk = id, chunk[:0]
		}
		p := hist.bytes(1)
		chunk = protowire.AppendVarint(chunk, uint64(len(p)))
		chunk = append(chunk, p...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: import the stock backend's history: %w", err)
	}
	return flush()
}
