package approvals

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mcp-guard/mcp-guard/identity"
	"github.com/mcp-guard/mcp-guard/internal/pgtest"
)

func TestMain(m *testing.M) {
	pgtest.Main(m)
}

// pgReplicas is one empty PostgreSQL database shared by several services,
// each on a pool of its own, as separate guard processes would be.
type pgReplicas struct {
	t     *testing.T
	db    *pgtest.DB
	clock *fakeClock
}

func newPGReplicas(t *testing.T) *pgReplicas {
	t.Helper()
	return &pgReplicas{t: t, db: pgtest.Start(t).NewDatabase(t, ""), clock: newClock()}
}

// pool opens a pool of its own on the shared database.
func (p *pgReplicas) pool() *pgxpool.Pool {
	p.t.Helper()
	pool, err := pgxpool.New(context.Background(), p.db.DSN())
	if err != nil {
		p.t.Fatalf("pgxpool.New: %v", err)
	}
	p.t.Cleanup(pool.Close)
	return pool
}

// replica returns a migrated service on a pool of its own, sharing the
// clock of the others, and its store.
func (p *pgReplicas) replica(opts func(*Options)) (*Service, *PostgresStore) {
	p.t.Helper()
	st := NewPostgresStore(p.pool(), nil)
	o := Options{People: testPeople(), Now: p.clock.Now}
	if opts != nil {
		opts(&o)
	}
	svc, err := NewWithStore(context.Background(), st, o)
	if err != nil {
		p.t.Fatalf("NewWithStore: %v", err)
	}
	return svc, st
}

// run starts svc's background work (expiry sweep, notifications) for the
// rest of the test, and returns a channel that receives once each time its
// store starts listening.
func (p *pgReplicas) run(svc *Service, st *PostgresStore) <-chan struct{} {
	listening := make(chan struct{}, 4)
	st.onListen = func() { listening <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = svc.Run(ctx); close(done) }()
	p.t.Cleanup(func() { cancel(); <-done })
	return listening
}

func TestPostgresStoreMatchesTheContract(t *testing.T) {
	p := newPGReplicas(t)
	a, _ := p.replica(nil)
	b, _ := p.replica(nil)
	ctx := context.Background()

	opened, err := a.Open(ctx, deleteRequest())
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, opened.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StatePending || string(got.Arguments) != string(opened.Arguments) ||
		got.Caller.Email != "alice@example.com" || got.Display != opened.Display ||
		len(got.Approvers.Groups) != 1 || !got.CreatedAt.Equal(opened.CreatedAt) {
		t.Fatalf("replica b reads %+v, a stored %+v", got, opened)
	}
	if _, err := b.Get(ctx, "apr-missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing id: %v, want ErrNotFound", err)
	}

	// The same call on another replica resumes; another caller does not.
	if again, err := b.Open(ctx, deleteRequest()); err != nil || again.ID != opened.ID {
		t.Fatalf("replica b opened %v (%v), want to resume %s", again, err, opened.ID)
	}
	bob := deleteRequest()
	bob.Caller = identity.Caller{Subject: "bob-sub", Issuer: "https://idp.test"}
	if other, err := b.Open(ctx, bob); err != nil || other.ID == opened.ID {
		t.Fatalf("bob's call: %v (%v)", other, err)
	}

	// Decided on b, claimed once on a.
	if _, err := b.Decide(ctx, opened.ID, Person{Email: "alice@example.com"}, true, ViaCLI); !errors.Is(err, ErrSelfApproval) {
		t.Fatalf("self approval: %v", err)
	}
	if _, err := b.Decide(ctx, opened.ID, Person{Email: "carol@example.com"}, true, ViaCLI); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Claim(ctx, opened.ID); err != nil {
		t.Fatalf("Claim on a: %v", err)
	}
	if _, err := b.Claim(ctx, opened.ID); !errors.Is(err, ErrAlreadyExecuted) {
		t.Fatalf("second Claim on b: %v, want ErrAlreadyExecuted", err)
	}
	final, err := a.Get(ctx, opened.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.State != StateExecuted || len(final.Decisions) != 1 ||
		final.Decisions[0].Approver != "carol@example.com" || final.ExecutedAt.IsZero() {
		t.Fatalf("after claim: %+v", final)
	}

	// A new call after the run opens a new request.
	next, err := b.Open(ctx, deleteRequest())
	if err != nil || next.ID == opened.ID {
		t.Fatalf("the call after its run: %v (%v)", next, err)
	}
	list, err := a.List(ctx, ListFilter{State: StatePending})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != next.ID {
		t.Fatalf("pending list = %d requests, first %v; want 2, newest %s",
			len(list), list, next.ID)
	}
	if err := a.store.SetMessage(ctx, next.ID, Message{Channel: "C1", TS: "17.1"}); err != nil {
		t.Fatal(err)
	}
	if m := mustGet(t, b, next.ID).Message; m.Channel != "C1" || m.TS != "17.1" {
		t.Fatalf("message = %+v", m)
	}
}

func TestPostgresExpiryAcrossReplicas(t *testing.T) {
	p := newPGReplicas(t)
	a, _ := p.replica(nil)
	b, _ := p.replica(nil)
	ctx := context.Background()
	opened, err := a.Open(ctx, deleteRequest())
	if err != nil {
		t.Fatal(err)
	}

	p.clock.Advance(DefaultExpiry)
	if n, err := b.ExpireDue(ctx); err != nil || n != 1 {
		t.Fatalf("ExpireDue on b = %d, %v; want 1", n, err)
	}
	list, err := a.List(ctx, ListFilter{State: StateExpired})
	if err != nil || len(list) != 1 || list[0].ID != opened.ID {
		t.Fatalf("expired list = %v, %v", list, err)
	}
	// The caller is told once, then the same call asks again.
	told, err := a.Open(ctx, deleteRequest())
	if err != nil || told.ID != opened.ID || told.State != StateExpired {
		t.Fatalf("first Open after expiry: %v, %v", told, err)
	}
	fresh, err := b.Open(ctx, deleteRequest())
	if err != nil || fresh.ID == opened.ID || fresh.State != StatePending {
		t.Fatalf("second Open after expiry: %v, %v", fresh, err)
	}
}

func TestPostgresConcurrentOpenAcrossReplicas(t *testing.T) {
	p := newPGReplicas(t)
	const n = 6
	replicas := make([]*Service, n)
	for i := range replicas {
		replicas[i], _ = p.replica(nil)
	}

	for round := range 3 {
		req := deleteRequest()
		req.Arguments = []byte(fmt.Sprintf(`{"sql": "DELETE FROM users WHERE id = %d"}`, round))
		ids := make(chan string, n)
		var wg sync.WaitGroup
		for _, svc := range replicas {
			wg.Go(func() {
				r, err := svc.Open(context.Background(), req)
				if err != nil {
					t.Errorf("Open: %v", err)
					return
				}
				ids <- r.ID
			})
		}
		wg.Wait()
		close(ids)
		seen := map[string]bool{}
		for id := range ids {
			seen[id] = true
		}
		if len(seen) != 1 {
			t.Fatalf("round %d: %d replicas opened %d requests, want 1: %v",
				round, n, len(seen), seen)
		}
	}
}

func TestPostgresInsertRefusesASecondLiveRequest(t *testing.T) {
	p := newPGReplicas(t)
	_, st := p.replica(nil)
	ctx := context.Background()
	first := deleteRequest()
	first.ID, first.Digest, first.State = newID(), "d1", StatePending
	if err := st.Insert(ctx, &first); err != nil {
		t.Fatal(err)
	}
	second := first
	second.ID = newID()
	if err := st.Insert(ctx, &second); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second live insert: %v, want ErrDuplicate", err)
	}
	// Once the first is final, the call may be asked again.
	_, err := st.Update(ctx, first.ID, func(r *Request) (*Decision, error) {
		r.State = StateDenied
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Insert(ctx, &second); err != nil {
		t.Fatalf("insert after the first was denied: %v", err)
	}
}

func TestPostgresClaimAcrossReplicasRunsOnce(t *testing.T) {
	p := newPGReplicas(t)
	const n = 5
	replicas := make([]*Service, n)
	for i := range replicas {
		replicas[i], _ = p.replica(nil)
	}
	ctx := context.Background()
	opened, err := replicas[0].Open(ctx, deleteRequest())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replicas[1].Decide(ctx, opened.ID, Person{Email: "erin@example.com"}, true, ViaCLI); err != nil {
		t.Fatal(err)
	}

	errs := make(chan error, n)
	var wg sync.WaitGroup
	for _, svc := range replicas {
		wg.Go(func() {
			_, err := svc.Claim(ctx, opened.ID)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrAlreadyExecuted):
		default:
			t.Errorf("Claim: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d claims succeeded across replicas, want exactly 1", ok)
	}
}

func TestPostgresMigrateConcurrently(t *testing.T) {
	p := newPGReplicas(t)
	const n = 6
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		st := NewPostgresStore(p.pool(), nil)
		wg.Go(func() { errs <- st.Migrate(context.Background()) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	rows := p.db.Query(t, `SELECT version FROM mcp_guard_schema
		WHERE component = 'approvals'`)
	if len(rows) != 1 || rows[0][0] != fmt.Sprint(len(postgresMigrations)) {
		t.Fatalf("schema version rows = %v", rows)
	}

	// A database migrated by a newer guard is refused, not downgraded.
	p.db.Exec(t, `UPDATE mcp_guard_schema SET version = 99 WHERE component = 'approvals'`)
	err := NewPostgresStore(p.pool(), nil).Migrate(context.Background())
	if err == nil {
		t.Fatal("Migrate accepted a schema newer than it knows")
	}
}

// waitResult is what a Wait in a goroutine returned.
type waitResult struct {
	r   *Request
	err error
}

// waitOn starts svc.Wait on id and returns once it blocks.
func waitOn(t *testing.T, ctx context.Context, svc *Service, id string) <-chan waitResult {
	t.Helper()
	blocked := make(chan struct{}, 1)
	svc.blocking = func(got string) {
		if got == id {
			select {
			case blocked <- struct{}{}:
			default:
			}
		}
	}
	done := make(chan waitResult, 1)
	go func() {
		r, err := svc.Wait(ctx, id, nil)
		done <- waitResult{r, err}
	}()
	select {
	case <-blocked:
	case <-ctx.Done():
		t.Fatal("Wait never blocked")
	}
	return done
}

func TestPostgresDecisionOnAnotherReplicaWakesWait(t *testing.T) {
	p := newPGReplicas(t)
	waiter, st := p.replica(func(o *Options) { o.Wait = time.Hour })
	decider, _ := p.replica(nil)
	// No polling: only the notification can wake Wait.
	waiter.poll = time.Hour
	listening := p.run(waiter, st)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opened, err := waiter.Open(ctx, deleteRequest())
	if err != nil {
		t.Fatal(err)
	}
	expectSignal(t, ctx, listening, "the first LISTEN")
	done := waitOn(t, ctx, waiter, opened.ID)

	if _, err := decider.Decide(ctx, opened.ID, Person{Email: "carol@example.com"}, true, ViaCLI); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if res.err != nil || res.r.State != StateApproved {
			t.Fatalf("Wait = %v, %v; want approved", res.r, res.err)
		}
	case <-ctx.Done():
		t.Fatal("a decision on another replica did not wake Wait")
	}

	// The listener survives losing its connection: kill it, wait for the
	// new LISTEN, and a decision on the next request still wakes Wait.
	p.db.Exec(t, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`)
	expectSignal(t, ctx, listening, "a LISTEN after the connection was killed")
	req := deleteRequest()
	req.Arguments = []byte(`{"sql": "DELETE FROM users WHERE id = 8"}`)
	second, err := waiter.Open(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	done = waitOn(t, ctx, waiter, second.ID)
	if _, err := decider.Decide(ctx, second.ID, Person{Email: "dave@example.com"}, false, ViaCLI); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if res.err != nil || res.r.State != StateDenied {
			t.Fatalf("Wait after reconnect = %v, %v; want denied", res.r, res.err)
		}
	case <-ctx.Done():
		t.Fatal("after a reconnect a decision did not wake Wait")
	}
}

func TestStopWaitingAnswersPending(t *testing.T) {
	p := newPGReplicas(t)
	stopping, _ := p.replica(func(o *Options) { o.Wait = time.Hour })
	other, _ := p.replica(func(o *Options) { o.Wait = time.Hour })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opened, err := stopping.Open(ctx, deleteRequest())
	if err != nil {
		t.Fatal(err)
	}
	done := waitOn(t, ctx, stopping, opened.ID)

	stopping.StopWaiting()
	select {
	case res := <-done:
		if res.err != nil || res.r.ID != opened.ID || res.r.State != StatePending {
			t.Fatalf("Wait after StopWaiting = %v, %v; want pending %s",
				res.r, res.err, opened.ID)
		}
	case <-ctx.Done():
		t.Fatal("StopWaiting did not end Wait")
	}
	// A Wait that starts later returns at once too.
	if r, err := stopping.Wait(ctx, opened.ID, nil); err != nil || r.State != StatePending {
		t.Fatalf("Wait after the stop = %v, %v", r, err)
	}

	// The re-call on another replica resumes the same request.
	resumed, err := other.Open(ctx, deleteRequest())
	if err != nil || resumed.ID != opened.ID {
		t.Fatalf("re-call on another replica = %v, %v; want %s", resumed, err, opened.ID)
	}
}

func expectSignal(t *testing.T, ctx context.Context, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatalf("never saw %s", what)
	}
}

func mustGet(t *testing.T, svc *Service, id string) *Request {
	t.Helper()
	r, err := svc.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return r
}
