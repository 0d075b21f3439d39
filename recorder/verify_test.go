package recorder

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func mustJSON(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyPassesUntouched(t *testing.T) {
	key := newKey(t)
	r, path := openRecorder(t, Options{SigningKey: key, CheckpointEvery: 50, Now: newClock().Now})

	// Many writers at once, so that batches share commits.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 60; i++ {
				call := fmt.Sprintf("g%d-%d", g, i)
				err := r.Append(context.Background(), KindCallIntent, "s", call, map[string]int{"i": i})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	db := openRW(t, path)
	rep := verify(t, db, VerifyOptions{PublicKey: pubOf(key)})
	if !rep.OK() {
		t.Fatalf("untouched transcript does not verify: %v", rep.Problems)
	}
	if rep.Records != 480+rep.Checkpoints || rep.FirstSeq != 1 || rep.LastSeq != rep.Records {
		t.Errorf("report = %+v, want 480 records plus checkpoints from seq 1", rep)
	}
	// At least one checkpoint per 50 records, and the closing one signs
	// the last record before it.
	if rep.Checkpoints < 480/50 {
		t.Errorf("checkpoints = %d, want at least %d", rep.Checkpoints, 480/50)
	}
	if rep.SignedThrough != rep.LastSeq-1 {
		t.Errorf("signed through %d, want %d (the record before the closing checkpoint)",
			rep.SignedThrough, rep.LastSeq-1)
	}
	if !rep.TrustedKey || len(rep.KeyChanges) != 0 {
		t.Errorf("trusted = %v, key changes = %v", rep.TrustedKey, rep.KeyChanges)
	}
}

func TestCheckpointCadence(t *testing.T) {
	key := newKey(t)
	r, path := openRecorder(t, Options{SigningKey: key, CheckpointEvery: 10, Now: newClock().Now})
	appendN(t, r, 25)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	db := openRW(t, path)
	var seqs []int64
	err := Records(context.Background(), db, 0, func(rec Record) error {
		if rec.Kind == KindCheckpoint {
			seqs = append(seqs, rec.Seq)
			c, err := ParseCheckpoint(rec.Body)
			if err != nil {
				return err
			}
			if c.UptoSeq != rec.Seq-1 || !c.Check(pubOf(key)) {
				t.Errorf("checkpoint %d = %+v, want a valid signature over seq %d", rec.Seq, c, rec.Seq-1)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// One commit per record: checkpoints after records 10 and 20 (seq 11
	// and 22), and the closing one after record 25 (seq 28).
	if fmt.Sprint(seqs) != "[11 22 28]" {
		t.Errorf("checkpoints at %v, want [11 22 28]", seqs)
	}
}

func TestNoKeyNoCheckpoints(t *testing.T) {
	r, path := openRecorder(t, Options{CheckpointEvery: 2})
	appendN(t, r, 5)
	r.Close()
	rep := verify(t, openRW(t, path), VerifyOptions{})
	if !rep.OK() || rep.Checkpoints != 0 || rep.Records != 5 {
		t.Errorf("report = %+v, want 5 records, no checkpoint, no problem", rep)
	}
}

func TestVerifyNamesTheFirstTamperedRecord(t *testing.T) {
	other := newKey(t)
	tests := []struct {
		name   string
		tamper func(t *testing.T, db *sql.DB)
		trust  bool // verify against the recorder's key
		seq    int64
		kind   string
		typ    string
	}{
		{
			name: "body edited",
			tamper: func(t *testing.T, db *sql.DB) {
				mustExec(t, db, `UPDATE records SET body = '{"i":7,"tool":"run_shell"}' WHERE seq = 8`)
			},
			seq: 8, kind: KindCallIntent, typ: ProblemEdited,
		},
		{
			name: "time edited",
			tamper: func(t *testing.T, db *sql.DB) {
				mustExec(t, db, `UPDATE records SET at = '2020-01-01T00:00:00Z' WHERE seq = 5`)
			},
			seq: 5, kind: KindCallCompletion, typ: ProblemEdited,
		},
		{
			name: "kind edited",
			tamper: func(t *testing.T, db *sql.DB) {
				mustExec(t, db, `UPDATE records SET kind = 'session_end' WHERE seq = 3`)
			},
			seq: 3, kind: KindSessionEnd, typ: ProblemEdited,
		},
		{
			name: "record deleted",
			tamper: func(t *testing.T, db *sql.DB) {
				mustExec(t, db, `DELETE FROM records WHERE seq = 6`)
			},
			seq: 6, typ: ProblemDeleted,
		},
		{
			name: "first record deleted",
			tamper: func(t *testing.T, db *sql.DB) {
				mustExec(t, db, `DELETE FROM records WHERE seq <= 2`)
			},
			seq: 1, typ: ProblemDeleted,
		},
		{
			name: "two records swapped",
			tamper: func(t *testing.T, db *sql.DB) {
				swap(t, db, 4, 9)
			},
			seq: 4, kind: KindCallCompletion, typ: ProblemReordered,
		},
		{
			name: "neighbours swapped",
			tamper: func(t *testing.T, db *sql.DB) {
				swap(t, db, 6, 7)
			},
			seq: 6, kind: KindCallCompletion, typ: ProblemReordered,
		},
		{
			name: "edit with a fresh hash",
			tamper: func(t *testing.T, db *sql.DB) {
				var rec Record
				err := Records(context.Background(), db, 0, func(r Record) error {
					if r.Seq == 5 {
						rec = r
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				rec.Body = json.RawMessage(`{"i":4,"tool":"innocent"}`)
				mustExec(t, db, `UPDATE records SET body = ?, hash = ? WHERE seq = 5`,
					string(rec.Body), Hash(rec))
			},
			seq: 6, kind: KindCallIntent, typ: ProblemBrokenLink,
		},
		{
			name: "line break in an id, rehashed",
			tamper: func(t *testing.T, db *sql.DB) {
				mustExec(t, db, `UPDATE records SET call_id = call_id || char(10) WHERE seq = 4`)
				rechain(t, db, 4, nil)
			},
			seq: 4, kind: KindCallIntent, typ: ProblemEdited,
		},
		{
			name: "edit with the whole chain rehashed",
			tamper: func(t *testing.T, db *sql.DB) {
				mustExec(t, db, `UPDATE records SET body = '{"i":3}' WHERE seq = 3`)
				rechain(t, db, 3, nil)
			},
			seq: 11, kind: KindCheckpoint, typ: ProblemBadCheckpoint,
		},
		{
			name: "edit rehashed and re-signed with another key",
			tamper: func(t *testing.T, db *sql.DB) {
				mustExec(t, db, `UPDATE records SET body = '{"i":3}' WHERE seq = 3`)
				rechain(t, db, 3, other)
			},
			trust: true,
			seq:   11, kind: KindCheckpoint, typ: ProblemUnknownKey,
		},
		{
			name: "checkpoint signature replaced",
			tamper: func(t *testing.T, db *sql.DB) {
				var body string
				if err := db.QueryRow(`SELECT body FROM records WHERE seq = 11`).Scan(&body); err != nil {
					t.Fatal(err)
				}
				c, err := ParseCheckpoint([]byte(body))
				if err != nil {
					t.Fatal(err)
				}
				c.Signature = strings.Repeat("ab", 64)
				mustExec(t, db, `UPDATE records SET body = ? WHERE seq = 11`, string(mustJSON(t, c)))
				rechain(t, db, 11, nil)
			},
			seq: 11, kind: KindCheckpoint, typ: ProblemBadSignature,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := newKey(t)
			r, path := openRecorder(t, Options{SigningKey: key, CheckpointEvery: 10, Now: newClock().Now})
			appendN(t, r, 30)
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			db := openRW(t, path)
			if rep := verify(t, db, VerifyOptions{PublicKey: pubOf(key)}); !rep.OK() {
				t.Fatalf("before tampering: %v", rep.Problems)
			}

			tt.tamper(t, db)
			opts := VerifyOptions{}
			if tt.trust {
				opts.PublicKey = pubOf(key)
			}
			rep := verify(t, db, opts)
			if rep.OK() {
				t.Fatal("tampered transcript verifies")
			}
			got := rep.Problems[0]
			t.Logf("first problem: %v", got)
			if got.Seq != tt.seq || got.Kind != tt.kind || got.Type != tt.typ {
				t.Errorf("first problem = %v\nwant seq %d (%s) %s", got, tt.seq, tt.kind, tt.typ)
			}
		})
	}
}

// swap exchanges the seq of two records, as a reordering would.
func swap(t *testing.T, db *sql.DB, a, b int64) {
	t.Helper()
	mustExec(t, db, `UPDATE records SET seq = -1 WHERE seq = ?`, a)
	mustExec(t, db, `UPDATE records SET seq = ? WHERE seq = ?`, a, b)
	mustExec(t, db, `UPDATE records SET seq = ? WHERE seq = -1`, b)
}

func TestVerifyReportsKeyChanges(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	path := t.TempDir() + "/t.db"
	for _, k := range []ed25519.PrivateKey{k1, k2} {
		r, err := Open(path, Options{SigningKey: k, CheckpointEvery: 3})
		if err != nil {
			t.Fatal(err)
		}
		appendN(t, r, 4)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	db := openRW(t, path)
	rep := verify(t, db, VerifyOptions{})
	if !rep.OK() || len(rep.KeyChanges) != 1 || rep.TrustedKey {
		t.Fatalf("report = %+v, want one key change and no problem", rep)
	}
	// Against the first key, the second key's checkpoints are foreign.
	rep = verify(t, db, VerifyOptions{PublicKey: pubOf(k1)})
	if rep.OK() || rep.Problems[0].Type != ProblemUnknownKey {
		t.Errorf("problems = %v, want unknown_key", rep.Problems)
	}
}

func TestOpenRefusesABrokenTail(t *testing.T) {
	// Without a key nothing signs the records, as after a crash before
	// the first checkpoint.
	r, path := openRecorder(t, Options{})
	appendN(t, r, 5)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	db := openRW(t, path)
	mustExec(t, db, `UPDATE records SET body = '{"edited":true}' WHERE seq = 3`)
	db.Close()

	_, err := Open(path, Options{SigningKey: newKey(t)})
	if err == nil || !strings.Contains(err.Error(), "seq 3") {
		t.Fatalf("Open = %v, want a refusal naming seq 3", err)
	}
}

func TestAppendRefusesLineBreaks(t *testing.T) {
	r, _ := openRecorder(t, Options{})
	for _, ids := range [][3]string{
		{KindCallIntent + "\n", "s", "c"},
		{KindCallIntent, "s\r", "c"},
		{KindCallIntent, "s", "c\nd"},
	} {
		if err := r.Append(context.Background(), ids[0], ids[1], ids[2], 1); err == nil {
			t.Errorf("Append(%q) accepted a line break", ids)
		}
	}
}
