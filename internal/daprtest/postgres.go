package daprtest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/api/protos"
	"google.golang.org/protobuf/proto"
)

// machinePostgres is where CI machines and developer boxes usually run
// PostgreSQL.
const machinePostgres = "127.0.0.1:5432"

// pgSuperuser is the role the harness connects as: the machine's server
// lets it in without a password (trust), and the servers the harness
// starts are initialised with it.
const pgSuperuser = "postgres"

// Postgres is one database for the actor state store, on the machine's
// PostgreSQL at 127.0.0.1:5432 when it answers with trust authentication,
// else on a server started for the test. Each Postgres is a database of
// its own, created for the test and dropped when it ends, so parallel
// tests and repeated runs never see each other's state. Replicas of one
// app share one Postgres.
type Postgres struct {
	addr     string
	database string
	p        *proc
}

// StartPostgres creates a fresh database on the machine's PostgreSQL, or
// on a server of the test's own when none answers there.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pgExec(ctx, machinePostgres, "postgres", "SELECT 1"); err != nil {
		return StartPostgresServer(t)
	}
	return createDatabase(t, &Postgres{addr: machinePostgres})
}

// StartPostgresServer starts a PostgreSQL server of the test's own on a
// free loopback port, its data in a temporary directory, and creates the
// test's database on it. The server (Debian's postgresql package, or
// initdb and postgres on the PATH) runs as the postgres user when the test
// runs as root, since PostgreSQL refuses to run as root. It is stopped and
// its directory removed when the test ends.
func StartPostgresServer(t testing.TB) *Postgres {
	t.Helper()
	bins, err := pgBinaries()
	if err != nil {
		t.Fatalf("daprtest: %v: install PostgreSQL (Debian: apt-get install postgresql)", err)
	}
	attr, owner, err := pgSysProcAttr()
	if err != nil {
		t.Fatalf("daprtest: postgres: %v", err)
	}
	dir, err := os.MkdirTemp("", "daprtest-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if owner != nil {
		// The server's user needs its own data directory; the log files
		// stay the test's (they are opened before the switch).
		if err := os.Chown(dir, owner.uid, owner.gid); err != nil {
			t.Fatalf("daprtest: postgres: %v", err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(bins.initdb, "--pgdata", data, "--username", pgSuperuser,
		"--auth", "trust", "--encoding", "UTF8", "--no-locale", "--no-sync")
	initdb.Dir = dir
	initdb.SysProcAttr = attr
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("daprtest: initdb: %v\n%s", err, out)
	}

	for attempt := 0; attempt < 3; attempt++ {
		var ports []int
		if ports, err = freePorts(1); err != nil {
			break
		}
		addr := "127.0.0.1:" + strconv.Itoa(ports[0])
		p := &proc{
			name: "postgres",
			path: bins.postgres,
			args: []string{
				"-D", data,
				"-h", "127.0.0.1", "-p", strconv.Itoa(ports[0]),
				// TCP only: no socket in a directory the server may not own.
				"-c", "unix_socket_directories=",
				// A test database need not survive a power cut.
				"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			},
			attr:    attr,
			logPath: filepath.Join(t.TempDir(), fmt.Sprintf("postgres-%d.log", attempt)),
		}
		if err = p.start(); err != nil {
			break
		}
		err = p.waitReady(context.Background(), func(ctx context.Context) error {
			return pgExec(ctx, addr, "postgres", "SELECT 1")
		})
		if err == nil {
			p.logOnFailure(t)
			// SIGINT is PostgreSQL's fast shutdown: it ends the sessions
			// and releases its shared memory, which SIGKILL leaves behind.
			t.Cleanup(func() { p.signal(syscall.SIGINT, 10*time.Second) })
			return createDatabase(t, &Postgres{addr: addr, p: p})
		}
		p.kill()
	}
	t.Fatalf("daprtest: postgres: %v", err)
	return nil
}

// createDatabase gives pg a database of its own, dropped when the test
// ends (after the sidecars using it, which were started later, stopped).
func createDatabase(t testing.TB, pg *Postgres) *Postgres {
	t.Helper()
	pg.database = uniqueID("sbtest_")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pgExec(ctx, pg.addr, "postgres", "CREATE DATABASE "+pg.database); err != nil {
		t.Fatalf("daprtest: postgres %s: %v", pg.addr, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends sessions a killed sidecar may have left behind.
		if err := pgExec(ctx, pg.addr, "postgres", "DROP DATABASE IF EXISTS "+pg.database+" WITH (FORCE)"); err != nil {
			t.Logf("daprtest: dropping database %s: %v", pg.database, err)
		}
	})
	return pg
}

// NewDatabase creates another database on pg's server for the test, and
// drops it when the test ends.
func (pg *Postgres) NewDatabase(t testing.TB) *Postgres {
	t.Helper()
	return createDatabase(t, &Postgres{addr: pg.addr, p: pg.p})
}

// postgresAvailable reports whether StartPostgres can succeed.
func postgresAvailable() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if pgExec(ctx, machinePostgres, "postgres", "SELECT 1") == nil {
		return true
	}
	_, err := pgBinaries()
	return err == nil
}

// Addr is host:port of the server.
func (pg *Postgres) Addr() string { return pg.addr }

// Pid is the postmaster's process id when the server is the test's own
// (StartPostgresServer), else 0: the machine's server is shared.
func (pg *Postgres) Pid() int { return pg.p.pid() }

// Database is the test's database on the server.
func (pg *Postgres) Database() string { return pg.database }

// ConnString is the keyword/value connection string of the database, as
// Dapr's state.postgresql component takes it.
func (pg *Postgres) ConnString() string {
	host, port, _ := net.SplitHostPort(pg.addr)
	return fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable connect_timeout=10", host, port, pgSuperuser, pg.database)
}

// Query runs one SQL statement in the test's database and returns the
// rows as text (NULL as ""), for tests that look at what daprd stored.
func (pg *Postgres) Query(ctx context.Context, sql string) ([][]string, error) {
	return pgQuery(ctx, pg.addr, pg.database, sql)
}

func (pg *Postgres) component(name string) string {
	// v2 is the store's current schema (v1 is only the default for
	// components that name no version).
	return `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: ` + name + `
spec:
  type: state.postgresql
  version: v2
  metadata:
    - name: connectionString
      value: "` + pg.ConnString() + `"
    - name: actorStateStore
      value: "true"
`
}

// forget does nothing: the whole database is dropped when the test ends.
func (pg *Postgres) forget(testing.TB, string) {}

type pgBins struct{ initdb, postgres string }

// pgBinaries finds initdb and postgres: Debian keeps them out of the PATH
// under /usr/lib/postgresql/<major>/bin (the newest major wins).
func pgBinaries() (pgBins, error) {
	if initdb, err := exec.LookPath("initdb"); err == nil {
		if postgres, err := exec.LookPath("postgres"); err == nil {
			return pgBins{initdb, postgres}, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		b := pgBins{filepath.Join(d, "initdb"), filepath.Join(d, "postgres")}
		if isExecutable(b.initdb) && isExecutable(b.postgres) {
			return b, nil
		}
	}
	return pgBins{}, errors.New("initdb and postgres not found (PATH, /usr/lib/postgresql/*/bin)")
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

type owner struct{ uid, gid int }

// pgSysProcAttr is how the server's processes start: as the test's own
// user, or as the postgres user (else nobody) when the test runs as root.
func pgSysProcAttr() (*syscall.SysProcAttr, *owner, error) {
	if os.Geteuid() != 0 {
		return sysProcAttr(), nil, nil
	}
	var u *user.User
	var err error
	for _, name := range []string{"postgres", "nobody"} {
		if u, err = user.Lookup(name); err == nil {
			break
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("running as root and no postgres or nobody user to run the server as: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, nil, fmt.Errorf("user %s: %w", u.Username, err)
	}
	attr, err := sysProcAttrAs(uint32(uid), uint32(gid))
	if err != nil {
		return nil, nil, err
	}
	return attr, &owner{uid, gid}, nil
}

// pgExec runs sql in database on the server at addr and discards rows.
func pgExec(ctx context.Context, addr, database, sql string) error {
	_, err := pgQuery(ctx, addr, database, sql)
	return err
}

// pgQuery speaks just enough of PostgreSQL's wire protocol (version 3,
// simple query) for the harness to create and drop databases and look at
// rows, without a driver in the module: the server must let pgSuperuser
// in without a password, which both the machine's (trust) and the
// harness's own servers do.
func pgQuery(ctx context.Context, addr, database, sql string) ([][]string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	rd := bufio.NewReader(conn)

	// StartupMessage: length, protocol 3.0, then name/value pairs.
	var startup []byte
	startup = binary.BigEndian.AppendUint32(startup, 3<<16)
	for _, kv := range [][2]string{{"user", pgSuperuser}, {"database", database}} {
		startup = append(startup, kv[0]...)
		startup = append(startup, 0)
		startup = append(startup, kv[1]...)
		startup = append(startup, 0)
	}
	startup = append(startup, 0)
	if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, uint32(len(startup)+4))); err != nil {
		return nil, err
	}
	if _, err := conn.Write(startup); err != nil {
		return nil, err
	}
	if _, err := pgReadUntilReady(rd); err != nil {
		return nil, err
	}

	query := append([]byte{'Q'}, binary.BigEndian.AppendUint32(nil, uint32(len(sql)+5))...)
	query = append(append(query, sql...), 0)
	if _, err := conn.Write(query); err != nil {
		return nil, err
	}
	rows, err := pgReadUntilReady(rd)
	_, _ = conn.Write([]byte{'X', 0, 0, 0, 4}) // Terminate
	return rows, err
}

// pgReadUntilReady reads messages up to ReadyForQuery, collecting data
// rows and the first error the server reported.
func pgReadUntilReady(rd *bufio.Reader) ([][]string, error) {
	var rows [][]string
	var serverErr error
	for {
		typ, err := rd.ReadByte()
		if err != nil {
			return nil, err
		}
		var n uint32
		if err := binary.Read(rd, binary.BigEndian, &n); err != nil {
			return nil, err
		}
		if n < 4 || n > 64<<20 {
			return nil, fmt.Errorf("postgres: message %q of length %d", typ, n)
		}
		body := make([]byte, n-4)
		if _, err := io.ReadFull(rd, body); err != nil {
			return nil, err
		}
		switch typ {
		case 'R': // Authentication: 0 is AuthenticationOk
			if len(body) < 4 {
				return nil, errors.New("postgres: short authentication message")
			}
			if code := binary.BigEndian.Uint32(body); code != 0 {
				return nil, fmt.Errorf("postgres: the server asks %s for a password (authentication method %d); the harness needs trust authentication", pgSuperuser, code)
			}
		case 'E': // ErrorResponse: fields of one type byte and a string each
			if serverErr == nil {
				serverErr = pgError(body)
			}
			if !pgReadyFollows(serverErr) {
				// An error during startup ends the connection.
				return nil, serverErr
			}
		case 'D': // DataRow
			row, err := pgDataRow(body)
			if err != nil {
				return nil, err
			}
			rows = append(rows, row)
		case 'Z': // ReadyForQuery
			return rows, serverErr
		}
	}
}

type pgServerError struct {
	severity, code, message string
}

func (e *pgServerError) Error() string {
	return fmt.Sprintf("postgres: %s %s: %s", e.severity, e.code, e.message)
}

func pgError(body []byte) error {
	e := &pgServerError{}
	for _, field := range strings.Split(string(body), "\x00") {
		if field == "" {
			continue
		}
		switch field[0] {
		case 'S':
			e.severity = field[1:]
		case 'C':
			e.code = field[1:]
		case 'M':
			e.message = field[1:]
		}
	}
	return e
}

// pgReadyFollows reports whether the server goes on to ReadyForQuery
// after err (an ERROR in a query does; a FATAL ends the session).
func pgReadyFollows(err error) bool {
	var e *pgServerError
	return errors.As(err, &e) && e.severity == "ERROR"
}

func pgDataRow(body []byte) ([]string, error) {
	if len(body) < 2 {
		return nil, errors.New("postgres: short data row")
	}
	cols := int(binary.BigEndian.Uint16(body))
	body = body[2:]
	row := make([]string, 0, cols)
	for range cols {
		if len(body) < 4 {
			return nil, errors.New("postgres: short data row")
		}
		n := int32(binary.BigEndian.Uint32(body))
		body = body[4:]
		if n < 0 { // NULL
			row = append(row, "")
			continue
		}
		if int(n) > len(body) {
			return nil, errors.New("postgres: short data row")
		}
		row = append(row, string(body[:n]))
		body = body[n:]
	}
	return row, nil
}

// StrandStart writes a workflow instance into the database as daprd 1.16.0
// leaves one whose start was stranded (dapr/dapr#10443): the instance's
// metadata (one event in the inbox, generation 1) and its ExecutionStarted
// event in the inbox, with no history and no reminder to run it. That is
// the state a sidecar killed while it created the instance left in the
// scale-out test; daprd reports the instance PENDING and refuses another
// start of its ID as "already exists". daprd must not have loaded the
// instance yet.
func (pg *Postgres) StrandStart(ctx context.Context, appID string, started *protos.HistoryEvent) error {
	inbox, err := proto.Marshal(started)
	if err != nil {
		return err
	}
	id := started.GetExecutionStarted().GetOrchestrationInstance().GetInstanceId()
	if id == "" {
		return fmt.Errorf("daprtest: strand start: not an ExecutionStarted event with an instance ID: %v", started)
	}
	prefix := appID + "||dapr.internal.default." + appID + ".workflow||" + id + "||"
	// BackendWorkflowStateMetadata{InboxLength: 1, Generation: 1}.
	metadata := []byte{0x08, 0x01, 0x18, 0x01}
	_, err = pg.Query(ctx, fmt.Sprintf("INSERT INTO state (key, value) VALUES ('%s', decode('%x', 'hex')), ('%s', decode('%x', 'hex'))",
		prefix+"metadata", metadata, prefix+"inbox-000000", inbox))
	return err
}
