package recorder

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// clock is a test clock that moves a millisecond each time it is read.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

// Set moves the clock to t.
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// openRecorder opens a recorder on a fresh database in a temp dir; it is
// closed at cleanup unless the test closed it.
func openRecorder(t testing.TB, opts Options) (*Recorder, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "transcript.db")
	r, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, path
}

// appendN appends n records of the kinds a session writes, one commit
// each, each in the database before the next is appended: a session
// start, then intent and completion pairs.
func appendN(t testing.TB, r *Recorder, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		kind, call := KindCallIntent, fmt.Sprintf("call-%d", i/2)
		switch {
		case i == 0:
			kind, call = KindSessionStart, ""
		case i%2 == 0:
			kind = KindCallCompletion
		}
		body := map[string]any{"i": i, "tool": "read_file", "target": "docs"}
		if err := r.Append(ctx, kind, "sess-1", call, body); err != nil {
			t.Fatal(err)
		}
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// openRW opens the database for tampering with plain SQL.
func openRW(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := OpenDB(path, "normal")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func verify(t testing.TB, db *sql.DB, opts VerifyOptions) Report {
	t.Helper()
	rep, err := Verify(context.Background(), db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// rechain recomputes prev_hash and hash of every record from seq from
// on, as someone who can write the database but holds no key would after
// an edit. With key set it also re-signs the checkpoints with that key.
func rechain(t testing.TB, db *sql.DB, from int64, key ed25519.PrivateKey) {
	t.Helper()
	var prev string
	err := db.QueryRow(`SELECT hash FROM records WHERE seq = ?`, from-1).Scan(&prev)
	if err == sql.ErrNoRows {
		prev = GenesisHash
	} else if err != nil {
		t.Fatal(err)
	}
	var recs []Record
	err = Records(context.Background(), db, 0, func(r Record) error {
		if r.Seq >= from {
			recs = append(recs, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var last Record
	for _, r := range recs {
		if r.Kind == KindCheckpoint && key != nil {
			r.Body = mustJSON(t, SignCheckpoint(key, last.Seq, last.Hash))
		}
		r.PrevHash = prev
		r.Hash = Hash(r)
		mustExec(t, db, `UPDATE records SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?`,
			string(r.Body), r.PrevHash, r.Hash, r.Seq)
		prev, last = r.Hash, r
	}
}
