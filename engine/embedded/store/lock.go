package store

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked is matched (errors.Is) by the error Open returns when another
// process, or another Backend of this one, has the database.
var ErrLocked = errors.New("store: database locked")

// LockedError says who holds the database.
type LockedError struct {
	Path string
	// PID is the holder's process id; 0 when it could not be found out.
	PID int
}

func (e *LockedError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("database %s is locked by another process", e.Path)
	}
	return fmt.Sprintf("database %s is locked by pid %d", e.Path, e.PID)
}

func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// fileID is what identifies a file whatever its name: the store compares
// the path's current identity with the one it opened to notice the file
// being deleted or replaced.
type fileID struct{ dev, ino uint64 }

func statID(path string) (fileID, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return fileID{}, err
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino}, nil
}

func fstatID(f *os.File) (fileID, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return fileID{}, err
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino}, nil
}

// dbLock is the process's exclusive claim on a database: an flock on
// <path>.lock, which holds the owner's pid (and is what earlier builds
// locked), and one on the database file itself, so that a second process
// is refused even after someone deleted the lock file. flock and SQLite's
// own (fcntl) locks do not interact on Linux; the database descriptor is
// closed only after every SQLite connection, since closing any descriptor
// of a file drops the process's fcntl locks on it.
type dbLock struct {
	lockFile *os.File
	dbFile   *os.File
	db       fileID
}

// acquire takes both locks, creating the files 0600 if missing (SQLite
// then creates the WAL and shared-memory files with the database file's
// mode).
func acquire(path string) (*dbLock, error) {
	lf, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: open lock file: %w", err)
	}
	if err := flock(lf); err != nil {
		_ = lf.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Path: path, PID: pidIn(path + ".lock")}
		}
		return nil, fmt.Errorf("store: lock %s.lock: %w", path, err)
	}
	df, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		_ = lf.Close()
		return nil, fmt.Errorf("store: open database file: %w", err)
	}
	if err := flock(df); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			// The lock file was deleted under its holder: find the
			// holder through the kernel's table of locks.
			err = &LockedError{Path: path, PID: flockHolder(df)}
		} else {
			err = fmt.Errorf("store: lock %s: %w", path, err)
		}
		_ = df.Close()
		_ = lf.Close()
		return nil, err
	}
	l := &dbLock{lockFile: lf, dbFile: df}
	if l.db, err = fstatID(df); err != nil {
		l.release()
		return nil, fmt.Errorf("store: stat %s: %w", path, err)
	}
	pid := strconv.Itoa(os.Getpid()) + "\n"
	if err := lf.Truncate(0); err == nil {
		_, err = lf.WriteAt([]byte(pid), 0)
	}
	if err != nil {
		l.release()
		return nil, fmt.Errorf("store: write pid to %s.lock: %w", path, err)
	}
	return l, nil
}

// release drops the locks (the kernel also does when the process dies).
// The lock file stays: removing it would let a process that opened it just
// before lock a file nobody else sees.
func (l *dbLock) release() {
	if l.dbFile != nil {
		_ = l.dbFile.Close()
		l.dbFile = nil
	}
	if l.lockFile != nil {
		_ = l.lockFile.Truncate(0)
		_ = l.lockFile.Close()
		l.lockFile = nil
	}
}

func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}

func pidIn(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// flockHolder finds the pid holding an flock on f's file in /proc/locks
// (Linux), or returns 0.
func flockHolder(f *os.File) int {
	id, err := fstatID(f)
	if err != nil {
		return 0
	}
	pl, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer pl.Close()
	// "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234567 0 EOF"
	suffix := ":" + strconv.FormatUint(id.ino, 10)
	sc := bufio.NewScanner(pl)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" || !strings.HasSuffix(fields[5], suffix) {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil {
			return pid
		}
	}
	return 0
}
