package store

import (
	"errors"
	"fmt"
	"unsafe"

	"modernc.org/libc"
	"modernc.org/libc/sys/types"
	lib "modernc.org/sqlite/lib"
)

// This file is a minimal binding to modernc's SQLite (the C library
// translated to Go, already in the module graph through durabletask-go).
// modernc's database/sql driver re-parses every statement on every call;
// here statements are prepared once per connection and reset between uses,
// which is what makes them prepared statements.

// conn is one SQLite connection. It is not safe for concurrent use: the
// store gives each connection to one goroutine at a time.
type conn struct {
	tls   *libc.TLS
	db    uintptr
	stmts []*stmt
}

// sqliteError carries SQLite's (extended) result code.
type sqliteError struct {
	code int32
	msg  string
}

func (e *sqliteError) Error() string { return e.msg }

func openConn(path string) (*conn, error) {
	c := &conn{tls: libc.NewTLS()}
	name, err := libc.CString(path)
	if err != nil {
		c.tls.Close()
		return nil, err
	}
	defer libc.Xfree(c.tls, name)
	pdb := libc.Xmalloc(c.tls, types.Size_t(unsafe.Sizeof(uintptr(0))))
	if pdb == 0 {
		c.tls.Close()
		return nil, errors.New("store: out of memory")
	}
	defer libc.Xfree(c.tls, pdb)
	flags := int32(lib.SQLITE_OPEN_READWRITE | lib.SQLITE_OPEN_CREATE | lib.SQLITE_OPEN_NOMUTEX)
	rc := lib.Xsqlite3_open_v2(c.tls, name, pdb, flags, 0)
	c.db = libc.AtomicLoadPUintptr(pdb)
	if rc != lib.SQLITE_OK {
		err := c.errorf(rc, "open %s", path)
		c.close()
		return nil, err
	}
	lib.Xsqlite3_extended_result_codes(c.tls, c.db, 1)
	return c, nil
}

func (c *conn) errorf(rc int32, format string, args ...any) error {
	msg := libc.GoString(lib.Xsqlite3_errstr(c.tls, rc))
	if c.db != 0 {
		if m := libc.GoString(lib.Xsqlite3_errmsg(c.tls, c.db)); m != "" && m != msg {
			msg += ": " + m
		}
	}
	return &sqliteError{code: rc, msg: fmt.Sprintf("sqlite: %s: %s (%d)", fmt.Sprintf(format, args...), msg, rc)}
}

// execScript runs one or more statements without parameters (schema,
// pragmas).
func (c *conn) execScript(sql string) error {
	z, err := libc.CString(sql)
	if err != nil {
		return err
	}
	defer libc.Xfree(c.tls, z)
	if rc := lib.Xsqlite3_exec(c.tls, c.db, z, 0, 0, 0); rc != lib.SQLITE_OK {
		return c.errorf(rc, "exec %.60q", sql)
	}
	return nil
}

func (c *conn) prepare(sql string) (*stmt, error) {
	z, err := libc.CString(sql)
	if err != nil {
		return nil, err
	}
	defer libc.Xfree(c.tls, z)
	pp := libc.Xmalloc(c.tls, types.Size_t(unsafe.Sizeof(uintptr(0))))
	if pp == 0 {
		return nil, errors.New("store: out of memory")
	}
	defer libc.Xfree(c.tls, pp)
	// SQLITE_PREPARE_PERSISTENT: the statement is kept for the life of
	// the connection.
	if rc := lib.Xsqlite3_prepare_v3(c.tls, c.db, z, -1, lib.SQLITE_PREPARE_PERSISTENT, pp, 0); rc != lib.SQLITE_OK {
		return nil, c.errorf(rc, "prepare %q", sql)
	}
	s := &stmt{c: c, p: libc.AtomicLoadPUintptr(pp), sql: sql}
	c.stmts = append(c.stmts, s)
	return s, nil
}

func (c *conn) changes() int64 { return int64(lib.Xsqlite3_changes(c.tls, c.db)) }

func (c *conn) close() error {
	var err error
	for _, s := range c.stmts {
		s.reset()
		lib.Xsqlite3_finalize(c.tls, s.p)
	}
	c.stmts = nil
	if c.db != 0 {
		if rc := lib.Xsqlite3_close_v2(c.tls, c.db); rc != lib.SQLITE_OK {
			err = c.errorf(rc, "close")
		}
		c.db = 0
	}
	if c.tls != nil {
		c.tls.Close()
		c.tls = nil
	}
	return err
}

// stmt is a prepared statement. Use: bind, step until it reports no row
// (reading columns in between), reset. exec and the query helpers do that.
type stmt struct {
	c      *conn
	p      uintptr
	sql    string
	allocs []uintptr
}

// bind binds positional arguments: int64, int, int32, bool, string,
// []byte (nil binds NULL) or nil.
func (s *stmt) bind(args ...any) error {
	tls := s.c.tls
	for i, a := range args {
		n := int32(i + 1)
		var rc int32
		switch v := a.(type) {
		case nil:
			rc = lib.Xsqlite3_bind_null(tls, s.p, n)
		case int64:
			rc = lib.Xsqlite3_bind_int64(tls, s.p, n, v)
		case int:
			rc = lib.Xsqlite3_bind_int64(tls, s.p, n, int64(v))
		case int32:
			rc = lib.Xsqlite3_bind_int64(tls, s.p, n, int64(v))
		case bool:
			var b int64
			if v {
				b = 1
			}
			rc = lib.Xsqlite3_bind_int64(tls, s.p, n, b)
		case string:
			p, err := s.cmem(len(v))
			if err != nil {
				return err
			}
			copy(libc.GoBytes(p, len(v)), v)
			rc = lib.Xsqlite3_bind_text(tls, s.p, n, p, int32(len(v)), 0)
		case []byte:
			if v == nil {
				rc = lib.Xsqlite3_bind_null(tls, s.p, n)
				break
			}
			p, err := s.cmem(len(v))
			if err != nil {
				return err
			}
			copy(libc.GoBytes(p, len(v)), v)
			rc = lib.Xsqlite3_bind_blob(tls, s.p, n, p, int32(len(v)), 0)
		default:
			return fmt.Errorf("store: cannot bind %T", a)
		}
		if rc != lib.SQLITE_OK {
			return s.c.errorf(rc, "bind %d of %q", n, s.sql)
		}
	}
	return nil
}

// cmem allocates n bytes of C memory that stay valid until reset (bound
// values are SQLITE_STATIC).
func (s *stmt) cmem(n int) (uintptr, error) {
	p := libc.Xmalloc(s.c.tls, types.Size_t(max(n, 1)))
	if p == 0 {
		return 0, errors.New("store: out of memory")
	}
	s.allocs = append(s.allocs, p)
	return p, nil
}

// step advances; it reports whether a row is available.
func (s *stmt) step() (bool, error) {
	switch rc := lib.Xsqlite3_step(s.c.tls, s.p); rc {
	case lib.SQLITE_ROW:
		return true, nil
	case lib.SQLITE_DONE:
		return false, nil
	default:
		return false, s.c.errorf(rc, "step %q", s.sql)
	}
}

// reset readies the statement for its next use and frees bound memory.
func (s *stmt) reset() {
	lib.Xsqlite3_reset(s.c.tls, s.p)
	lib.Xsqlite3_clear_bindings(s.c.tls, s.p)
	for _, p := range s.allocs {
		libc.Xfree(s.c.tls, p)
	}
	s.allocs = s.allocs[:0]
}

// exec runs a statement that returns no rows and reports the rows changed.
func (s *stmt) exec(args ...any) (int64, error) {
	defer s.reset()
	if err := s.bind(args...); err != nil {
		return 0, err
	}
	for {
		row, err := s.step()
		if err != nil {
			return 0, err
		}
		if !row {
			return s.c.changes(), nil
		}
	}
}

// query binds args and calls fn for every row.
func (s *stmt) query(fn func() error, args ...any) error {
	defer s.reset()
	if err := s.bind(args...); err != nil {
		return err
	}
	for {
		row, err := s.step()
		if err != nil {
			return err
		}
		if !row {
			return nil
		}
		if err := fn(); err != nil {
			return err
		}
	}
}

func (s *stmt) isNull(i int) bool {
	return lib.Xsqlite3_column_type(s.c.tls, s.p, int32(i)) == lib.SQLITE_NULL
}

func (s *stmt) int64(i int) int64 { return lib.Xsqlite3_column_int64(s.c.tls, s.p, int32(i)) }

// bytes returns a copy of a BLOB or TEXT column (nil for NULL).
func (s *stmt) bytes(i int) []byte {
	p := lib.Xsqlite3_column_blob(s.c.tls, s.p, int32(i))
	n := lib.Xsqlite3_column_bytes(s.c.tls, s.p, int32(i))
	if p == 0 {
		return nil
	}
	out := make([]byte, n)
	copy(out, libc.GoBytes(p, int(n)))
	return out
}

func (s *stmt) text(i int) string {
	p := lib.Xsqlite3_column_text(s.c.tls, s.p, int32(i))
	n := lib.Xsqlite3_column_bytes(s.c.tls, s.p, int32(i))
	if p == 0 || n == 0 {
		return ""
	}
	return string(libc.GoBytes(p, int(n)))
}
