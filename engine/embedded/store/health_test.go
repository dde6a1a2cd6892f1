package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dapr/durabletask-go/api"
	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/engine/embedded/store"
)

// runChild runs this test binary's test named run in a child process with
// the environment env and returns its output. A child that has not ended
// after two minutes is killed, and the error says so.
func runChild(t *testing.T, run string, env ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+run+"$", "-test.v")
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("child %s killed after 2m: %w", run, err)
	}
	return out.String(), err
}

// TestOpenLockedChild is the second process of the lock tests: it opens
// STORE_LOCK_CHILD and prints what Open said.
func TestOpenLockedChild(t *testing.T) {
	path := os.Getenv("STORE_LOCK_CHILD")
	if path == "" {
		t.Skip("child of TestSecondOpenerRefused and TestLockFileDeleted")
	}
	be, err := store.Open(store.Options{Path: path})
	if err == nil {
		_ = be.Close()
		fmt.Println("OPENED")
		return
	}
	fmt.Printf("LOCKED=%v ERROR=%v\n", errors.Is(err, store.ErrLocked), err)
}

// TestSecondOpenerRefused: a second opener of a database in use, in this
// process or another, gets "database <path> is locked by pid N" with the
// holder's pid, not a panic or a second writer.
func TestSecondOpenerRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wf.db")
	be := open(t, path)
	_, err := store.Open(store.Options{Path: path})
	want := fmt.Sprintf("database %s is locked by pid %d", path, os.Getpid())
	var le *store.LockedError
	if !errors.As(err, &le) || !errors.Is(err, store.ErrLocked) || err.Error() != want {
		t.Fatalf("second Open in this process: %v, want %q", err, want)
	}
	out, err := runChild(t, "TestOpenLockedChild", "STORE_LOCK_CHILD="+path)
	if err != nil || !strings.Contains(out, "LOCKED=true ERROR="+want) {
		t.Fatalf("second Open in another process: %v\n%s", err, out)
	}
	// Once the holder closes, the database opens again.
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
	out, err = runChild(t, "TestOpenLockedChild", "STORE_LOCK_CHILD="+path)
	if err != nil || !strings.Contains(out, "OPENED") {
		t.Fatalf("Open after Close: %v\n%s", err, out)
	}
}

// TestLockFileDeleted: with the lock file deleted under a running store,
// another process is still refused (the database file itself is locked),
// and still told who holds it.
func TestLockFileDeleted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wf.db")
	be := open(t, path)
	defer be.Close()
	if err := os.Remove(path + ".lock"); err != nil {
		t.Fatal(err)
	}
	out, err := runChild(t, "TestOpenLockedChild", "STORE_LOCK_CHILD="+path)
	want := fmt.Sprintf("LOCKED=true ERROR=database %s is locked by pid %d", path, os.Getpid())
	if err != nil || !strings.Contains(out, want) {
		t.Fatalf("Open with the lock file deleted: %v\n%s", err, out)
	}
	if err := be.Healthy(); err != nil {
		t.Fatalf("holder unhealthy: %v", err)
	}
}

// TestFilesPrivate: the database, its WAL and shared-memory files and the
// lock file are created readable by their owner only.
func TestFilesPrivate(t *testing.T) {
	old := syscall.Umask(0o022) // the usual umask, which leaves 0644 files
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "wf.db")
	be := open(t, path)
	defer be.Close()
	if err := create(t, be, "a"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm", path + ".lock"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %v, want -rw-------", filepath.Base(f), m)
		}
	}
	if pid, _ := os.ReadFile(path + ".lock"); strings.TrimSpace(string(pid)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file holds %q, want this pid", pid)
	}
}

// waitUnhealthy waits for Healthy to report a problem (the file check runs
// every second).
func waitUnhealthy(t *testing.T, be *store.Backend) error {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := be.Healthy(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatal("store still healthy")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDatabaseDeleted: the database file deleted under a running store
// (SQLite would go on writing into the unlinked file, lost at the next
// start) makes Healthy report it, and every write is refused as an
// outage: ErrUnavailable in process, codes.Unavailable across gRPC.
func TestDatabaseDeleted(t *testing.T) {
	r := workflow.NewRegistry()
	_ = r.AddWorkflowN("W", func(ctx *workflow.WorkflowContext) (any, error) { return nil, nil })
	path := filepath.Join(t.TempDir(), "wf.db")
	h := startGrpcHub(t, path, 4, r, true)
	defer h.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := h.client.ScheduleWorkflow(ctx, "W", workflow.WithInstanceID("before")); err != nil {
		t.Fatal(err)
	}
	if err := h.be.Healthy(); err != nil {
		t.Fatalf("healthy store: %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	err := waitUnhealthy(t, h.be)
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), path+" was deleted") {
		t.Fatalf("Healthy: %v", err)
	}
	err = create(t, h.be, "after")
	if !errors.Is(err, store.ErrUnavailable) || status.Code(err) != codes.Unavailable {
		t.Fatalf("write after the deletion: %v", err)
	}
	_, err = h.client.ScheduleWorkflow(ctx, "W", workflow.WithInstanceID("after"))
	if status.Code(errors.Unwrap(err)) != codes.Unavailable && !strings.Contains(err.Error(), "code = Unavailable") {
		t.Fatalf("start through gRPC after the deletion: %v", err)
	}
	if !strings.Contains(err.Error(), store.UnavailableMessage) {
		t.Fatalf("start through gRPC: %v", err)
	}
}

// TestDatabaseReplaced: a file moved over the database's path is noticed
// the same way.
func TestDatabaseReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wf.db")
	be := open(t, path)
	defer be.Close()
	if err := os.WriteFile(filepath.Join(dir, "other"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "other"), path); err != nil {
		t.Fatal(err)
	}
	err := waitUnhealthy(t, be)
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "replaced") {
		t.Fatalf("Healthy: %v", err)
	}
	if err := create(t, be, "a"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("write after the replacement: %v", err)
	}
}

// TestDiskFull: a full database (SQLITE_FULL, the error a full disk gives)
// is an outage: the write fails with ErrUnavailable (codes.Unavailable),
// never a refusal of the input, Healthy says so, and once there is room
// again the same write succeeds and nothing committed before was lost.
func TestDiskFull(t *testing.T) {
	be := open(t, filepath.Join(t.TempDir(), "wf.db"))
	defer be.Close()
	if err := be.SetMaxPages(1); err != nil { // capped at its current size
		t.Fatal(err)
	}
	big := strings.Repeat("x", 64<<10)
	var err error
	n := 0
	for ; n < 1000; n++ {
		if err = create(t, be, fmt.Sprint("i", n), api.WithInput(big)); err != nil {
			break
		}
	}
	if err == nil {
		t.Fatal("the capped database never filled")
	}
	if !errors.Is(err, store.ErrUnavailable) || status.Code(err) != codes.Unavailable || errors.Is(err, api.ErrDuplicateInstance) {
		t.Fatalf("write to a full database: %v", err)
	}
	if h := be.Healthy(); !errors.Is(h, store.ErrUnavailable) {
		t.Fatalf("Healthy with a full database: %v", h)
	}
	if err := be.SetMaxPages(1 << 30); err != nil {
		t.Fatal(err)
	}
	if err := create(t, be, fmt.Sprint("i", n), api.WithInput(big)); err != nil {
		t.Fatalf("the same write with room again: %v", err)
	}
	if h := be.Healthy(); h != nil {
		t.Fatalf("Healthy after a successful write: %v", h)
	}
	for i := 0; i <= n; i++ {
		if _, err := be.GetOrchestrationMetadata(context.Background(), api.InstanceID(fmt.Sprint("i", i))); err != nil {
			t.Fatalf("i%d: %v", i, err)
		}
	}
}

// TestWriteErrorChild is the child of TestWriteErrorIsOutage: with the
// process's file size limit just above the database's size, writes fail
// in the kernel (EFBIG), as they do on a full disk (ENOSPC).
func TestWriteErrorChild(t *testing.T) {
	path := os.Getenv("STORE_FSIZE_CHILD")
	if path == "" {
		t.Skip("child of TestWriteErrorIsOutage")
	}
	be := open(t, path)
	defer be.Close()
	big := strings.Repeat("y", 256<<10)
	if err := create(t, be, "first", api.WithInput(big)); err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	saved := lim
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	lim.Cur = uint64(fi.Size()) + 64<<10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	var werr error
	for i := 0; i < 50 && werr == nil; i++ {
		werr = create(t, be, fmt.Sprint("w", i), api.WithInput(big))
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &saved); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("WRITE_ERROR unavailable=%v code=%v healthy=%v: %v\n", errors.Is(werr, store.ErrUnavailable), status.Code(werr), be.Healthy() == nil, werr)
	err = create(t, be, "after", api.WithInput(big))
	fmt.Printf("AFTER err=%v healthy=%v\n", err, be.Healthy() == nil)
}

// TestWriteErrorIsOutage: a write the operating system fails is an outage
// (ErrUnavailable, Healthy reports it), and the store writes again once the
// cause is gone.
func TestWriteErrorIsOutage(t *testing.T) {
	out, err := runChild(t, "TestWriteErrorChild", "STORE_FSIZE_CHILD="+filepath.Join(t.TempDir(), "wf.db"))
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(out, "WRITE_ERROR unavailable=true code=Unavailable healthy=false") {
		t.Fatalf("write past the file size limit:\n%s", out)
	}
	if !strings.Contains(out, "AFTER err=<nil> healthy=true") {
		t.Fatalf("write after the limit was lifted:\n%s", out)
	}
}
