package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcp-guard/mcp-guard/identity"
)

func TestCanonical(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{name: "empty is the empty object", in: "", want: "{}"},
		{name: "keys sorted, space dropped",
			in:   ` { "b" : 1 , "a" : [ true , null , "x" ] } `,
			want: `{"a":[true,null,"x"],"b":1}`},
		{name: "nested objects sorted",
			in: `{"z":{"y":1,"x":{"b":2,"a":1}}}`, want: `{"z":{"x":{"a":1,"b":2},"y":1}}`},
		{name: "numbers kept as written", in: `{"n":1.50,"m":1e3}`,
			want: `{"m":1e3,"n":1.50}`},
		{name: "no html escaping", in: `{"s":"a<b>&c"}`, want: `{"s":"a<b>&c"}`},
		{name: "unicode escapes normalised", in: `{"s":"\u00e9"}`, want: `{"s":"é"}`},
		{name: "duplicate key", in: `{"a":1,"a":2}`, wantErr: true},
		{name: "nested duplicate key", in: `{"a":{"b":1,"b":1}}`, wantErr: true},
		{name: "trailing data", in: `{"a":1} {"b":2}`, wantErr: true},
		{name: "truncated", in: `{"a":`, wantErr: true},
		{name: "not json", in: `DROP TABLE x`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical([]byte(tt.in))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Canonical(%q) = %s, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Canonical(%q): %v", tt.in, err)
			}
			if string(got) != tt.want {
				t.Fatalf("Canonical(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestCanonicalRejectsDeepNesting(t *testing.T) {
	deep := ""
	for range maxDepth + 2 {
		deep += "["
	}
	if _, err := Canonical([]byte(deep)); err == nil {
		t.Fatal("deeply nested input accepted")
	}
}

func TestDigest(t *testing.T) {
	base, err := Digest("query_database", "prod", json.RawMessage(`{"sql":"SELECT 1","limit":5}`))
	if err != nil {
		t.Fatalf("Digest: %v", err)
	}
	if len(base) != 64 {
		t.Fatalf("digest %q is not hex sha256", base)
	}

	tests := []struct {
		name   string
		tool   string
		target string
		args   string
		same   bool
	}{
		{name: "reordered and spaced", tool: "query_database", target: "prod",
			args: `{ "limit": 5, "sql": "SELECT 1" }`, same: true},
		{name: "changed argument", tool: "query_database", target: "prod",
			args: `{"sql":"SELECT 2","limit":5}`},
		{name: "other target", tool: "query_database", target: "staging",
			args: `{"sql":"SELECT 1","limit":5}`},
		{name: "other tool", tool: "run_shell", target: "prod",
			args: `{"sql":"SELECT 1","limit":5}`},
		{name: "target and tool swapped", tool: "prod", target: "query_database",
			args: `{"sql":"SELECT 1","limit":5}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Digest(tt.tool, tt.target, json.RawMessage(tt.args))
			if err != nil {
				t.Fatalf("Digest: %v", err)
			}
			if (got == base) != tt.same {
				t.Fatalf("digest equal to base = %v, want %v", got == base, tt.same)
			}
		})
	}
}

func TestOpenResumesTheSameCall(t *testing.T) {
	e := newEnv(t, envConfig{})
	first := e.open(deleteRequest())
	if first.State != StatePending {
		t.Fatalf("state = %s, want pending", first.State)
	}
	if string(first.Arguments) != `{"sql":"DELETE FROM users WHERE id = 7"}` {
		t.Fatalf("stored arguments not canonical: %s", first.Arguments)
	}

	again := deleteRequest()
	again.Arguments = json.RawMessage(`{ "sql" : "DELETE FROM users WHERE id = 7" }`)
	if got := e.open(again); got.ID != first.ID {
		t.Fatalf("same call opened %s, want to resume %s", got.ID, first.ID)
	}

	changed := deleteRequest()
	changed.Arguments = json.RawMessage(`{"sql":"DELETE FROM users WHERE id = 8"}`)
	other := e.open(changed)
	if other.ID == first.ID || other.Digest == first.Digest {
		t.Fatalf("changed arguments reused request %s (digest %s)", other.ID, other.Digest)
	}

	bob := deleteRequest()
	bob.Caller = identity.Caller{Subject: "bob-sub", Issuer: "https://idp.test"}
	if got := e.open(bob); got.ID == first.ID {
		t.Fatal("another caller resumed alice's request")
	}
	if got := e.eventTypes(); len(got) != 3 {
		t.Fatalf("events = %v, want three opened", got)
	}
}

func TestOpenRefusesBadRequests(t *testing.T) {
	digest, err := Digest("query_database", "prod",
		json.RawMessage(`{"sql":"SELECT 1"}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		change  func(r *Request)
		wantErr error
	}{
		{name: "no caller", change: func(r *Request) { r.Caller = identity.Caller{} }},
		{name: "no tool", change: func(r *Request) { r.Tool = "" }},
		{name: "no display", change: func(r *Request) { r.Display = "  " }},
		{name: "negative required", change: func(r *Request) { r.Required = -1 }},
		{name: "arguments not json", change: func(r *Request) {
			r.Arguments = json.RawMessage(`{"sql":`)
		}},
		{name: "digest of another call", change: func(r *Request) { r.Digest = digest }},
		{name: "empty approvers", wantErr: ErrNoApprovers,
			change: func(r *Request) { r.Approvers = Approvers{} }},
		{name: "only the requester approves", wantErr: ErrNoApprovers,
			change: func(r *Request) {
				r.Approvers = Approvers{Emails: []string{"ALICE@example.com"}}
			}},
		{name: "unknown group", wantErr: ErrNoApprovers,
			change: func(r *Request) { r.Approvers = Approvers{Groups: []string{"nobody"}} }},
		{name: "more approvals required than approvers", wantErr: ErrNoApprovers,
			change: func(r *Request) {
				r.Approvers = Approvers{Emails: []string{"carol@example.com"}}
				r.Required = 2
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envConfig{})
			r := deleteRequest()
			tt.change(&r)
			got, err := e.svc.Open(context.Background(), r)
			if err == nil {
				t.Fatalf("Open accepted it: %+v", got)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			list, lerr := e.svc.List(context.Background(), ListFilter{})
			if lerr != nil || len(list) != 0 {
				t.Fatalf("refused request was stored: %d rows, %v", len(list), lerr)
			}
		})
	}
}

func TestDecideRules(t *testing.T) {
	tests := []struct {
		name      string
		approvers Approvers
		caller    *identity.Caller
		by        Person
		wantErr   error
	}{
		{name: "requester outside the directory by email",
			caller: &identity.Caller{Subject: "bob-sub", Issuer: "https://idp.test",
				Email: "bob@example.com"},
			approvers: Approvers{Emails: []string{"bob@example.com", "frank@example.com"}},
			by:        Person{Email: "BOB@example.com"}, wantErr: ErrSelfApproval},
		{name: "listed email", approvers: Approvers{Emails: []string{"frank@example.com"}},
			by: Person{Email: "frank@example.com"}},
		{name: "email case ignored", approvers: Approvers{Emails: []string{"Frank@Example.com"}},
			by: Person{Email: "FRANK@example.COM"}},
		{name: "group through the directory", approvers: Approvers{Groups: []string{"dba"}},
			by: Person{Email: "carol@example.com"}},
		{name: "group through the directory by slack user",
			approvers: Approvers{Groups: []string{"dba"}}, by: Person{SlackUser: "U0DAVE"}},
		{name: "groups claimed by the decider are ignored",
			approvers: Approvers{Groups: []string{"dba"}},
			by:        Person{Email: "mallory@example.com", Groups: []string{"dba"}},
			wantErr:   ErrNotApprover},
		{name: "not listed", approvers: Approvers{Groups: []string{"dba"}},
			by: Person{Email: "frank@example.com"}, wantErr: ErrNotApprover},
		{name: "no email", approvers: Approvers{Groups: []string{"dba"}},
			by: Person{SlackUser: "U0UNKNOWN"}, wantErr: ErrNotApprover},
		{name: "slack user and email disagree with the directory",
			approvers: Approvers{Groups: []string{"dba"}},
			by:        Person{SlackUser: "U0CAROL", Email: "mallory@example.com"},
			wantErr:   ErrNotApprover},
		{name: "requester by email",
			approvers: Approvers{Emails: []string{"alice@example.com", "carol@example.com"}},
			by:        Person{Email: "Alice@Example.com"}, wantErr: ErrSelfApproval},
		{name: "requester by subject and issuer",
			approvers: Approvers{Groups: []string{"dba"}},
			by:        Person{Subject: "alice-sub", Issuer: "https://idp.test"},
			wantErr:   ErrSelfApproval},
		{name: "requester by slack user from the directory",
			approvers: Approvers{Groups: []string{"dev", "dba"}},
			by:        Person{SlackUser: "U0ALICE"}, wantErr: ErrSelfApproval},
		{name: "same subject at another issuer is someone else",
			approvers: Approvers{Emails: []string{"frank@example.com"}},
			by: Person{Email: "frank@example.com", Subject: "alice-sub",
				Issuer: "https://other.test"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envConfig{})
			r := deleteRequest()
			r.Approvers = tt.approvers
			if tt.caller != nil {
				r.Caller = *tt.caller
			}
			opened := e.open(r)

			got, err := e.svc.Decide(context.Background(), opened.ID, tt.by, true, ViaCLI)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Decide error = %v, want %v", err, tt.wantErr)
				}
				if st := e.get(opened.ID); st.State != StatePending || len(st.Decisions) != 0 {
					t.Fatalf("refused decision changed the request: %s, %d decisions",
						st.State, len(st.Decisions))
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if got.State != StateApproved {
				t.Fatalf("state = %s, want approved", got.State)
			}
		})
	}
}

func TestDecideRefusesUnknownChannel(t *testing.T) {
	e := newEnv(t, envConfig{})
	r := e.open(deleteRequest())
	_, err := e.svc.Decide(context.Background(), r.ID,
		Person{Email: "carol@example.com"}, true, "email")
	if err == nil {
		t.Fatal("decision through an unknown channel accepted")
	}
}

func TestEmptyApproversNobodyCanApprove(t *testing.T) {
	e := newEnv(t, envConfig{})
	// Open refuses such a request, so store one directly, as an older
	// version or another writer might have.
	r := deleteRequest()
	r.ID = newID()
	r.Approvers = Approvers{}
	r.State = StatePending
	r.CreatedAt = e.clock.Now()
	r.ExpiresAt = r.CreatedAt.Add(time.Hour)
	r.Digest = "unused"
	if err := e.svc.store.Insert(context.Background(), &r); err != nil {
		t.Fatal(err)
	}

	for _, p := range testPeople() {
		for _, approve := range []bool{true, false} {
			_, err := e.svc.Decide(context.Background(), r.ID, p, approve, ViaCLI)
			if !errors.Is(err, ErrNotApprover) && !errors.Is(err, ErrSelfApproval) {
				t.Fatalf("%s (approve=%v): error = %v, want refusal", p.Email, approve, err)
			}
		}
	}
	if got := e.get(r.ID); got.State != StatePending {
		t.Fatalf("state = %s, want pending", got.State)
	}
}

func TestDistinctApprovers(t *testing.T) {
	e := newEnv(t, envConfig{})
	r := deleteRequest()
	r.Required = 2
	opened := e.open(r)
	ctx := context.Background()
	carol := Person{Email: "carol@example.com"}

	got, err := e.svc.Decide(ctx, opened.ID, carol, true, ViaCLI)
	if err != nil || got.State != StatePending {
		t.Fatalf("first approval: state %v, err %v; want pending", got, err)
	}
	for _, again := range []Person{carol, {Email: "CAROL@example.com"}, {SlackUser: "U0CAROL"}} {
		if _, err := e.svc.Decide(ctx, opened.ID, again, true, ViaSlack); !errors.Is(err, ErrAlreadyDecided) {
			t.Fatalf("carol again as %+v: error = %v, want ErrAlreadyDecided", again, err)
		}
	}
	got, err = e.svc.Decide(ctx, opened.ID, Person{Email: "dave@example.com"}, true, ViaCLI)
	if err != nil || got.State != StateApproved {
		t.Fatalf("second approver: %v, %v; want approved", got, err)
	}
	if n := len(got.Approvals()); n != 2 {
		t.Fatalf("approvals = %d, want 2", n)
	}

	_, err = e.svc.Decide(ctx, opened.ID, Person{Email: "erin@example.com"}, false, ViaCLI)
	var se *StateError
	if !errors.Is(err, ErrNotPending) || !errors.As(err, &se) || se.State != StateApproved {
		t.Fatalf("decision after approval: error = %v, want StateError approved", err)
	}
}

func TestAnyDenyDenies(t *testing.T) {
	e := newEnv(t, envConfig{})
	r := deleteRequest()
	r.Required = 2
	opened := e.open(r)
	ctx := context.Background()
	if _, err := e.svc.Decide(ctx, opened.ID, Person{Email: "carol@example.com"}, true, ViaCLI); err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.Decide(ctx, opened.ID, Person{Email: "dave@example.com"}, false, ViaCLI)
	if err != nil || got.State != StateDenied {
		t.Fatalf("deny: %v, %v; want denied", got, err)
	}
	if _, err := e.svc.Claim(ctx, opened.ID); !errors.Is(err, ErrNotApproved) {
		t.Fatalf("Claim of a denied request: %v, want ErrNotApproved", err)
	}
}

func TestDeniedIsRepeatedUntilItsWindowEnds(t *testing.T) {
	e := newEnv(t, envConfig{})
	opened := e.open(deleteRequest())
	ctx := context.Background()
	denied, err := e.svc.Decide(ctx, opened.ID, Person{Email: "carol@example.com"}, false, ViaCLI)
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(DefaultExpiry); !denied.ExpiresAt.Equal(want) {
		t.Fatalf("denied ExpiresAt = %v, want %v", denied.ExpiresAt, want)
	}

	e.clock.Advance(DefaultExpiry - time.Second)
	if got := e.open(deleteRequest()); got.ID != opened.ID || got.State != StateDenied {
		t.Fatalf("re-call within the window: %s %s, want %s denied", got.ID, got.State, opened.ID)
	}
	e.clock.Advance(time.Second)
	got := e.open(deleteRequest())
	if got.ID == opened.ID || got.State != StatePending {
		t.Fatalf("re-call after the window: %s %s, want a new pending request", got.ID, got.State)
	}
}

func TestClaimOnce(t *testing.T) {
	e := newEnv(t, envConfig{})
	opened := e.open(deleteRequest())
	ctx := context.Background()

	if _, err := e.svc.Claim(ctx, opened.ID); !errors.Is(err, ErrNotApproved) {
		t.Fatalf("Claim while pending: %v, want ErrNotApproved", err)
	}
	if _, err := e.svc.Decide(ctx, opened.ID, Person{Email: "carol@example.com"}, true, ViaCLI); err != nil {
		t.Fatal(err)
	}
	if got := e.open(deleteRequest()); got.ID != opened.ID || got.State != StateApproved {
		t.Fatalf("re-call after approval: %s %s, want %s approved", got.ID, got.State, opened.ID)
	}

	claimed, err := e.svc.Claim(ctx, opened.ID)
	if err != nil || claimed.State != StateExecuted {
		t.Fatalf("Claim: %v, %v", claimed, err)
	}
	if string(claimed.Arguments) != string(opened.Arguments) {
		t.Fatalf("claimed arguments %s, want %s", claimed.Arguments, opened.Arguments)
	}
	if _, err := e.svc.Claim(ctx, opened.ID); !errors.Is(err, ErrAlreadyExecuted) {
		t.Fatalf("second Claim: %v, want ErrAlreadyExecuted", err)
	}
	if got := e.open(deleteRequest()); got.ID == opened.ID || got.State != StatePending {
		t.Fatalf("re-call after execution: %s %s, want a new pending request", got.ID, got.State)
	}
	want := []EventType{EventOpened, EventDecided, EventExecuted, EventOpened}
	if got := e.eventTypes(); !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

func TestClaimConcurrentRunsOnce(t *testing.T) {
	e := newEnv(t, envConfig{})
	opened := e.open(deleteRequest())
	ctx := context.Background()
	if _, err := e.svc.Decide(ctx, opened.ID, Person{Email: "carol@example.com"}, true, ViaCLI); err != nil {
		t.Fatal(err)
	}

	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := e.svc.Claim(ctx, opened.ID)
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
		t.Fatalf("%d claims succeeded, want exactly 1", ok)
	}
}

func TestConcurrentDecisionsCountOnce(t *testing.T) {
	e := newEnv(t, envConfig{})
	opened := e.open(deleteRequest())
	ctx := context.Background()

	people := []Person{{Email: "carol@example.com"}, {Email: "dave@example.com"},
		{Email: "erin@example.com"}}
	errs := make(chan error, len(people))
	var wg sync.WaitGroup
	for _, p := range people {
		wg.Go(func() {
			_, err := e.svc.Decide(ctx, opened.ID, p, true, ViaCLI)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, ErrNotPending) {
			t.Errorf("Decide: %v", err)
		}
	}
	got := e.get(opened.ID)
	if ok != 1 || len(got.Decisions) != 1 || got.State != StateApproved {
		t.Fatalf("%d decisions succeeded, %d stored, state %s; want 1, 1, approved",
			ok, len(got.Decisions), got.State)
	}
}

func TestConcurrentOpenCreatesOneRequest(t *testing.T) {
	e := newEnv(t, envConfig{})
	const n = 8
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			r, err := e.svc.Open(context.Background(), deleteRequest())
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
		t.Fatalf("concurrent Opens created %d requests, want 1", len(seen))
	}
}

func TestExpiryIsJudgedAtReadTime(t *testing.T) {
	e := newEnv(t, envConfig{})
	opened := e.open(deleteRequest())
	ctx := context.Background()
	e.clock.Advance(DefaultExpiry)

	if got := e.get(opened.ID); got.State != StateExpired {
		t.Fatalf("Get after expiry: %s, want expired", got.State)
	}
	if got := e.storedState(opened.ID); got != StatePending {
		t.Fatalf("stored state %s; the test wants the sweep not to have run", got)
	}
	expired, err := e.svc.List(ctx, ListFilter{State: StateExpired})
	if err != nil || len(expired) != 1 || expired[0].State != StateExpired {
		t.Fatalf("List(expired) = %v, %v", expired, err)
	}
	pending, err := e.svc.List(ctx, ListFilter{State: StatePending})
	if err != nil || len(pending) != 0 {
		t.Fatalf("List(pending) = %v, %v; want none", pending, err)
	}

	_, err = e.svc.Decide(ctx, opened.ID, Person{Email: "carol@example.com"}, true, ViaCLI)
	if !errors.Is(err, ErrExpired) {
		t.Fatalf("Decide after expiry: %v, want ErrExpired", err)
	}
	if got := e.storedState(opened.ID); got != StateExpired {
		t.Fatalf("stored state after the late decision: %s, want expired", got)
	}
	if got := e.get(opened.ID); len(got.Decisions) != 0 {
		t.Fatal("late decision was stored")
	}
}

func TestExpiredIsAnsweredOnce(t *testing.T) {
	e := newEnv(t, envConfig{})
	opened := e.open(deleteRequest())
	e.clock.Advance(DefaultExpiry + time.Minute)

	n, err := e.svc.ExpireDue(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("ExpireDue = %d, %v; want 1", n, err)
	}
	first := e.open(deleteRequest())
	if first.ID != opened.ID || first.State != StateExpired || !first.Acknowledged {
		t.Fatalf("first re-call: %s %s ack=%v; want the expired request, acknowledged",
			first.ID, first.State, first.Acknowledged)
	}
	second := e.open(deleteRequest())
	if second.ID == opened.ID || second.State != StatePending {
		t.Fatalf("second re-call: %s %s; want a new pending request", second.ID, second.State)
	}
}

func TestApprovalUnclaimedExpires(t *testing.T) {
	e := newEnv(t, envConfig{})
	opened := e.open(deleteRequest())
	ctx := context.Background()
	e.clock.Advance(10 * time.Minute)
	if _, err := e.svc.Decide(ctx, opened.ID, Person{Email: "carol@example.com"}, true, ViaCLI); err != nil {
		t.Fatal(err)
	}
	// The approval stays usable for Expiry after the decision, past the
	// original deadline.
	e.clock.Advance(10 * time.Minute)
	if got := e.get(opened.ID); got.State != StateApproved {
		t.Fatalf("approval 10m old: %s, want approved", got.State)
	}
	e.clock.Advance(5 * time.Minute)
	if _, err := e.svc.Claim(ctx, opened.ID); !errors.Is(err, ErrExpired) {
		t.Fatalf("Claim of a stale approval: %v, want ErrExpired", err)
	}
	if got := e.storedState(opened.ID); got != StateExpired {
		t.Fatalf("stored state %s, want expired", got)
	}
}

func TestRunExpiresInTheBackground(t *testing.T) {
	expired := make(chan string, 1)
	e := newEnv(t, envConfig{opts: func(o *Options) {
		o.OnEvent = func(ev Event) {
			if ev.Type == EventExpired {
				expired <- ev.Request.ID
			}
		}
	}})
	e.svc.sweep = time.Millisecond
	opened := e.open(deleteRequest())
	e.clock.Advance(DefaultExpiry)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.svc.Run(ctx) }()
	select {
	case id := <-expired:
		if id != opened.ID {
			t.Fatalf("expired %s, want %s", id, opened.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not expire the request")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := e.storedState(opened.ID); got != StateExpired {
		t.Fatalf("stored state %s, want expired", got)
	}
}

func TestWaitWakesAtOnceOnDecision(t *testing.T) {
	e := newEnv(t, envConfig{opts: func(o *Options) { o.Wait = time.Hour }})
	// No polling: only the in-process broadcast can wake Wait.
	e.svc.poll = time.Hour
	opened := e.open(deleteRequest())

	blocked := make(chan struct{}, 1)
	e.svc.blocking = func(id string) {
		if id == opened.ID {
			select {
			case blocked <- struct{}{}:
			default:
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		r   *Request
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := e.svc.Wait(ctx, opened.ID, nil)
		done <- result{r, err}
	}()
	select {
	case <-blocked:
	case <-ctx.Done():
		t.Fatal("Wait never blocked")
	}

	if _, err := e.svc.Decide(ctx, opened.ID, Person{Email: "carol@example.com"}, true, ViaCLI); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil || res.r.State != StateApproved {
		t.Fatalf("Wait = %v, %v; want approved", res.r, res.err)
	}
}

func TestWaitSeesDecisionsOfAnotherProcess(t *testing.T) {
	e := newEnv(t, envConfig{opts: func(o *Options) { o.Wait = time.Hour }})
	opened := e.open(deleteRequest())

	// A second service on the same file stands for the CLI process.
	cli, err := New(openDB(t, e.dbPath), Options{People: testPeople(), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.poll = 5 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan *Request, 1)
	go func() {
		r, err := e.svc.Wait(ctx, opened.ID, nil)
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
		done <- r
	}()

	if _, err := cli.Decide(ctx, opened.ID, Person{Email: "dave@example.com"}, false, ViaCLI); err != nil {
		t.Fatal(err)
	}
	if got := <-done; got == nil || got.State != StateDenied {
		t.Fatalf("Wait = %v, want denied", got)
	}
}

func TestWaitTimesOutPending(t *testing.T) {
	e := newEnv(t, envConfig{opts: func(o *Options) { o.Wait = 20 * time.Millisecond }})
	opened := e.open(deleteRequest())
	got, err := e.svc.Wait(context.Background(), opened.ID, nil)
	if err != nil || got.State != StatePending {
		t.Fatalf("Wait = %v, %v; want pending and no error", got, err)
	}
}

func TestWaitReportsProgress(t *testing.T) {
	e := newEnv(t, envConfig{opts: func(o *Options) { o.Wait = time.Hour }})
	e.svc.poll = time.Millisecond
	opened := e.open(deleteRequest())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls []time.Duration
	_, err := e.svc.Wait(ctx, opened.ID, func(elapsed, total time.Duration) {
		if total != time.Hour {
			t.Errorf("total = %v, want 1h", total)
		}
		calls = append(calls, elapsed)
		if len(calls) == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait error = %v, want context.Canceled", err)
	}
	if len(calls) != 3 || calls[2] < calls[0] {
		t.Fatalf("progress calls = %v, want 3 growing", calls)
	}
}

func TestWaitAnswersExpiry(t *testing.T) {
	e := newEnv(t, envConfig{})
	opened := e.open(deleteRequest())
	e.clock.Advance(DefaultExpiry)
	got, err := e.svc.Wait(context.Background(), opened.ID, nil)
	if err != nil || got.State != StateExpired || !got.Acknowledged {
		t.Fatalf("Wait = %+v, %v; want expired and acknowledged", got, err)
	}
	if next := e.open(deleteRequest()); next.ID == opened.ID {
		t.Fatal("re-call after an answered expiry resumed the old request")
	}
}

func TestRestartKeepsPendingRequests(t *testing.T) {
	e := newEnv(t, envConfig{})
	opened := e.open(deleteRequest())
	e.db.Close()

	restarted, err := New(openDB(t, e.dbPath), Options{People: testPeople(), Now: e.clock.Now})
	if err != nil {
		t.Fatalf("New on the same file: %v", err)
	}
	ctx := context.Background()
	got, err := restarted.Open(ctx, deleteRequest())
	if err != nil || got.ID != opened.ID || got.State != StatePending {
		t.Fatalf("Open after restart: %v, %v; want %s pending", got, err, opened.ID)
	}
	pending, err := restarted.List(ctx, ListFilter{State: StatePending})
	if err != nil || len(pending) != 1 {
		t.Fatalf("List(pending) after restart = %v, %v", pending, err)
	}
	if _, err := restarted.Decide(ctx, opened.ID, Person{Email: "erin@example.com"}, true, ViaCLI); err != nil {
		t.Fatalf("Decide after restart: %v", err)
	}
}

func TestNewChecksTheDirectory(t *testing.T) {
	tests := []struct {
		name   string
		people []Person
	}{
		{name: "missing email", people: []Person{{SlackUser: "U1"}}},
		{name: "email twice", people: []Person{{Email: "a@x.test"}, {Email: "A@x.test"}}},
		{name: "slack user twice", people: []Person{{Email: "a@x.test", SlackUser: "U1"},
			{Email: "b@x.test", SlackUser: "U1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openDB(t, t.TempDir()+"/g.db")
			if _, err := New(db, Options{People: tt.people}); err == nil {
				t.Fatal("New accepted a bad directory")
			}
		})
	}
}
