package recorder

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// tamperFrames returns four sealed frames, of calls t-1 to t-4, that
// follow the empty journal of the closed transcript at path, and the
// offset of each.
func tamperFrames(t *testing.T, path string) ([]byte, []int) {
	t.Helper()
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var raw []byte
	var offs []int
	for i := 1; i <= 4; i++ {
		offs = append(offs, len(raw))
		raw = append(raw, frame(KindCallIntent, "s", fmt.Sprint("t-", i), `{"n":1}`, at)...)
	}
	return sealAt(t, path, -1, raw), offs
}

// TestJournalTampering: frames swapped, duplicated, dropped or edited
// with a CRC made to fit, a header whose generation was bumped, and a
// journal copied from another database are refused, loudly, and none of
// their records is chained.
func TestJournalTampering(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, path string, frames []byte, offs []int)
		want   string
	}{
		{"two frames swapped", func(t *testing.T, path string, fr []byte, o []int) {
			n := o[1]
			swapped := append(append(bytes.Clone(fr[n:2*n]), fr[:n]...), fr[2*n:]...)
			writeJournal(t, path, -1, swapped)
		}, "frame 2 where frame 1 is due"},
		{"a frame duplicated", func(t *testing.T, path string, fr []byte, o []int) {
			dup := append(append(bytes.Clone(fr[:o[2]]), fr[o[1]:o[2]]...), fr[o[2]:]...)
			writeJournal(t, path, -1, dup)
		}, "frame 2 where frame 3 is due"},
		{"a frame dropped in the middle", func(t *testing.T, path string, fr []byte, o []int) {
			writeJournal(t, path, -1, append(bytes.Clone(fr[:o[1]]), fr[o[2]:]...))
		}, "frame 3 where frame 2 is due"},
		{"a body edited, its CRC fixed", func(t *testing.T, path string, fr []byte, o []int) {
			ed := bytes.Clone(fr)
			f := ed[o[1]:o[2]]
			f[len(f)-2] = '2' // {"n":1} becomes {"n":2}
			binary.LittleEndian.PutUint32(f[4:], frameCRC(f[:frameHeaderLen],
				f[frameHeaderLen:]))
			writeJournal(t, path, -1, ed)
		}, "does not chain"},
		{"the generation bumped", func(t *testing.T, path string, fr []byte, _ []int) {
			writeJournal(t, path, -1, fr)
			hdr := readHeader(t, path)
			gen, id, err := parseJournalHeader(hdr)
			if err != nil {
				t.Fatal(err)
			}
			writeJournal(t, path, 0, journalHeader(gen+1, id))
		}, "not the journal the database made"},
		{"a journal copied from another database", func(t *testing.T, path string,
			_ []byte, _ []int) {
			other := closedTranscript(t)
			fr, _ := tamperFrames(t, other)
			writeJournal(t, other, -1, fr)
			data, err := os.ReadFile(JournalPath(other))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(JournalPath(path), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "its id differs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := closedTranscript(t)
			ctx := context.Background()
			before, _, err := Head(ctx, openRW(t, path))
			if err != nil {
				t.Fatal(err)
			}
			frames, offs := tamperFrames(t, path)
			tc.change(t, path, frames, offs)
			journal, err := os.ReadFile(JournalPath(path))
			if err != nil {
				t.Fatal(err)
			}

			res, err := Recover(path, Options{})
			if err != nil || len(res.Problems) != 1 ||
				!strings.Contains(res.Problems[0], tc.want) {
				t.Fatalf("Recover = %+v, %v; want a problem saying %q", res, err, tc.want)
			}
			r, err := Open(path, Options{})
			if err == nil {
				r.Close()
				t.Fatal("Open took the tampered journal")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v, want %q", err, tc.want)
			}
			after, err := os.ReadFile(JournalPath(path))
			if err != nil || !bytes.Equal(journal, after) {
				t.Errorf("the refused journal changed (%v)", err)
			}
			if head, _, _ := Head(ctx, openRW(t, path)); head != before {
				t.Errorf("head = %d, want %d: records were chained", head, before)
			}
			if calls := countCalls(t, path); len(calls) != 0 {
				t.Errorf("calls chained: %v", calls)
			}
		})
	}
}

// readHeader returns the header of the journal of the database at path.
func readHeader(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(JournalPath(path))
	if err != nil {
		t.Fatal(err)
	}
	return b[:journalHeaderLen]
}

// TestJournalResumesTheHashCheck: a journal ingested in part is checked
// on from the stored hash; an untouched one goes in whole.
func TestJournalResumesTheHashCheck(t *testing.T) {
	r, path := openRecorder(t, Options{})
	ctx := context.Background()
	for i := range 10 {
		if err := r.Append(ctx, KindCallIntent, "s", fmt.Sprint("c-", i),
			map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r.ing.halt()
	for i := 10; i < 15; i++ {
		if err := r.Append(ctx, KindCallIntent, "s", fmt.Sprint("c-", i),
			map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	crash(t, r)
	st, _, err := journalState(ctx, openRW(t, path))
	if err != nil || st.seq != 10 {
		t.Fatalf("stored frame seq %d (%v), want 10", st.seq, err)
	}
	res, err := Recover(path, Options{})
	if err != nil || res.Ingested != 5 || len(res.Problems) != 0 {
		t.Fatalf("Recover = %+v, %v; want 5 ingested", res, err)
	}
	if calls := countCalls(t, path); len(calls) != 15 {
		t.Errorf("%d calls in the database, want 15", len(calls))
	}
}
