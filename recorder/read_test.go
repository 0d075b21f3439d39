package recorder

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestOpenReadOnlyCopy(t *testing.T) {
	r, path := openRecorder(t, Options{SigningKey: newKey(t)})
	appendN(t, r, 6)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// A copy of the main file alone, as an auditor would receive it.
	cp := filepath.Join(t.TempDir(), "copy.db")
	copyFile(t, path, cp)

	db, err := OpenReadOnly(cp)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if rep := verify(t, db, VerifyOptions{}); !rep.OK() || rep.Records != 7 {
		t.Fatalf("copy: %+v", rep)
	}
	if _, err := db.Exec(`DELETE FROM records`); err == nil {
		t.Error("a read-only database accepted a delete")
	}
	if _, err := OpenReadOnly(filepath.Join(t.TempDir(), "absent.db")); err == nil {
		t.Error("opening a missing database succeeded")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCallsAndSessions(t *testing.T) {
	clk := newClock()
	r, path := openRecorder(t, Options{Now: clk.Now})
	ctx := context.Background()
	app := func(kind, session, call string, body any) {
		t.Helper()
		if err := r.Append(ctx, kind, session, call, body); err != nil {
			t.Fatal(err)
		}
	}
	alice := Caller{Subject: "alice", Email: "Alice@example.com", Groups: []string{"dev"}}
	bob := Caller{Subject: "bob", Groups: []string{}}
	intent := func(call string, c Caller, tool, target string) map[string]any {
		return map[string]any{"call_id": call, "caller": c, "tool": tool, "target": target}
	}
	app(KindSessionStart, "s1", "", map[string]any{"session_id": "s1", "caller": alice})
	app(KindCallIntent, "s1", "c1", intent("c1", alice, "read_file", "docs"))
	app(KindCallCompletion, "s1", "c1", map[string]any{"call_id": "c1", "outcome": "ok"})
	app(KindSessionStart, "s2", "", map[string]any{"session_id": "s2", "caller": bob})
	app(KindCallIntent, "s2", "c2", intent("c2", bob, "run_shell", "local"))
	app(KindApproval, "", "c2", map[string]any{"event": "approval_opened"})
	// The approval workflow keys its events by request id; the completion
	// names the request.
	app(KindApproval, "", "req-9", map[string]any{"event": "approval_decided", "approver": "carol"})
	app(KindCallCompletion, "s2", "c2",
		map[string]any{"call_id": "c2", "outcome": "ok", "request_id": "req-9"})
	cutoff := clk.Now()
	app(KindCallIntent, "s1", "c3", intent("c3", alice, "run_shell", "local"))
	app(KindSessionEnd, "s1", "", map[string]any{"session_id": "s1"})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	tests := []struct {
		name   string
		filter CallFilter
		want   []string
	}{
		{"all", CallFilter{}, []string{"c1", "c2", "c3"}},
		{"by subject", CallFilter{Caller: "bob"}, []string{"c2"}},
		{"by email, any case", CallFilter{Caller: "alice@example.com"}, []string{"c1", "c3"}},
		{"by tool", CallFilter{Tool: "run_shell"}, []string{"c2", "c3"}},
		{"by target", CallFilter{Target: "docs"}, []string{"c1"}},
		{"incomplete", CallFilter{Outcome: OutcomeIncomplete}, []string{"c3"}},
		{"since", CallFilter{Since: cutoff}, []string{"c3"}},
		{"until", CallFilter{Until: cutoff}, []string{"c1", "c2"}},
		{"session", CallFilter{SessionID: "s1"}, []string{"c1", "c3"}},
		{"up to a seq", CallFilter{UptoSeq: 7}, []string{"c1", "c2"}},
		{"none", CallFilter{Tool: "query_database"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := Calls(ctx, db, tt.filter, func(c Call) error {
				got = append(got, c.Intent.CallID)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("calls = %v, want %v", got, tt.want)
			}
		})
	}

	// The call that was approved carries its approvals and completion;
	// up to seq 7 the completion, which names the request, was not
	// written yet.
	var c2 Call
	_ = Calls(ctx, db, CallFilter{Caller: "bob"}, func(c Call) error { c2 = c; return nil })
	if c2.Completion == nil || len(c2.Approvals) != 2 || c2.Outcome != "ok" ||
		c2.Approvals[0].Seq > c2.Approvals[1].Seq {
		t.Errorf("c2 = %+v, want a completion and two approvals", c2)
	}
	_ = Calls(ctx, db, CallFilter{Caller: "bob", UptoSeq: 7}, func(c Call) error { c2 = c; return nil })
	if c2.Completion != nil || c2.Outcome != OutcomeIncomplete || len(c2.Approvals) != 1 {
		t.Errorf("c2 up to seq 7 = %+v, want incomplete with the approval keyed by call", c2)
	}

	var sessions []Session
	err = Sessions(ctx, db, func(s Session) error { sessions = append(sessions, s); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 2 || sessions[0].ID != "s1" || sessions[0].Calls != 2 ||
		!sessions[0].Ended || sessions[1].Ended || sessions[0].Start == nil {
		t.Errorf("sessions = %+v", sessions)
	}
	if s, err := FindSession(ctx, db, "s"); err == nil {
		t.Errorf("FindSession(s) = %v, want an ambiguity error", s.ID)
	}
	if s, err := FindSession(ctx, db, "s2"); err != nil || s.Calls != 1 {
		t.Errorf("FindSession(s2) = %+v, %v", s, err)
	}
}
