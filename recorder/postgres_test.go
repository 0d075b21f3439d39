package recorder

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mcp-guard/mcp-guard/internal/pgtest"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashHelperEnv); path != "" {
		crashHelper(path) // never returns
	}
	pgtest.Main(m)
}

// pgTranscript is an empty PostgreSQL database for one test.
type pgTranscript struct {
	t  testing.TB
	db *pgtest.DB
}

func newPGTranscript(t testing.TB) *pgTranscript {
	t.Helper()
	return &pgTranscript{t: t, db: pgtest.Start(t).NewDatabase(t, "")}
}

// open opens a recorder on a pool of its own, as a replica would; it is
// closed at cleanup unless the test closed it.
func (p *pgTranscript) open(opts Options) *Recorder {
	p.t.Helper()
	pool, err := pgxpool.New(context.Background(), p.db.DSN())
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(pool.Close)
	r, err := OpenPostgres(context.Background(), pool, opts)
	if err != nil {
		p.t.Fatalf("OpenPostgres: %v", err)
	}
	p.t.Cleanup(func() { r.Close() })
	return r
}

// reader opens the transcript as the audit commands do.
func (p *pgTranscript) reader(readOnly bool) *sql.DB {
	p.t.Helper()
	db, err := OpenPostgresDB(context.Background(), p.db.DSN(), readOnly)
	if err != nil {
		p.t.Fatalf("OpenPostgresDB: %v", err)
	}
	p.t.Cleanup(func() { db.Close() })
	return db
}

func TestRebind(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"placeholders", `SELECT a FROM t WHERE x = ? AND y <= ?`,
			`SELECT a FROM t WHERE x = $1 AND y <= $2`},
		{"quoted question marks stay", `SELECT '?', "a?b" FROM t WHERE x = ?`,
			`SELECT '?', "a?b" FROM t WHERE x = $1`},
		{"doubled quotes", `SELECT 'it''s ?' WHERE x = ?`, `SELECT 'it''s ?' WHERE x = $1`},
		{"index hint dropped", "SELECT * FROM records\n\tINDEXED BY records_call WHERE call_id = ?",
			"SELECT * FROM records WHERE call_id = $1"},
		{"nothing to do", `SELECT 1`, `SELECT 1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := rebind(tc.in); got != tc.want {
				t.Fatalf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestPostgresMatchesSQLite writes the same session into both stores with
// the same clock: the records, their hashes and every reader agree.
func TestPostgresMatchesSQLite(t *testing.T) {
	key := newKey(t)
	write := func(r *Recorder) {
		appendN(t, r, 9)
		ctx := context.Background()
		if err := r.Append(ctx, KindApproval, "", "call-1",
			map[string]any{"request_id": "apr-1", "event": "approval_decided"}); err != nil {
			t.Fatal(err)
		}
		if err := r.Append(ctx, KindSessionEnd, "sess-1", "", map[string]any{}); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	lite, path := openRecorder(t, Options{SigningKey: key, CheckpointEvery: 4, Now: newClock().Now})
	write(lite)
	p := newPGTranscript(t)
	write(p.open(Options{SigningKey: key, CheckpointEvery: 4, Now: newClock().Now}))

	liteDB, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { liteDB.Close() })
	pgDB := p.reader(true)

	type view struct {
		Records  []Record
		Calls    []Call
		Sessions []Session
		Found    Session
		Session  []Record
		Has      bool
		Head     string
		Report   Report
	}
	read := func(db *sql.DB) view {
		ctx := context.Background()
		var v view
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(Records(ctx, db, 0, func(r Record) error { v.Records = append(v.Records, r); return nil }))
		must(Calls(ctx, db, CallFilter{}, func(c Call) error { v.Calls = append(v.Calls, c); return nil }))
		must(Sessions(ctx, db, func(s Session) error { v.Sessions = append(v.Sessions, s); return nil }))
		var err error
		v.Found, err = FindSession(ctx, db, "sess")
		must(err)
		must(SessionRecords(ctx, db, "sess-1", func(r Record) error {
			v.Session = append(v.Session, r)
			return nil
		}))
		v.Has, err = HasIntent(ctx, db, "call-2")
		must(err)
		_, v.Head, err = Head(ctx, db)
		must(err)
		v.Report, err = Verify(ctx, db, VerifyOptions{PublicKey: pubOf(key)})
		must(err)
		return v
	}
	want, got := read(liteDB), read(pgDB)
	if len(want.Records) != 14 || len(want.Calls) != 4 || !want.Report.OK() {
		t.Fatalf("the SQLite side is not what the test meant: %d records, %d calls, %v",
			len(want.Records), len(want.Calls), want.Report.Problems)
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("PostgreSQL reads differently from SQLite:\nsqlite   %+v\npostgres %+v", want, got)
	}
}

// TestPostgresReplicasShareOneChain has three recorders, as on three
// replicas, append at once; the chain stays one, verifies, and is signed
// about as often as one recorder would sign it.
func TestPostgresReplicasShareOneChain(t *testing.T) {
	p := newPGTranscript(t)
	key := newKey(t)
	const replicas, writers, each, every = 3, 4, 15, 20
	var commits sync.Map
	recs := make([]*Recorder, replicas)
	for i := range recs {
		recs[i] = p.open(Options{SigningKey: key, CheckpointEvery: every,
			OnCommit: func(n int, took time.Duration, err error) {
				if err != nil || n < 1 || took <= 0 {
					t.Errorf("commit of %d records in %v: %v", n, took, err)
				}
				commits.Store(i, true)
			}})
	}

	var wg sync.WaitGroup
	for i, r := range recs {
		for w := range writers {
			wg.Go(func() {
				for n := range each {
					call := fmt.Sprintf("r%d-w%d-%d", i, w, n)
					err := r.Append(context.Background(), KindCallIntent, "s", call,
						map[string]any{"tool": "read_file"})
					if err != nil {
						t.Errorf("Append: %v", err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	for _, r := range recs {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range replicas {
		if _, ok := commits.Load(i); !ok {
			t.Errorf("replica %d reported no commit", i)
		}
	}

	db := p.reader(true)
	rep := verify(t, db, VerifyOptions{PublicKey: pubOf(key)})
	if !rep.OK() {
		t.Fatalf("the shared chain does not verify: %v", rep.Problems)
	}
	counts := map[string]int{}
	err := Records(context.Background(), db, 0, func(r Record) error {
		counts[r.Kind]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	total := replicas * writers * each
	if counts[KindCallIntent] != total {
		t.Fatalf("%d intents in the chain, want %d", counts[KindCallIntent], total)
	}
	// One per `every` records, plus at most one closing checkpoint per
	// replica; without reading other replicas' checkpoints it would be
	// about one per `every` per replica.
	if n, most := counts[KindCheckpoint], total/every+replicas+1; n > most || n < total/every {
		t.Fatalf("%d checkpoints for %d records every %d, want %d to %d",
			n, total, every, total/every, most)
	}
}

func TestPostgresTamperingIsFound(t *testing.T) {
	p := newPGTranscript(t)
	// Without a key nothing is signed: the whole chain is the tail.
	r := p.open(Options{})
	appendN(t, r, 8)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	rw := p.reader(false)
	mustExec(t, rw, `UPDATE records SET body = ? WHERE seq = ?`, `{"i":3,"tool":"rm"}`, 4)
	rep := verify(t, rw, VerifyOptions{})
	if rep.OK() || rep.Problems[0].Seq != 4 || rep.Problems[0].Type != ProblemEdited {
		t.Fatalf("problems = %v, want seq 4 edited", rep.Problems)
	}

	// No replica chains onto the broken tail.
	pool, err := pgxpool.New(context.Background(), p.db.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, err = OpenPostgres(context.Background(), pool, Options{SigningKey: newKey(t)})
	if err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("OpenPostgres on a tampered tail: %v", err)
	}

	// A read-only handle cannot write.
	ro := p.reader(true)
	if _, err := ro.Exec(`DELETE FROM records WHERE seq = 1`); err == nil {
		t.Fatal("a read-only audit handle deleted a record")
	}
}

func TestPostgresPrune(t *testing.T) {
	p := newPGTranscript(t)
	key := newKey(t)
	clk := newClock()
	r := p.open(Options{SigningKey: key, CheckpointEvery: 10, Now: clk.Now})
	appendN(t, r, 10) // seq 1-10, checkpoint 11
	day2 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	clk.Set(day2)
	appendN(t, r, 10) // seq 12-21, checkpoint 22

	// Prune while the replica is still open; it then appends after the
	// prune record, in one chain.
	db := p.reader(false)
	res, err := Prune(context.Background(), db, PruneOptions{Before: day2,
		SigningKey: key, PublicKey: pubOf(key)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 11 || res.FirstKept != 12 || res.PruneSeq != 23 {
		t.Fatalf("prune = %+v, want 11 deleted, first kept 12, prune record 23", res)
	}
	appendN(t, r, 3)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	rep := verify(t, db, VerifyOptions{PublicKey: pubOf(key)})
	if !rep.OK() || rep.FirstSeq != 12 || rep.PrunedThrough != 11 {
		t.Fatalf("after prune and more appends: %+v", rep)
	}
}

func TestPostgresMigrateConcurrently(t *testing.T) {
	p := newPGTranscript(t)
	const n = 5
	var wg sync.WaitGroup
	recs := make(chan *Recorder, n)
	for range n {
		pool, err := pgxpool.New(context.Background(), p.db.DSN())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		wg.Go(func() {
			r, err := OpenPostgres(context.Background(), pool, Options{})
			if err != nil {
				t.Errorf("concurrent OpenPostgres: %v", err)
				return
			}
			recs <- r
		})
	}
	wg.Wait()
	close(recs)
	for r := range recs {
		r.Close()
	}
	rows := p.db.Query(t, `SELECT version FROM mcp_guard_schema WHERE component = 'recorder'`)
	if len(rows) != 1 || rows[0][0] != fmt.Sprint(len(postgresMigrations)) {
		t.Fatalf("schema rows = %v", rows)
	}
}

func TestOpenPostgresDBRefuses(t *testing.T) {
	p := newPGTranscript(t)
	ctx := context.Background()
	if _, err := OpenPostgresDB(ctx, p.db.DSN(), true); err == nil ||
		!strings.Contains(err.Error(), "no transcript") {
		t.Fatalf("a database without records: %v", err)
	}
	bad := "postgres://guard:s3cret-pw@127.0.0.1:notaport/db"
	_, err := OpenPostgresDB(ctx, bad, true)
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("a bad DSN: %v", err)
	}
}

// BenchmarkAppendPostgres appends from many goroutines through two
// recorders, as on two replicas, to one PostgreSQL transcript; group
// commit and the chain lock decide the rate.
func BenchmarkAppendPostgres(b *testing.B) {
	p := newPGTranscript(b)
	recs := []*Recorder{p.open(Options{}), p.open(Options{})}
	body := map[string]any{"tool": "query_database", "target": "appdb",
		"arguments": map[string]any{"sql": "SELECT 1"}}
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			err := recs[i%2].Append(context.Background(), KindCallIntent, "s",
				fmt.Sprint("call-", i), body)
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
