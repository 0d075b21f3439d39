package recorder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// closedTranscript returns the path of a database a recorder made and
// closed, with one record in it.
func closedTranscript(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "guard.db")
	r, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Append(context.Background(), KindSessionStart, "s", "", map[string]int{"x": 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// within runs f and fails the test when it does not return within a
// generous deadline: a hang, not a measure of speed.
func within(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("the call hangs")
		return nil
	}
}

// TestJournalNotRegularIsRefused: a journal that is a FIFO or a symbolic
// link is refused by every way in, without blocking and without writing
// to what a link points to.
func TestJournalNotRegularIsRefused(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, jpath string) (check func(t *testing.T))
		want  string
	}{
		{"fifo", func(t *testing.T, jpath string) func(t *testing.T) {
			if err := syscall.Mkfifo(jpath, 0o600); err != nil {
				t.Fatal(err)
			}
			return func(*testing.T) {}
		}, "FIFO"},
		{"symbolic link", func(t *testing.T, jpath string) func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "precious")
			if err := os.WriteFile(target, []byte("keep me"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, jpath); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) {
				b, err := os.ReadFile(target)
				fi, serr := os.Stat(target)
				if err != nil || serr != nil {
					t.Fatal(err, serr)
				}
				if string(b) != "keep me" || fi.Mode().Perm() != 0o644 {
					t.Errorf("the link's target was changed: %q %v", b, fi.Mode())
				}
			}
		}, "symbolic link"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := closedTranscript(t)
			jpath := JournalPath(path)
			if err := os.Remove(jpath); err != nil {
				t.Fatal(err)
			}
			check := tc.setup(t, jpath)
			calls := map[string]func() error{
				"Pending": func() error { _, err := Pending(path); return err },
				"Recover": func() error {
					res, err := Recover(path, Options{})
					if err == nil && len(res.Problems) > 0 {
						err = errors.New(res.Problems[0])
					}
					return err
				},
				"Open": func() error {
					r, err := Open(path, Options{})
					if err == nil {
						r.Close()
					}
					return err
				},
			}
			for name, call := range calls {
				err := within(t, call)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: got %v, want an error naming %q", name, err, tc.want)
				}
			}
			check(t)
		})
	}
}

// TestStaleTempLinkIsNotFollowed: a link left where the new journal is
// made is removed, not written through.
func TestStaleTempLinkIsNotFollowed(t *testing.T) {
	path := closedTranscript(t)
	jpath := JournalPath(path)
	target := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(target, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, jpath+".tmp"); err != nil {
		t.Fatal(err)
	}
	f, err := replaceJournal(jpath, path, 7, journalID{7})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if b, err := os.ReadFile(target); err != nil || string(b) != "keep me" {
		t.Errorf("the link's target was changed: %q %v", b, err)
	}
	fi, err := os.Lstat(jpath)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("the new journal is %v", fi.Mode())
	}
}

// TestJournalModeIsTightened: a journal loosened to 0644 is made 0600
// when a recorder opens it.
func TestJournalModeIsTightened(t *testing.T) {
	path := closedTranscript(t)
	jpath := JournalPath(path)
	if err := os.Chmod(jpath, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fi, err := os.Stat(jpath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the journal has mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestRecoverKeepsTheDatabaseOwner: a journal that root's Recover
// replaces belongs to the database's owner, so that the guard, running
// as that user, can open it.
func TestRecoverKeepsTheDatabaseOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files away")
	}
	const uid, gid = 65534, 65534
	path := closedTranscript(t)
	// A record a crashed guard left in the journal.
	writeJournal(t, path, -1, sealAt(t, path, -1,
		frame(KindCallIntent, "s", "c", `{}`, time.Now())))
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	res, err := Recover(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ingested != 1 {
		t.Fatalf("recover moved %d records, want 1", res.Ingested)
	}
	fi, err := os.Stat(JournalPath(path))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != uid || st.Gid != gid {
		t.Errorf("the journal is owned by %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
	}
}
