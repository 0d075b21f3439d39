package recorder

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestFilesArePrivate: the database and its -wal and -shm files are
// readable by the owner only, from the first start on.
func TestFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "guard.db")
	r, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Append(context.Background(), KindSessionStart, "s", "", map[string]any{"x": 1}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", filepath.Base(p), st.Mode().Perm())
		}
	}
	r.Close()
}
