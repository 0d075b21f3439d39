package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mcp-guard/mcp-guard/recorder"
)

// TestAuditShowIgnoresTamperedKeys edits the derived key table so that it
// files a call of one session under another: audit show prints both
// sessions as before, and audit verify still turns on the records alone.
func TestAuditShowIgnoresTamperedKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "transcript.db")
	r, err := recorder.Open(path, recorder.Options{})
	must(t, err)
	ctx := context.Background()
	app := func(kind, session, call string, body map[string]any) {
		t.Helper()
		must(t, r.Append(ctx, kind, session, call, body))
	}
	for _, s := range []string{"sess-a", "sess-b"} {
		app(recorder.KindSessionStart, s, "", map[string]any{"session_id": s, "transport": "http"})
	}
	for i := range 6 {
		s, call := []string{"sess-a", "sess-b"}[i%2], fmt.Sprintf("call-%d", i)
		app(recorder.KindCallIntent, s, call, map[string]any{"tool": "read_file",
			"target": "docs", "arguments": map[string]any{"path": call + ".md"},
			"decision": map[string]any{"outcome": "allow"}})
		app(recorder.KindCallCompletion, s, call, map[string]any{"outcome": "ok",
			"result": map[string]any{"content": "text of " + call}})
	}
	must(t, r.Close())
	// Opening again catches the key table up with every record.
	r, err = recorder.Open(path, recorder.Options{})
	must(t, err)
	must(t, r.Close())

	show := func(session string) string {
		t.Helper()
		code, out := run(t, "audit", "show", session, "--db", path)
		if code != 0 {
			t.Fatalf("show %s: exit %d\n%s", session, code, out)
		}
		return out
	}
	verify := func() (int, string) { return run(t, "audit", "verify", "--db", path) }
	wantA, wantB := show("sess-a"), show("sess-b")
	wantCode, wantVerify := verify()
	if wantCode != 0 {
		t.Fatalf("verify of the untouched transcript: exit %d\n%s", wantCode, wantVerify)
	}

	db, err := recorder.OpenDB(path, "normal")
	must(t, err)
	res, err := db.Exec(`UPDATE record_keys SET session_id = 'sess-b'
		WHERE call_id = 'call-2' AND kind = 'call_intent'`)
	must(t, err)
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("the key row of call-2's intent was not there to edit (%d rows)", n)
	}
	must(t, db.Close())

	if got := show("sess-a"); got != wantA {
		t.Errorf("show sess-a after the key edit:\n%s\nwant:\n%s", got, wantA)
	}
	if got := show("sess-b"); got != wantB {
		t.Errorf("show sess-b after the key edit:\n%s\nwant:\n%s", got, wantB)
	}
	if code, out := verify(); code != wantCode || out != wantVerify {
		t.Errorf("verify after the key edit: exit %d\n%s\nwant exit %d\n%s", code, out,
			wantCode, wantVerify)
	}

	// An edited record still fails verification, key table or not.
	db, err = recorder.OpenDB(path, "normal")
	must(t, err)
	_, err = db.Exec(`UPDATE records SET body = '{"tool":"run_shell"}'
		WHERE call_id = 'call-2' AND kind = 'call_intent'`)
	must(t, err)
	must(t, db.Close())
	if code, out := verify(); code != 2 {
		t.Errorf("verify of an edited record: exit %d\n%s", code, out)
	}
}
