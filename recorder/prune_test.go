package recorder

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"
)

// prunable writes 10 records on day 1 and 10 on day 2, a checkpoint
// after each ten, and returns the database and the start of day 2.
func prunable(t *testing.T) (path string, key ed25519.PrivateKey, day2 time.Time) {
	t.Helper()
	k := newKey(t)
	clk := newClock()
	r, path := openRecorder(t, Options{SigningKey: k, CheckpointEvery: 10, Now: clk.Now})
	appendN(t, r, 10) // seq 1-10, checkpoint 11
	day2 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	clk.Set(day2)
	appendN(t, r, 10) // seq 12-21, checkpoint 22
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	return path, k, day2
}

func TestPruneKeepsTheChainVerifiable(t *testing.T) {
	path, key, day2 := prunable(t)
	db := openRW(t, path)
	ctx := context.Background()

	res, err := Prune(ctx, db, PruneOptions{Before: day2, SigningKey: key, PublicKey: pubOf(key)})
	if err != nil {
		t.Fatal(err)
	}
	// Day 1 is seq 1-11 (ten records and their checkpoint).
	if res.Deleted != 11 || res.FirstKept != 12 || res.PruneSeq != 23 {
		t.Errorf("prune = %+v, want 11 deleted, first kept 12, prune record 23", res)
	}
	rep := verify(t, db, VerifyOptions{PublicKey: pubOf(key)})
	if !rep.OK() {
		t.Fatalf("after prune: %v", rep.Problems)
	}
	if rep.FirstSeq != 12 || rep.PrunedThrough != 11 || rep.SignedThrough != 23 {
		t.Errorf("report = %+v, want first seq 12, pruned through 11, signed through 23", rep)
	}

	// Deleting more of the start afterwards is detected.
	mustExec(t, db, `DELETE FROM records WHERE seq = 12`)
	rep = verify(t, db, VerifyOptions{PublicKey: pubOf(key)})
	if rep.OK() || rep.Problems[0].Type != ProblemDeleted || rep.Problems[0].Seq != 12 {
		t.Fatalf("problems = %v, want seq 12 deleted", rep.Problems)
	}
	t.Logf("after deleting beyond the prune: %v", rep.Problems[0])
}

func TestPruneTwiceAndEverything(t *testing.T) {
	path, key, day2 := prunable(t)
	db := openRW(t, path)
	ctx := context.Background()
	later := func() time.Time { return day2.Add(time.Hour) }
	if _, err := Prune(ctx, db, PruneOptions{Before: day2, SigningKey: key, Now: later}); err != nil {
		t.Fatal(err)
	}
	// Everything is older than next year: all goes but the new prune
	// record and its checkpoint, and the chain still verifies.
	res, err := Prune(ctx, db, PruneOptions{Before: day2.AddDate(1, 0, 0), SigningKey: key,
		Now: func() time.Time { return day2.AddDate(1, 0, 1) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstKept != res.PruneSeq {
		t.Errorf("prune = %+v, want the prune record to be the first kept", res)
	}
	rep := verify(t, db, VerifyOptions{PublicKey: pubOf(key)})
	if !rep.OK() || rep.Records != 2 {
		t.Fatalf("report = %+v, want 2 records and no problem", rep)
	}
	// Nothing older than the cut-off: nothing to do.
	res, err = Prune(ctx, db, PruneOptions{Before: day2})
	if err != nil || res.Deleted != 0 || res.PruneSeq != 0 {
		t.Errorf("prune = %+v, %v; want nothing done", res, err)
	}
	// And the recorder carries on from there.
	r, err := Open(path, Options{SigningKey: key})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, r, 3)
	r.Close()
	if rep := verify(t, db, VerifyOptions{PublicKey: pubOf(key)}); !rep.OK() {
		t.Fatalf("after appending: %v", rep.Problems)
	}
}

func TestPruneRefusesATamperedTranscript(t *testing.T) {
	path, _, day2 := prunable(t)
	db := openRW(t, path)
	mustExec(t, db, `UPDATE records SET body = '{}' WHERE seq = 4`)
	_, err := Prune(context.Background(), db, PruneOptions{Before: day2})
	if !errors.Is(err, ErrUnverified) {
		t.Fatalf("Prune = %v, want ErrUnverified", err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM records`).Scan(&n); err != nil || n != 22 {
		t.Errorf("records = %d (%v), want all 22 kept", n, err)
	}
}
