package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestConcurrentAppendsShareCommits holds the first commit open until the
// other callers have queued, then checks that they are committed in
// batches of MaxBatch, each caller learning of its own commit.
func TestConcurrentAppendsShareCommits(t *testing.T) {
	const callers, maxBatch = 9, 4
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	var r *Recorder
	r, path := openRecorder(t, Options{
		MaxBatch: maxBatch, SigningKey: newKey(t), CheckpointEvery: 1000,
		OnCommit: func(n int, _ time.Duration, err error) {
			if err != nil {
				t.Errorf("commit of %d records: %v", n, err)
			}
			mu.Lock()
			sizes = append(sizes, n)
			first := len(sizes) == 1
			mu.Unlock()
			if first {
				<-release
			}
		},
	})
	ctx := context.Background()
	errs := make(chan error, callers)
	go func() { errs <- r.Append(ctx, KindCallIntent, "s", "first", map[string]int{"i": 0}) }()
	waitQueued(t, r, 0, true)
	for i := 1; i < callers; i++ {
		go func() {
			errs <- r.Append(ctx, KindCallIntent, "s", fmt.Sprint("call-", i), map[string]int{"i": i})
		}()
	}
	waitQueued(t, r, callers-1, true)
	close(release)
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sizes) != "[1 4 4]" {
		t.Errorf("commits held %v records, want [1 4 4]", sizes)
	}
	rep := verify(t, openRW(t, path), VerifyOptions{})
	if !rep.OK() || rep.Records != callers+1 {
		t.Errorf("report = %+v, want %d records and the closing checkpoint", rep, callers+1)
	}
}

// waitQueued waits until n records wait in r's queue behind a leader.
func waitQueued(t *testing.T, r *Recorder, n int, leading bool) {
	t.Helper()
	for {
		r.mu.Lock()
		got, lead := len(r.queue), r.leading
		r.mu.Unlock()
		if got == n && lead == leading {
			return
		}
		if got > n {
			t.Fatalf("%d records queued, want %d", got, n)
		}
		runtime.Gosched()
	}
}

// TestAnotherWriterMovesTheHead has a second recorder, as another process
// would, append to the same file between two commits of the first, whose
// head in memory is then stale: its next commit must chain onto the
// records the other one wrote.
func TestAnotherWriterMovesTheHead(t *testing.T) {
	r1, path := openRecorder(t, Options{})
	appendN(t, r1, 3)
	r2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, r2, 2)
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	appendN(t, r1, 2)
	r1.Close()

	rep := verify(t, openRW(t, path), VerifyOptions{})
	if !rep.OK() || rep.Records != 7 {
		t.Errorf("report = %+v, want 7 chained records", rep)
	}
}

// TestPruneWhileRecording prunes through another handle while the
// recorder runs; the recorder's next record follows the prune record.
func TestPruneWhileRecording(t *testing.T) {
	key := newKey(t)
	clk := newClock()
	r, path := openRecorder(t, Options{SigningKey: key, Now: clk.Now})
	appendN(t, r, 4)
	cut := clk.Now()
	clk.Set(cut.Add(time.Hour))
	appendN(t, r, 2)
	res, err := Prune(context.Background(), openRW(t, path), PruneOptions{
		Before: cut, SigningKey: key, PublicKey: pubOf(key), Now: clk.Now,
	})
	if err != nil || res.Deleted != 4 {
		t.Fatalf("prune: %+v, %v", res, err)
	}
	appendN(t, r, 2)
	r.Close()
	rep := verify(t, openRW(t, path), VerifyOptions{PublicKey: pubOf(key)})
	if !rep.OK() {
		t.Errorf("the chain does not verify after a prune under the recorder: %v", rep.Problems)
	}
}

// TestDeletedHeadShowsAsAGap deletes the last record behind the
// recorder's back: the recorder keeps chaining from the record it wrote,
// so verification reports the deletion instead of a chain that silently
// skips it.
func TestDeletedHeadShowsAsAGap(t *testing.T) {
	r, path := openRecorder(t, Options{})
	appendN(t, r, 3)
	mustExec(t, openRW(t, path), `DELETE FROM records WHERE seq = 3`)
	appendN(t, r, 1)
	r.Close()
	rep := verify(t, openRW(t, path), VerifyOptions{})
	if rep.OK() || rep.Problems[0].Type != "deleted" || rep.Problems[0].Seq != 3 {
		t.Errorf("problems = %+v, want record 3 reported deleted", rep.Problems)
	}
}

// TestAppendAfterClose refuses records once the recorder is closed, and
// closing twice is harmless.
func TestAppendAfterClose(t *testing.T) {
	r, _ := openRecorder(t, Options{})
	appendN(t, r, 1)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	err := r.Append(context.Background(), KindCallIntent, "s", "c", map[string]int{})
	if !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestRawBodies stores a json.RawMessage body as it is when compact, and
// compacts or refuses it otherwise.
func TestRawBodies(t *testing.T) {
	tests := []struct {
		name, body, want string
		fails            bool
	}{
		{name: "compact", body: `{"a":"x y","b":[1,2]}`, want: `{"a":"x y","b":[1,2]}`},
		{name: "escaped quote", body: `{"a":"say \" hi"}`, want: `{"a":"say \" hi"}`},
		{name: "spaced", body: "{\"a\": [1, 2]}\n", want: `{"a":[1,2]}`},
		{name: "invalid", body: `{"a":`, fails: true},
	}
	r, path := openRecorder(t, Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Append(context.Background(), KindCallIntent, "s", tc.name,
				json.RawMessage(tc.body))
			if tc.fails {
				if err == nil {
					t.Fatal("invalid JSON was stored")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			var got string
			err = openRW(t, path).QueryRow(`SELECT body FROM records
				WHERE call_id = ?`, tc.name).Scan(&got)
			if err != nil || got != tc.want {
				t.Errorf("stored %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

// TestPanickingCommitPassesTheLeadOn panics in the first commit's
// OnCommit: the leader's caller sees the panic, and the next Append still
// commits instead of waiting behind a leader that is gone.
func TestPanickingCommitPassesTheLeadOn(t *testing.T) {
	var once sync.Once
	r, _ := openRecorder(t, Options{OnCommit: func(int, time.Duration, error) {
		once.Do(func() { panic("boom") })
	}})
	ctx := context.Background()
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic in OnCommit was lost")
			}
		}()
		r.Append(ctx, KindCallIntent, "s", "c1", map[string]int{})
	}()
	done := make(chan error, 1)
	go func() { done <- r.Append(ctx, KindCallIntent, "s", "c2", map[string]int{}) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the next Append waits for a leader that is gone")
	}
}
