package recorder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// crash drops r as a killed process would: the ingester stops where it
// is, and the journal's lock and the database go without Close, so that
// nothing more is moved, signed or rotated.
func crash(t testing.TB, r *Recorder) {
	t.Helper()
	r.closeOnce.Do(func() {
		r.stopAppends()
		if r.ing != nil {
			r.ing.halt()
			r.journal.close()
		}
		r.store.close()
		r.db.Close()
	})
}

// writeJournal writes data into the journal of the database at path at
// offset off, where a process holding it would write the next frames;
// off -1 is the end of the file.
func writeJournal(t testing.TB, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(JournalPath(path), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if off < 0 {
		if off, err = f.Seek(0, io.SeekEnd); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

// frame returns the journal frame of a record, unsealed: sealAt or
// sealFrames gives it its seq and hash.
func frame(kind, session, call, body string, at time.Time) []byte {
	return appendFrame(nil, &Record{Kind: kind, SessionID: session, CallID: call,
		Body: []byte(body), At: at})
}

// sealAt returns the unsealed frames sealed to follow the frames of the
// journal of the database at path before offset off (-1: all of them).
func sealAt(t testing.TB, path string, off int64, frames []byte) []byte {
	t.Helper()
	f, err := os.Open(JournalPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr := make([]byte, journalHeaderLen)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		t.Fatal(err)
	}
	_, id, err := parseJournalHeader(hdr)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		if off, err = fileSize(f); err != nil {
			t.Fatal(err)
		}
	}
	s := newFrameScanner(f, nil, journalHeaderLen, off, 0, startHash(id))
	for {
		if _, err := s.next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	out := bytes.Clone(frames)
	sealFrames(out, s.seq, s.hash)
	return out
}

// countCalls returns how many records each call id has.
func countCalls(t testing.TB, path string) map[string]int {
	t.Helper()
	rows, err := openRW(t, path).Query(`SELECT call_id, count(*) FROM records
		WHERE call_id != '' GROUP BY call_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		got[id] = n
	}
	return got
}

func journalSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(JournalPath(path))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestJournalFrames writes frames and reads them back, and tells a write
// a crash cut short, which recovery drops, from damage, which it refuses.
func TestJournalFrames(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 0, 0, 123456789, time.UTC)
	recs := []Record{
		{At: at, Kind: KindSessionStart, SessionID: "s", Body: []byte(`{}`)},
		{At: at, Kind: KindCallIntent, SessionID: "sess-é", CallID: "c1",
			Body: []byte(`{"a":"` + strings.Repeat("x", 70000) + `"}`)},
		{At: at.Add(time.Second), Kind: KindApproval, CallID: "req", Body: []byte(`[]`)},
	}
	id := journalID{7, 7, 7}
	var good []byte
	for i := range recs {
		good = appendFrame(good, &recs[i])
	}
	seq, tip := sealFrames(good, 0, startHash(id))
	one := frame(KindCallCompletion, "s", "c2", `{"outcome":"ok"}`, at)
	sealFrames(one, seq, tip)
	flipped := bytes.Clone(one)
	flipped[len(flipped)-2] ^= 0x40
	zeroLen := append([]byte{0, 0, 0, 0, 1, 2, 3, 4}, one...)
	tests := []struct {
		name  string
		tail  []byte
		bad   bool // the scan ends in a damaged frame
		whole int  // records before it, after the three good ones
		torn  bool // and that frame may be a cut write
	}{
		{name: "whole", tail: one, whole: 1},
		{name: "whole, then the zeros the file grew with", tail: append(bytes.Clone(one),
			make([]byte, 3000)...), whole: 1},
		{name: "zeros, then data a crash left out of order",
			tail: append(make([]byte, 4096), one...), bad: true, torn: true},
		{name: "cut in a header", tail: one[:5], bad: true, torn: true},
		{name: "cut in a payload", tail: one[:len(one)-3], bad: true, torn: true},
		{name: "failing its check at the end", tail: flipped, bad: true, torn: true},
		{name: "cut, then zeros", tail: append(bytes.Clone(one[:12]), make([]byte, 5000)...),
			bad: true, torn: true},
		{name: "failing its check before a good frame", tail: append(bytes.Clone(flipped), one...),
			bad: true},
		{name: "a zero length before a good frame", tail: zeroLen, bad: true},
		{name: "a length past the limit before a good frame",
			tail: append([]byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0}, one...), bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j")
			data := append(append(journalHeader(7, id), good...), tc.tail...)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			s := newFrameScanner(f, nil, journalHeaderLen, int64(len(data)), 0,
				startHash(id))
			var got []Record
			for {
				rec, err := s.next()
				if err == io.EOF {
					if tc.bad {
						t.Fatal("the scan ended cleanly")
					}
					break
				}
				var fe *frameError
				if errors.As(err, &fe) {
					if !tc.bad || fe.tail != tc.torn {
						t.Fatalf("%v (tail %v), want bad %v, tail %v", err, fe.tail, tc.bad, tc.torn)
					}
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, rec)
			}
			if len(got) != len(recs)+tc.whole {
				t.Fatalf("read %d records, want %d", len(got), len(recs)+tc.whole)
			}
			for i, want := range recs {
				if !reflect.DeepEqual(got[i], want) {
					t.Errorf("record %d = %+v, want %+v", i, got[i], want)
				}
			}
		})
	}
}

// TestPlanJournal: where ingestion starts, from the journal's header and
// size and the position the database stored.
func TestPlanJournal(t *testing.T) {
	const h = journalHeaderLen
	idOf := func(gen uint64) journalID { return journalID{byte(gen), 0xaa} }
	hdr := func(gen uint64) []byte { return journalHeader(gen, idOf(gen)) }
	tip := frameHash{1, 2, 3}
	pos := func(gen uint64, off int64) *journalPos {
		return &journalPos{gen: gen, id: idOf(gen), next: idOf(gen + 1), ingested: off,
			seq: 9, hash: tip}
	}
	v1 := append([]byte(journalMagicV1), make([]byte, journalV1Header-8)...)
	tests := []struct {
		name    string
		hdr     []byte
		size    int64
		stored  *journalPos
		want    journalPlan
		warns   bool
		refused bool
	}{
		{name: "a new journal", size: 0, want: journalPlan{gen: 1, fresh: true}},
		{name: "a header cut short", hdr: hdr(1)[:9], size: 9,
			want: journalPlan{gen: 1, fresh: true}},
		{name: "a journal gone missing", size: 0, stored: pos(4, 900),
			want: journalPlan{gen: 5, fresh: true, lost: true}, warns: true},
		{name: "an empty journal the database never stored", hdr: hdr(3), size: h,
			want: journalPlan{gen: 3, id: idOf(3), from: h, hash: startHash(idOf(3))}},
		{name: "the stored generation", hdr: hdr(3), size: 5000, stored: pos(3, 700),
			want: journalPlan{gen: 3, id: idOf(3), from: 700, seq: 9, hash: tip}},
		{name: "the generation after the stored one", hdr: hdr(4), size: 5000,
			stored: pos(3, 700),
			want:   journalPlan{gen: 4, id: idOf(4), from: h, hash: startHash(idOf(4))}},
		{name: "shorter than the stored position", hdr: hdr(3), size: 600,
			stored: pos(3, 700), want: journalPlan{gen: 3, id: idOf(3), from: 600, seq: 9,
				hash: tip}, warns: true},
		{name: "an empty journal of an earlier version", hdr: v1, size: journalV1Header,
			stored: pos(3, 20), want: journalPlan{gen: 4, fresh: true}},
		{name: "a journal of an earlier version with records", hdr: v1, size: 5000,
			stored: pos(3, 20), refused: true},
		{name: "records the database never stored", hdr: hdr(1), size: 5000,
			refused: true},
		{name: "the stored generation with another id", size: 5000, stored: pos(3, 700),
			hdr: journalHeader(3, idOf(9)), refused: true},
		{name: "the next generation with another id", size: 5000, stored: pos(3, 700),
			hdr: journalHeader(4, idOf(9)), refused: true},
		{name: "two generations ahead", hdr: hdr(5), size: 5000, stored: pos(3, 700),
			refused: true},
		{name: "an older generation", hdr: hdr(2), size: 5000, stored: pos(3, 700),
			refused: true},
		{name: "a stored position inside the header", hdr: hdr(3), size: 5000,
			stored: pos(3, 4), refused: true},
		{name: "not a journal", hdr: []byte("SQLite format 3\x00\x10\x00\x01\x01" +
			strings.Repeat("x", 20)), size: 5000, stored: pos(3, 700), refused: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var st journalPos
			if tc.stored != nil {
				st = *tc.stored
			}
			got, err := planJournal(tc.hdr, tc.size, st, tc.stored != nil)
			if tc.refused {
				if !errors.Is(err, errForeignJournal) {
					t.Fatalf("plan = %+v, %v; want it refused", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got.warning != "") != tc.warns {
				t.Errorf("warning %q, want one: %v", got.warning, tc.warns)
			}
			if (got.stored != nil) != (tc.stored != nil) {
				t.Errorf("stored position %v, want %v", got.stored, tc.stored)
			}
			got.warning, got.stored = "", nil
			if got != tc.want {
				t.Errorf("plan = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRecoverAfterCrash appends records, some of them left only in the
// journal when the recorder is dropped without Close, with a write cut
// short at the end: Recover moves every acknowledged record into the
// database exactly once, in order, with its time, and the chain verifies.
func TestRecoverAfterCrash(t *testing.T) {
	key := newKey(t)
	clk := newClock()
	r, path := openRecorder(t, Options{SigningKey: key, CheckpointEvery: 50, Now: clk.Now})
	ctx := context.Background()
	app := func(i int) {
		t.Helper()
		if err := r.Append(ctx, KindCallIntent, "s", fmt.Sprintf("call-%d", i),
			map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 120 {
		app(i)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r.ing.halt()
	for i := 120; i < 300; i++ {
		app(i)
	}
	end := r.journal.end.Load()
	crash(t, r)
	whole := sealAt(t, path, end, frame(KindCallIntent, "s", "torn", `{"i":-1}`, clk.Now()))
	writeJournal(t, path, end, whole[:len(whole)-4])

	if n, err := Pending(path); err != nil || n != 180 {
		t.Fatalf("Pending = %d, %v; want the 180 records after the halt", n, err)
	}
	res, err := Recover(path, Options{SigningKey: key, CheckpointEvery: 50})
	if err != nil || !reflect.DeepEqual(res, RecoverResult{Ingested: 180}) {
		t.Fatalf("Recover = %+v, %v; want 180 ingested", res, err)
	}
	calls := countCalls(t, path)
	for i := range 300 {
		if n := calls[fmt.Sprintf("call-%d", i)]; n != 1 {
			t.Errorf("call-%d has %d records, want 1", i, n)
		}
	}
	if len(calls) != 300 {
		t.Errorf("%d calls in the database, want 300 (the torn one dropped)", len(calls))
	}
	db := openRW(t, path)
	rep := verify(t, db, VerifyOptions{PublicKey: pubOf(key)})
	if !rep.OK() || rep.Records != 300+rep.Checkpoints || rep.Checkpoints < 6 {
		t.Errorf("report = %+v, want 300 records chained and a checkpoint every 50", rep)
	}
	var last time.Time
	err = Records(ctx, db, 0, func(rec Record) error {
		if rec.At.Before(last) {
			t.Errorf("seq %d at %v, before the record before it (%v)", rec.Seq, rec.At, last)
		}
		last = rec.At
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if size := journalSize(t, path); size != journalHeaderLen {
		t.Errorf("the journal is %d bytes after recovery, want an empty one", size)
	}
	if res, err := Recover(path, Options{}); err != nil || !reflect.DeepEqual(res, RecoverResult{}) {
		t.Errorf("a second Recover = %+v, %v; want nothing to do", res, err)
	}
}

// TestRecoverAfterRotationCutShort: a journal of the generation after the
// one the database stored (a rotation that crashed before the database
// heard of it) is ingested from its start.
func TestRecoverAfterRotationCutShort(t *testing.T) {
	r, path := openRecorder(t, Options{})
	appendN(t, r, 5)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	db := openRW(t, path)
	st, ok, err := journalState(context.Background(), db)
	if err != nil || !ok {
		t.Fatalf("journal state %v, %v", ok, err)
	}
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	writeJournal(t, path, -1, sealAt(t, path, -1, append(frame(KindCallIntent, "s",
		"after", `{}`, at), frame(KindCallCompletion, "s", "after", `{}`, at)...)))
	// As if the database still named the generation before, whose
	// rotation had stored this journal's id as the next.
	mustExec(t, db, `UPDATE journal_state SET generation = ?, ingested = 4000,
		next_id = journal_id, journal_id = NULL`, int64(st.gen-1))
	res, err := Recover(path, Options{})
	if err != nil || res.Ingested != 2 {
		t.Fatalf("Recover = %+v, %v; want both records ingested", res, err)
	}
	if calls := countCalls(t, path); calls["after"] != 2 {
		t.Errorf("calls = %v, want the two records of call after", calls)
	}
	if rep := verify(t, db, VerifyOptions{}); !rep.OK() {
		t.Errorf("verify: %v", rep.Problems)
	}
}

// TestJournalRefusals: Open refuses a journal that does not go with the
// database, and one damaged before its end, after moving in the records
// before the damage, and leaves the journal as it is.
func TestJournalRefusals(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	good := frame(KindCallIntent, "s", "x", `{}`, at)
	tests := []struct {
		name   string
		change func(t *testing.T, path string)
		want   error
		head   int64
	}{
		{"damaged before its end", func(t *testing.T, path string) {
			three := sealAt(t, path, -1, bytes.Repeat(good, 3))
			three[2*len(good)-1] ^= 1 // the middle frame's last byte
			writeJournal(t, path, -1, three)
		}, errCorrupt, 3},
		{"a generation the database never took", func(t *testing.T, path string) {
			hdr := journalHeader(99, journalID{9})
			sealed := bytes.Clone(good)
			sealFrames(sealed, 0, startHash(journalID{9}))
			if err := os.WriteFile(JournalPath(path), append(hdr, sealed...), 0o600); err != nil {
				t.Fatal(err)
			}
		}, errForeignJournal, 3},
		{"records beside a database that never took any", func(t *testing.T, path string) {
			writeJournal(t, path, -1, sealAt(t, path, -1, good))
			mustExec(t, openRW(t, path), `DELETE FROM journal_state`)
		}, errForeignJournal, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, path := openRecorder(t, Options{})
			appendN(t, r, 3)
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			tc.change(t, path)
			before, err := os.ReadFile(JournalPath(path))
			if err != nil {
				t.Fatal(err)
			}
			if r, err := Open(path, Options{}); !errors.Is(err, tc.want) {
				if err == nil {
					r.Close()
				}
				t.Fatalf("Open = %v, want %v", err, tc.want)
			}
			res, err := Recover(path, Options{})
			if err != nil || len(res.Problems) != 1 ||
				!strings.Contains(res.Problems[0], JournalPath(path)) ||
				!strings.HasPrefix(res.Problems[0], tc.want.Error()) {
				t.Errorf("Recover = %+v, %v; want a problem naming the journal, %v",
					res, err, tc.want)
			}
			after, err := os.ReadFile(JournalPath(path))
			if err != nil || !bytes.Equal(before, after) {
				t.Errorf("the refused journal changed (%v)", err)
			}
			db := openRW(t, path)
			if head, _, _ := Head(context.Background(), db); head != tc.head {
				t.Errorf("head = %d, want %d", head, tc.head)
			}
			if rep := verify(t, db, VerifyOptions{}); !rep.OK() {
				t.Errorf("verify: %v", rep.Problems)
			}
		})
	}
}

// TestMissingJournal: a database whose journal is gone is a problem
// Recover reports, and opens, with a warning in the log, since nothing
// tells what the journal held.
func TestMissingJournal(t *testing.T) {
	r, path := openRecorder(t, Options{})
	appendN(t, r, 3)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(JournalPath(path)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"missing", "empty"} {
		res, err := Recover(path, Options{})
		if err != nil || len(res.Problems) != 1 ||
			!strings.Contains(res.Problems[0], JournalPath(path)) ||
			!strings.Contains(res.Problems[0], "lost") {
			t.Errorf("%s: Recover = %+v, %v; want the loss reported", name, res, err)
		}
		if name == "missing" {
			if err := os.WriteFile(JournalPath(path), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	var logs syncBuffer
	r, err := Open(path, Options{Logger: slogTo(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, r, 2)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "the journal was missing or empty") {
		t.Errorf("no warning in the log:\n%s", logs.String())
	}
	if rep := verify(t, openRW(t, path), VerifyOptions{}); !rep.OK() || rep.Records != 5 {
		t.Errorf("report = %+v, want 5 records", rep)
	}
}

// TestSecondRecorderCommitsDirectly opens a second recorder beside one
// that holds the journal, as the approvals command does beside a serving
// guard: it commits straight to the database, both chain into one
// transcript, and once the first closes the second takes the journal
// over.
func TestSecondRecorderCommitsDirectly(t *testing.T) {
	clk := newClock()
	first, path := openRecorder(t, Options{})
	second, err := Open(path, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	if first.journal == nil || second.journal != nil {
		t.Fatalf("journals: first %v, second %v; want the first alone to hold it",
			first.journal != nil, second.journal != nil)
	}
	if res, err := Recover(path, Options{}); err != nil || !res.Serving {
		t.Errorf("Recover beside a holder = %+v, %v; want Serving", res, err)
	}
	ctx := context.Background()
	for i := range 20 {
		r := []*Recorder{first, second}[i%2]
		if err := r.Append(ctx, KindCallIntent, "s", fmt.Sprint("call-", i), map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	clk.Set(clk.Now().Add(2 * journalRetry))
	if err := second.Append(ctx, KindCallIntent, "s", "call-20", map[string]int{}); err != nil {
		t.Fatal(err)
	}
	if second.journal == nil {
		t.Error("the second recorder did not take the journal over")
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	calls := countCalls(t, path)
	if len(calls) != 21 {
		t.Errorf("%d calls recorded, want 21", len(calls))
	}
	if rep := verify(t, openRW(t, path), VerifyOptions{}); !rep.OK() {
		t.Errorf("verify: %v", rep.Problems)
	}
}

// TestIngestionFailureKeepsRecords makes the database refuse records for
// a while: appends still commit to the journal, Sync reports why the
// records are not in the database, and they go in once it takes them.
func TestIngestionFailureKeepsRecords(t *testing.T) {
	var logs syncBuffer
	r, path := openRecorder(t, Options{Logger: slogTo(&logs)})
	appendN(t, r, 2)
	db := openRW(t, path)
	mustExec(t, db, `ALTER TABLE records RENAME TO records_away`)
	ctx := context.Background()
	for i := range 5 {
		if err := r.Append(ctx, KindCallIntent, "s", fmt.Sprint("late-", i), map[string]int{}); err != nil {
			t.Fatalf("append while the database refuses: %v", err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := r.Sync(short); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Errorf("Sync = %v, want the ingestion failure", err)
	}
	mustExec(t, db, `ALTER TABLE records_away RENAME TO records`)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if calls := countCalls(t, path); len(calls) != 6 {
		t.Errorf("calls = %v, want call-0 and the 5 late ones", calls)
	}
	if rep := verify(t, db, VerifyOptions{}); !rep.OK() || rep.Records != 7 {
		t.Errorf("report = %+v, want 7 records", rep)
	}
	if !strings.Contains(logs.String(), "recorder ingestion failed") {
		t.Errorf("the failure was not logged:\n%s", logs.String())
	}
}

// TestJournalRotates: a journal past rotateAt whose records are all in
// the database is replaced by an empty one of the next generation, and
// the records keep going in.
func TestJournalRotates(t *testing.T) {
	r, path := openRecorder(t, Options{})
	ctx := context.Background()
	gen := r.ing.j.gen
	body := map[string]string{"pad": strings.Repeat("r", 2000)}
	const n = 3 * rotateAt / 2 / 2000
	for i := range n {
		if err := r.Append(ctx, KindCallIntent, "s", fmt.Sprint("call-", i), body); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			if err := r.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r.ing.halt() // lets the pass that ended the Sync finish, rotation and all
	if r.ing.j.gen != gen+1 {
		t.Errorf("generation %d after writing %d bytes, want %d", r.ing.j.gen, n*2000, gen+1)
	}
	st, _, err := journalState(ctx, openRW(t, path))
	if err != nil || st.gen != r.ing.j.gen {
		t.Errorf("stored generation %d (%v), want %d", st.gen, err, r.ing.j.gen)
	}
	if size := journalSize(t, path); size >= rotateAt {
		t.Errorf("the journal is %d bytes after the rotation", size)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if calls := countCalls(t, path); len(calls) != n {
		t.Errorf("%d calls in the database, want %d", len(calls), n)
	}
}

// syncBuffer is a buffer for logs written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
