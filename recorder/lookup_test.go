package recorder

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeKeyedTranscript writes, with a recorder of its own, a transcript
// of three interleaved sessions past the writer's first key catch-up:
// calls with completions, approvals keyed by call and by request, a
// completion whose intent is missing, an ended session and checkpoints.
// It returns the database's path, closed, and the session ids.
func writeKeyedTranscript(t *testing.T) (string, []string) {
	t.Helper()
	r, path := openRecorder(t, Options{SigningKey: newKey(t), CheckpointEvery: 50,
		Now: newClock().Now})
	ctx := context.Background()
	app := func(kind, session, call string, body map[string]any) {
		t.Helper()
		if err := r.Append(ctx, kind, session, call, body); err != nil {
			t.Fatal(err)
		}
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sessions := []string{"sess-a", "sess-b", "sess-c"}
	for _, s := range sessions {
		app(KindSessionStart, s, "", map[string]any{"session_id": s})
	}
	for i := range 140 {
		s, call := sessions[i%3], fmt.Sprintf("call-%d", i)
		app(KindCallIntent, s, call, map[string]any{"tool": "read_file", "target": "docs",
			"caller": Caller{Subject: "u" + s}})
		done := map[string]any{"outcome": "ok"}
		if i%5 == 0 {
			req := fmt.Sprintf("req-%d", i)
			app(KindApproval, s, call, map[string]any{"event": "approval_opened"})
			app(KindApproval, "", req, map[string]any{"event": "approval_decided"})
			done = map[string]any{"outcome": "ok", "request_id": req}
		}
		if i%7 != 6 { // every seventh call stays incomplete
			app(KindCallCompletion, s, call, done)
		}
	}
	app(KindCallCompletion, "sess-b", "ghost", map[string]any{"outcome": "ok"})
	app(KindSessionEnd, "sess-a", "", map[string]any{"session_id": "sess-a"})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	return path, sessions
}

// readView is what the readers answer about a transcript.
type readView struct {
	Calls, SessionCalls, UptoCalls []Call
	Sessions                       []Session
	Found                          []Session
	SessionRecords                 [][]Record
	Has                            []bool
	Report                         Report
}

// readAll asks every reader of db about the sessions given.
func readAll(t *testing.T, db *sql.DB, sessions []string) readView {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	rd, err := NewReader(ctx, db)
	must(err)
	defer rd.Close()
	var v readView
	collect := func(to *[]Call) func(Call) error {
		return func(c Call) error { *to = append(*to, c); return nil }
	}
	must(rd.Calls(ctx, CallFilter{}, collect(&v.Calls)))
	must(rd.Calls(ctx, CallFilter{SessionID: "sess-b"}, collect(&v.SessionCalls)))
	must(rd.Calls(ctx, CallFilter{UptoSeq: 200}, collect(&v.UptoCalls)))
	must(Sessions(ctx, db, func(s Session) error { v.Sessions = append(v.Sessions, s); return nil }))
	for _, id := range sessions {
		s, err := rd.FindSession(ctx, id)
		must(err)
		v.Found = append(v.Found, s)
		var recs []Record
		must(rd.SessionRecords(ctx, id, func(r Record) error { recs = append(recs, r); return nil }))
		v.SessionRecords = append(v.SessionRecords, recs)
	}
	for _, call := range []string{"call-0", "call-139", "ghost", "req-5"} {
		has, err := rd.HasIntent(ctx, call)
		must(err)
		v.Has = append(v.Has, has)
	}
	v.Report, err = Verify(ctx, db, VerifyOptions{})
	must(err)
	return v
}

// wantFromRecords checks the parts of v that follow from the records
// alone, read in order without any key: each session's records, and
// which calls have an intent.
func wantFromRecords(t *testing.T, db *sql.DB, sessions []string, v readView) {
	t.Helper()
	bySession := map[string][]Record{}
	intents := map[string]bool{}
	err := Records(context.Background(), db, 0, func(r Record) error {
		bySession[r.SessionID] = append(bySession[r.SessionID], r)
		if r.Kind == KindCallIntent {
			intents[r.CallID] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range sessions {
		if !reflect.DeepEqual(v.SessionRecords[i], bySession[id]) {
			t.Errorf("session %s: %d records read, %d in records", id,
				len(v.SessionRecords[i]), len(bySession[id]))
		}
	}
	for i, call := range []string{"call-0", "call-139", "ghost", "req-5"} {
		if v.Has[i] != intents[call] {
			t.Errorf("HasIntent(%s) = %v, records say %v", call, v.Has[i], intents[call])
		}
	}
}

func TestReadersWhateverTheKeyTable(t *testing.T) {
	base, sessions := writeKeyedTranscript(t)

	// The transcript as the guard left it: the writer caught the keys up
	// once, past seq 256, and the records after that are the tail.
	db := openRW(t, base)
	ctx := context.Background()
	head, _, err := Head(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	keyed, err := keyedThrough(ctx, db, head)
	if err != nil {
		t.Fatal(err)
	}
	if keyed < keysEvery || keyed >= head {
		t.Fatalf("the writer caught the keys up to %d of %d; the test needs a tail", keyed, head)
	}
	if ok, err := keysMatch(ctx, db, keyed); err != nil || !ok {
		t.Fatalf("the keys the writer wrote do not match the records: %v", err)
	}
	db.Close()

	// The answers with the key table current, as Open leaves it.
	current := filepath.Join(t.TempDir(), "current.db")
	copyFile(t, base, current)
	r, err := Open(current, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	want := readAll(t, openRW(t, current), sessions)
	wantFromRecords(t, openRW(t, current), sessions, want)
	if len(want.Calls) != 140 || len(want.SessionCalls) != 47 || len(want.UptoCalls) == 0 ||
		len(want.UptoCalls) >= 140 || len(want.Sessions) != 3 || !want.Report.OK() {
		t.Fatalf("the transcript is not what the test meant: %d calls, %d in sess-b, "+
			"%d up to seq 200, %d sessions, %v", len(want.Calls), len(want.SessionCalls),
			len(want.UptoCalls), len(want.Sessions), want.Report.Problems)
	}

	tests := []struct {
		name     string
		change   string // SQL run on the copy before reading
		readOnly bool
		// caughtUp says whether the reader must leave the key table
		// matching every record (it can write), else untouched.
		caughtUp bool
	}{
		{"stale", "", false, true},
		{"empty", "DELETE FROM record_keys", false, true},
		{"dropped", "DROP TABLE record_keys", false, true},
		{"missing rows", "DELETE FROM record_keys WHERE seq BETWEEN 40 AND 60", false, true},
		{"a stray row past the head", `INSERT INTO record_keys VALUES
			(999999, 'call_intent', 'sess-a', 'call-x')`, false, true},
		{"stale, read-only copy", "", true, false},
		{"current, read-only copy", "current", true, false},
		{"empty, read-only copy", "DELETE FROM record_keys", true, false},
		{"dropped, read-only copy", "DROP TABLE record_keys", true, false},
		{"missing rows, read-only copy", "DELETE FROM record_keys WHERE seq BETWEEN 40 AND 60",
			true, false},
		{"a stray row past the head, read-only copy", `INSERT INTO record_keys VALUES
			(999999, 'call_intent', 'sess-a', 'call-x')`, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.db")
			from := base
			if tc.change == "current" {
				from = current
			}
			copyFile(t, from, path)
			if tc.change != "" && tc.change != "current" {
				w := openRW(t, path)
				mustExec(t, w, tc.change)
				w.Close()
			}
			before := keyRows(t, path)

			var db *sql.DB
			if tc.readOnly {
				ro, err := OpenReadOnly(path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ro.Close() })
				db = ro
			} else {
				db = openRW(t, path)
			}
			got := readAll(t, db, sessions)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("the readers answer otherwise than with current keys")
			}

			after := keyRows(t, path)
			if tc.caughtUp {
				w := openRW(t, path)
				if ok, err := keysMatch(ctx, w, head); err != nil || !ok {
					t.Errorf("the key table does not match the records after reading: %v", err)
				}
				var n int64
				err := w.QueryRow(`SELECT count(*) FROM record_keys WHERE seq <= ?`, head).Scan(&n)
				if err != nil || n != head {
					t.Errorf("the key table holds %d rows up to the head after reading, want %d: %v",
						n, head, err)
				}
			} else if after != before {
				t.Errorf("a read-only reader changed the key table: %d rows, then %d", before, after)
			}
		})
	}
}

// keyRows counts the rows of record_keys in the database at path, -1
// when it has no such table.
func keyRows(t *testing.T, path string) int64 {
	t.Helper()
	db, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if has, err := hasKeyTable(context.Background(), db); err != nil || !has {
		return -1
	}
	var n int64
	if err := db.QueryRow(`SELECT count(*) FROM record_keys`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTamperedKeys edits key rows to file records elsewhere; no reader
// answer changes, and verification still turns on the records alone.
func TestTamperedKeys(t *testing.T) {
	base, sessions := writeKeyedTranscript(t)
	r, err := Open(base, Options{}) // catches the keys up
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	want := readAll(t, openRW(t, base), sessions)

	// sess-a's call-3, its completion, and sess-a's start record.
	var intent, completion, start int64
	db := openRW(t, base)
	for _, q := range []struct {
		dest *int64
		sql  string
	}{
		{&intent, `SELECT seq FROM records WHERE call_id = 'call-3' AND kind = 'call_intent'`},
		{&completion, `SELECT seq FROM records WHERE call_id = 'call-3' AND kind = 'call_completion'`},
		{&start, `SELECT seq FROM records WHERE session_id = 'sess-a' AND kind = 'session_start'`},
	} {
		if err := db.QueryRow(q.sql).Scan(q.dest); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	tests := []struct {
		name   string
		change string
	}{
		{"intent filed under another session",
			fmt.Sprintf(`UPDATE record_keys SET session_id = 'sess-b' WHERE seq = %d`, intent)},
		{"a session's first record filed under another",
			fmt.Sprintf(`UPDATE record_keys SET session_id = 'sess-c' WHERE seq = %d`, start)},
		{"completion filed under another call",
			fmt.Sprintf(`UPDATE record_keys SET call_id = 'call-4' WHERE seq = %d`, completion)},
		{"intent filed as a completion",
			fmt.Sprintf(`UPDATE record_keys SET kind = 'call_completion' WHERE seq = %d`, intent)},
		{"key row deleted", fmt.Sprintf(`DELETE FROM record_keys WHERE seq = %d`, intent)},
		{"a stray key row past the head", `INSERT INTO record_keys VALUES (999999, 'call_intent',
			'sess-a', 'call-x')`},
	}
	for _, tc := range tests {
		for _, readOnly := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, read-only %v", tc.name, readOnly), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "t.db")
				copyFile(t, base, path)
				w := openRW(t, path)
				mustExec(t, w, tc.change)
				w.Close()
				db := openRW(t, path)
				if readOnly {
					ro, err := OpenReadOnly(path)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { ro.Close() })
					db = ro
				}
				if got := readAll(t, db, sessions); !reflect.DeepEqual(got, want) {
					t.Fatalf("a tampered key table changed the answers")
				}

				// An edited record is found the same with the key
				// table tampered as without.
				w = openRW(t, path)
				mustExec(t, w, `UPDATE records SET body = '{"tool":"run_shell"}' WHERE seq = ?`, intent)
				got := verify(t, w, VerifyOptions{})
				if got.OK() || got.Problems[0].Seq != intent || got.Problems[0].Type != ProblemEdited {
					t.Errorf("verify of an edited record = %+v", got.Problems)
				}
			})
		}
	}
}

// TestOldSchemaUpgrade opens a transcript written before record_keys:
// records with its three indexes. Read-only it reads the same; Open
// drops the indexes and builds the key table, and it verifies the same.
func TestOldSchemaUpgrade(t *testing.T) {
	base, sessions := writeKeyedTranscript(t)
	r, err := Open(base, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	want := readAll(t, openRW(t, base), sessions)

	old := filepath.Join(t.TempDir(), "old.db")
	copyFile(t, base, old)
	db := openRW(t, old)
	mustExec(t, db, `DROP TABLE record_keys;
		CREATE INDEX records_call ON records(call_id) WHERE call_id != '';
		CREATE INDEX records_session ON records(session_id, seq);
		CREATE INDEX records_kind ON records(kind, seq);`)
	db.Close()

	ro, err := OpenReadOnly(old)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, ro, sessions); !reflect.DeepEqual(got, want) {
		t.Errorf("the old schema read read-only answers otherwise")
	}
	ro.Close()

	r, err = Open(old, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	db = openRW(t, old)
	var indexes []string
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'index'
		AND tbl_name = 'records'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		rows.Scan(&name)
		indexes = append(indexes, name)
	}
	rows.Close()
	if len(indexes) != 0 {
		t.Errorf("records keeps the indexes %v after Open", indexes)
	}
	head, _, _ := Head(context.Background(), db)
	if ok, err := keysMatch(context.Background(), db, head); err != nil || !ok ||
		keyRows(t, old) != head {
		t.Errorf("Open did not build the key table whole: %d rows of %d, %v", keyRows(t, old), head, err)
	}
	if got := readAll(t, db, sessions); !reflect.DeepEqual(got, want) {
		t.Errorf("the upgraded transcript answers otherwise")
	}
}

func TestLastCheckpointSeq(t *testing.T) {
	base, _ := writeKeyedTranscript(t)
	ctx := context.Background()
	db := openRW(t, base)
	var last, before int64
	if err := db.QueryRow(`SELECT MAX(seq) FROM records WHERE kind = 'checkpoint'`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	err := db.QueryRow(`SELECT MAX(seq) FROM records WHERE kind = 'checkpoint' AND seq < ?`, last).
		Scan(&before)
	if err != nil {
		t.Fatal(err)
	}
	keyed, _ := keyedThrough(ctx, db, last)
	db.Close()
	if last <= keyed {
		t.Fatalf("the last checkpoint %d is keyed (through %d); the test needs it in the tail", last, keyed)
	}

	tests := []struct {
		name   string
		change string
		want   int64
	}{
		{"in the tail", "", last},
		{"keyed", fmt.Sprintf("INSERT INTO record_keys SELECT seq, kind, session_id, call_id "+
			"FROM records WHERE seq > %d", keyed), last},
		{"no keys", "DELETE FROM record_keys", last},
		{"a key row claims a checkpoint", fmt.Sprintf("INSERT INTO record_keys SELECT seq, kind, "+
			"session_id, call_id FROM records WHERE seq > %d; UPDATE record_keys "+
			"SET kind = 'checkpoint' WHERE seq = %d", keyed, last+1), last},
		{"a key row hides the last checkpoint", fmt.Sprintf("INSERT INTO record_keys SELECT seq, "+
			"kind, session_id, call_id FROM records WHERE seq > %d; UPDATE record_keys "+
			"SET kind = 'call_intent' WHERE seq = %d", keyed, last), before},
		{"no checkpoint", "DELETE FROM records WHERE kind = 'checkpoint'", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.db")
			copyFile(t, base, path)
			db := openRW(t, path)
			if tc.change != "" {
				mustExec(t, db, tc.change)
			}
			got, err := lastCheckpointSeq(ctx, db, false)
			if err != nil || got != tc.want {
				t.Fatalf("lastCheckpointSeq = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

// TestWriterKeyCatchUp: the writer catches the keys up in the commit that
// reaches each multiple of keysEvery, and a key table it cannot write
// costs no record.
func TestWriterKeyCatchUp(t *testing.T) {
	var logs bytes.Buffer
	r, path := openRecorder(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	appendN(t, r, keysEvery+10)
	db := openRW(t, path)
	ctx := context.Background()
	if n := keyRows(t, path); n != keysEvery {
		t.Fatalf("record_keys holds %d rows after %d records, want %d", n, keysEvery+10, keysEvery)
	}
	if ok, err := keysMatch(ctx, db, keysEvery); err != nil || !ok {
		t.Fatalf("the caught-up keys do not match the records: %v", err)
	}

	mustExec(t, db, `DROP TABLE record_keys`)
	appendN(t, r, keysEvery)
	head, _, err := Head(ctx, db)
	if err != nil || head != 2*keysEvery+10 {
		t.Fatalf("head = %d, %v: records were lost", head, err)
	}
	if !strings.Contains(logs.String(), "recorder key catch-up failed") {
		t.Errorf("the failed catch-up was not logged:\n%s", logs.String())
	}
	if rep := verify(t, db, VerifyOptions{}); !rep.OK() {
		t.Errorf("verify: %v", rep.Problems)
	}
}

func TestPruneDeletesKeys(t *testing.T) {
	clk := newClock()
	r, path := openRecorder(t, Options{Now: clk.Now})
	appendN(t, r, 40)
	cutoff := clk.Now()
	appendN(t, r, 10)
	r.Close()
	db := openRW(t, path)
	ctx := context.Background()
	res, err := Prune(ctx, db, PruneOptions{Before: cutoff, Now: clk.Now})
	if err != nil || res.Deleted != 40 {
		t.Fatalf("prune = %+v, %v", res, err)
	}
	var stale int
	if err := db.QueryRow(`SELECT count(*) FROM record_keys WHERE seq <= 40`).Scan(&stale); err != nil ||
		stale != 0 {
		t.Errorf("%d key rows of pruned records are left, %v", stale, err)
	}
	head, _, _ := Head(ctx, db)
	if ok, err := keysMatch(ctx, db, head); err != nil || !ok || keyRows(t, path) != 11 {
		t.Errorf("after the prune the keys do not match the 11 records left: %d rows, %v",
			keyRows(t, path), err)
	}
}

// TestReaderBesideTheWriter makes a writable reader while the guard
// writes: the reader catches the keys up, sees nothing appended after
// it was made, and the writer's next catch-up carries on from it.
func TestReaderBesideTheWriter(t *testing.T) {
	r, path := openRecorder(t, Options{})
	appendN(t, r, keysEvery+44)
	ctx := context.Background()
	db := openRW(t, path)
	rd, err := NewReader(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if n := keyRows(t, path); rd.Head() != keysEvery+44 || n != keysEvery+44 {
		t.Fatalf("reader head %d, %d key rows; want both %d", rd.Head(), n, keysEvery+44)
	}

	appendN(t, r, keysEvery)
	var seen []int64
	err = rd.SessionRecords(ctx, "sess-1", func(rec Record) error {
		seen = append(seen, rec.Seq)
		return nil
	})
	if err != nil || int64(len(seen)) != rd.Head() || seen[len(seen)-1] != rd.Head() {
		t.Errorf("the reader saw %d records up to %v, want the %d it was made with: %v",
			len(seen), seen[len(seen)-1:], rd.Head(), err)
	}
	n := keyRows(t, path)
	if n != 2*keysEvery {
		t.Errorf("the writer caught the keys up to %d rows, want %d", n, 2*keysEvery)
	}
	if ok, err := keysMatch(ctx, db, n); err != nil || !ok {
		t.Errorf("the keys do not match the records after both caught up: %v", err)
	}
}
