package recorder

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// openJournalFile opens the journal at path with flag (os.O_RDONLY, or
// os.O_RDWR with or without os.O_CREATE), refusing a symbolic link, and
// anything that is not a regular file, before a read could block on it
// (a FIFO). A journal opened for writing is made mode 0600, like the
// database.
func openJournalFile(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("recorder: open the journal %s: it is a symbolic link, "+
			"which is refused", path)
	}
	if err != nil {
		return nil, fmt.Errorf("recorder: open the journal: %w", err)
	}
	if err := checkJournalFile(f, flag&(os.O_WRONLY|os.O_RDWR) != 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("recorder: open the journal %s: %w", path, err)
	}
	return f, nil
}

// checkJournalFile refuses a journal f that is not a regular file, turns
// its descriptor back to blocking, and makes a writable one mode 0600.
func checkJournalFile(f *os.File, write bool) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("it is not a regular file (%s), which is refused",
			fileKind(fi.Mode()))
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetNonblock(int(fd), false)
		if serr == nil && write && fi.Mode().Perm() != 0o600 {
			serr = syscall.Fchmod(int(fd), 0o600)
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set its mode: %w", serr)
	}
	return nil
}

// fileKind names the type of a file that is not regular.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a directory"
	}
	return m.Type().String()
}

// createJournalTemp creates the file at tmp anew, exclusively and without
// following links, after removing a stale one that is a regular file or
// a link (never what a link points to). The file takes the owner and
// group of the database at dbPath, so that a journal an administrator's
// command replaces stays the guard's.
func createJournalTemp(tmp, dbPath string) (*os.File, error) {
	if fi, err := os.Lstat(tmp); err == nil {
		if !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0 {
			return nil, fmt.Errorf("recorder: a stale %s is %s, which is refused",
				tmp, fileKind(fi.Mode()))
		}
		if err := os.Remove(tmp); err != nil {
			return nil, fmt.Errorf("recorder: remove a stale new journal: %w", err)
		}
	}
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("recorder: create a new journal: %w", err)
	}
	if err := chownLike(f, dbPath); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	return f, nil
}

// chownLike gives f the owner and group of the file at dbPath. A process
// that may not (not root) created f as itself, the owner it would give.
func chownLike(f *os.File, dbPath string) error {
	fi, err := os.Stat(dbPath)
	if err != nil {
		return fmt.Errorf("recorder: stat the database: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	err = f.Chown(int(st.Uid), int(st.Gid))
	if errors.Is(err, syscall.EPERM) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("recorder: give the journal the database's owner: %w", err)
	}
	return nil
}
