package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresServer is a private PostgreSQL the harness starts from the
// machine's binaries, so that all of its processes' CPU and memory are the
// benchmark's, and nobody else's queries land in the figures.
type postgresServer struct {
	cmd     *exec.Cmd
	dir     string
	URL     string // of its postgres database
	Version string
}

// findPostgresBin returns the directory holding initdb and postgres: bin if
// set, else Debian's newest /usr/lib/postgresql/N/bin, else PATH.
func findPostgresBin(bin string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	p, err := exec.LookPath("initdb")
	if err != nil {
		return "", errors.New("no PostgreSQL binaries: no /usr/lib/postgresql/*/bin/initdb and no initdb on PATH")
	}
	return filepath.Dir(p), nil
}

// startPostgres runs initdb in a new temporary directory and starts the
// server on a free loopback port. PostgreSQL refuses to run as root, so as
// root it runs as the postgres user.
func startPostgres(ctx context.Context, bin string) (_ *postgresServer, err error) {
	bin, err = findPostgresBin(bin)
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres user for the server: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// Under the system's temporary directory, which that user can reach
	// whatever the caller's own directories allow.
	dir, err := os.MkdirTemp("", "sagabench-pg-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	run := func(name string, args ...string) *exec.Cmd {
		c := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
		c.Dir = dir
		return c
	}
	version, _ := run("postgres", "--version").Output()
	data := filepath.Join(dir, "data")
	if out, err := run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, lastLines(out, 5))
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	srv := &postgresServer{
		dir:     dir,
		URL:     fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", ports[0]),
		Version: strings.TrimSpace(string(version)),
	}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	srv.cmd = run("postgres", "-D", data, "-p", strconv.Itoa(ports[0]), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200")
	srv.cmd.Stdout, srv.cmd.Stderr = logf, logf
	srv.cmd.Cancel = func() error { return srv.cmd.Process.Signal(syscall.SIGINT) }
	if err := srv.cmd.Start(); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, srv.URL)
		if err == nil {
			conn.Close(ctx)
			return srv, nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			srv.stop()
			return nil, fmt.Errorf("postgres did not accept connections in 30 s: %w: %s", err, lastLines(log, 5))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Pid is the postmaster's: the root of the server's processes.
func (s *postgresServer) Pid() int { return s.cmd.Process.Pid }

// stop shuts the server down (fast shutdown: SIGINT) and waits for it.
func (s *postgresServer) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	_ = os.RemoveAll(s.dir)
}

// freshDatabase creates a new database on the server at url and returns
// its URL and a function that drops it.
func freshDatabase(ctx context.Context, url, name string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "", nil, err
	}
	dbURL := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
	drop := func() {
		c, err := pgx.Connect(context.Background(), url)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	}
	return dbURL, drop, nil
}

// postmasterPid finds the server behind url from one of its backends
// (root can read every process's /proc entry).
func postmasterPid(ctx context.Context, url string) (int, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return 0, err
	}
	st, err := readProcStat(backend)
	if err != nil {
		return 0, fmt.Errorf("the server's processes are not visible here: %w", err)
	}
	return st.ppid, nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
