package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-guard/mcp-guard/app"
	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/recorder"
)

// transcript is a real guard's transcript: the guard served calls over
// HTTP on loopback, then shut down.
type transcript struct {
	dir     string
	cfgPath string
	db      string
	pub     string
	calls   map[string]string // name -> outcome the client saw
	request string            // the approval request of the touch call
	session string
}

// guardCalls are the calls the fixture makes, by name.
var guardCalls = []struct {
	name, tool string
	args       map[string]any
}{
	{"readme", "read_file", map[string]any{"target": "docs", "path": "README.md"}},
	{"dotenv", "read_file", map[string]any{"target": "docs", "path": ".env"}},
	{"echo", "run_shell", map[string]any{"target": "local", "command": "echo hello from the shell"}},
	{"outside", "read_file", map[string]any{"target": "docs", "path": "../outside.txt"}},
	{"unknown", "read_file", map[string]any{"target": "nowhere", "path": "x"}},
	{"touch", "run_shell", map[string]any{"target": "local", "command": "touch made-by-guard"}},
}

func newTranscript(t *testing.T) *transcript {
	t.Helper()
	dir := t.TempDir()
	tr := &transcript{dir: dir, calls: map[string]string{}}
	for _, d := range []string{"root", "work", "var"} {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	write := func(rel, content string, mode os.FileMode) {
		must(t, os.WriteFile(filepath.Join(dir, rel), []byte(content), mode))
	}
	write("root/README.md", "# Reports\nQuarterly numbers.\n", 0o644)
	write("root/.env", "TOKEN=abc\n", 0o600)
	write("outside.txt", "not yours\n", 0o644)
	tr.cfgPath = filepath.Join(dir, "mcp-guard.yaml")
	write("mcp-guard.yaml", `identity:
  {subject: alice, email: alice@example.com, groups: [developers]}
recorder: {path: var/mcp-guard.db}
approvals:
  wait: 10ms
  people:
    - {email: bob@example.com, groups: [approvers]}
targets:
  - {name: docs, kind: files, roots: [root], labels: {env: staging}}
  - {name: local, kind: shell, workdir: work}
`, 0o644)
	tr.db = filepath.Join(dir, "var", "mcp-guard.db")
	tr.pub = filepath.Join(dir, "var", "recorder-signing.pub")

	cfg, err := config.Load(tr.cfgPath)
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	noEnv := func(string) string { return "" }
	a, err := app.Build(ctx, cfg, app.Options{Stderr: io.Discard, Getenv: noEnv})
	must(t, err)
	serveCtx, stop := context.WithCancel(ctx)
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- a.ServeHTTP(serveCtx, "127.0.0.1:0", func(l net.Addr) { addrc <- l }) }()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}

	c, err := client.NewStreamableHttpClient("http://" + addr.String() + "/mcp")
	must(t, err)
	must(t, c.Start(ctx))
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "audit-test", Version: "1.0"}
	_, err = c.Initialize(ctx, init)
	must(t, err)
	call := func(tool string, args map[string]any) *mcp.CallToolResult {
		t.Helper()
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = tool, args
		res, err := c.CallTool(ctx, req)
		must(t, err)
		return res
	}
	var touch map[string]any
	for _, gc := range guardCalls {
		res := call(gc.tool, gc.args)
		tr.calls[gc.name] = outcomeOf(res)
		if gc.name == "touch" {
			touch, tr.request = gc.args, requestOf(res)
		}
	}
	// Bob approves the pending call with the approvals command, and the
	// same call, made again, runs.
	code, out := run(t, "approvals", "approve", tr.request,
		"--as", "bob@example.com", "--config", tr.cfgPath)
	if code != 0 {
		t.Fatalf("approvals approve: %d\n%s", code, out)
	}
	tr.calls["touch again"] = outcomeOf(call("run_shell", touch))
	c.Close()
	stop()
	must(t, <-done)
	a.Close()
	return tr
}

// outcomeOf is the guard's outcome in a result: "ok" for a call that ran.
func outcomeOf(res *mcp.CallToolResult) string {
	raw, _ := json.Marshal(res.StructuredContent)
	var sc struct {
		Guard struct{ Outcome string } `json:"guard"`
	}
	_ = json.Unmarshal(raw, &sc)
	if sc.Guard.Outcome == "" {
		return "ok"
	}
	return sc.Guard.Outcome
}

func requestOf(res *mcp.CallToolResult) string {
	raw, _ := json.Marshal(res.StructuredContent)
	var sc struct {
		Guard struct {
			RequestID string `json:"request_id"`
		} `json:"guard"`
	}
	_ = json.Unmarshal(raw, &sc)
	return sc.Guard.RequestID
}

// run runs the command line and returns its exit code and output.
func run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String() + errOut.String()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// copyDB copies the database at from, with its journal, as a backup
// must.
func copyDB(t *testing.T, from string) string {
	t.Helper()
	data, err := os.ReadFile(from)
	must(t, err)
	to := filepath.Join(t.TempDir(), "copy.db")
	must(t, os.WriteFile(to, data, 0o600))
	jnl, err := os.ReadFile(recorder.JournalPath(from))
	must(t, err)
	must(t, os.WriteFile(recorder.JournalPath(to), jnl, 0o600))
	return to
}

func TestTranscriptFixture(t *testing.T) {
	tr := newTranscript(t)
	want := map[string]string{
		"readme": "ok", "dotenv": "denied", "echo": "ok", "outside": "denied",
		"unknown": "invalid", "touch": "approval_pending", "touch again": "ok",
	}
	for name, o := range want {
		if tr.calls[name] != o {
			t.Errorf("call %s: outcome %q, want %q", name, tr.calls[name], o)
		}
	}
}

func TestAuditVerify(t *testing.T) {
	tr := newTranscript(t)
	other := filepath.Join(t.TempDir(), "other.pub")
	otherKey, err := recorder.SigningKey("", filepath.Join(filepath.Dir(other), "x.db"))
	must(t, err)
	must(t, recorder.WritePublicKey(other, otherKey.Public().(ed25519.PublicKey)))

	tests := []struct {
		name   string
		tamper string // SQL run on a copy first
		args   []string
		code   int
		want   []string
	}{
		{"untouched, configured key", "", []string{"--config", tr.cfgPath}, 0,
			[]string{"OK, the chain verifies", "signatures checked against " + tr.pub,
				"0 record(s) after it unsigned"}},
		{"copy with the key given", "", []string{"--public-key", tr.pub}, 0,
			[]string{"OK, the chain verifies"}},
		{"copy without a key", "", nil, 0,
			[]string{"OK, the chain verifies", "WARNING: no trusted public key"}},
		{"body edited", `UPDATE records SET body = replace(body, 'README.md', 'notes.md') WHERE seq = 2`,
			[]string{"--public-key", tr.pub}, exitTampered,
			[]string{"TAMPERED", "seq 2 (call_intent): edited"}},
		{"record deleted", `DELETE FROM records WHERE seq = 5`,
			[]string{"--public-key", tr.pub}, exitTampered,
			[]string{"seq 5 (missing): deleted: record 5 is missing between " +
				"seq 4 (call_intent) and seq 6 (call_intent)"}},
		{"records swapped", `UPDATE records SET seq = -1 WHERE seq = 3;
			UPDATE records SET seq = 3 WHERE seq = 7; UPDATE records SET seq = 7 WHERE seq = -1`,
			[]string{"--public-key", tr.pub}, exitTampered,
			[]string{"seq 3 (call_completion): reordered: it was written as seq 7"}},
		{"another key", "", []string{"--public-key", other}, exitTampered,
			[]string{"unknown_key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"audit", "verify"}, tt.args...)
			if !slices.Contains(tt.args, "--config") {
				db := copyDB(t, tr.db)
				if tt.tamper != "" {
					rw, err := recorder.OpenDB(db, "normal")
					must(t, err)
					_, err = rw.Exec(tt.tamper)
					rw.Close()
					must(t, err)
				}
				args = append(args, "--db", db)
			}
			code, out := run(t, args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s", code, tt.code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}

	// --json gives the report for scripts.
	code, out := run(t, "audit", "verify", "--db", tr.db, "--public-key", tr.pub, "--json")
	var rep recorder.Report
	err = json.Unmarshal([]byte(out), &rep)
	if err != nil || code != 0 || !rep.OK() || rep.Checkpoints < 1 {
		t.Errorf("verify --json: exit %d, %v\n%s", code, err, out)
	}
}

func TestAuditSessionsAndShow(t *testing.T) {
	tr := newTranscript(t)
	code, out := run(t, "audit", "sessions", "--config", tr.cfgPath)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("sessions: exit %d\n%s", code, out)
	}
	row := strings.Fields(lines[1])
	// id, started (2 fields), last (2), transport, client (2), caller, calls, ended
	if len(row) != 11 || row[5] != "http" || row[6] != "audit-test" || row[8] != "alice@example.com" ||
		row[9] != "7" || row[10] != "yes" {
		t.Errorf("session row = %q", row)
	}
	if code, out := run(t, "audit", "sessions", "--config", tr.cfgPath, "--caller", "bob"); code != 0 ||
		strings.Count(out, "\n") != 1 {
		t.Errorf("sessions --caller bob: exit %d\n%s", code, out)
	}

	code, out = run(t, "audit", "show", row[0][:13], "--db", tr.db, "--max-result", "60")
	if code != 0 {
		t.Fatalf("show: exit %d\n%s", code, out)
	}
	t.Logf("audit show:\n%s", out)
	// Each call in order, with what an auditor asks: who, what, where,
	// decided how and why, approved by whom, and what came back.
	want := []string{
		"session " + row[0],
		"transport  http, client audit-test 1.0, protocol",
		"caller     alice@example.com (subject alice; groups developers)",
		"read_file on docs", `arguments  {"path":"README.md","target":"docs"}`, "decision   allow",
		"outcome    ok in", `result     {"content":"# Reports\nQuarterly numbers.\n"`,
		"read_file on docs", `{"path":".env","target":"docs"}`, "decision   deny",
		"reasons    .env is a secret file (an environment file)", "outcome    denied in",
		"run_shell on local", "echo hello from the shell", "outcome    ok in",
		`"stdout":"hello from`, "… [60 of 97 bytes shown]",
		"reasons    ../outside.txt is outside the target's roots",
		"read_file on nowhere", `outcome    invalid in 0 ms: unknown target "nowhere"`,
		"run_shell on local", "decision   approval",
		"reasons    touch is not on the read-only list and needs approval",
		"opened request " + tr.request + " (state pending)",
		"executed request " + tr.request,
		"outcome    approval_pending in",
		"run_shell on local", "decision   approval", "outcome    ok in",
		"session ended",
	}
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("show lacks %q after what came before:\n%s", w, out)
		}
		rest = rest[i+len(w):]
	}
	_, out = run(t, "audit", "show", "nope", "--db", tr.db)
	if !strings.Contains(out, `no session "nope"`) {
		t.Errorf("show of an unknown session: %s", out)
	}
}

// docHash is the record hash as docs/audit.md defines it.
func docHash(r exportRecord) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("mcp-guard/record/v1\n%d\n%s\n%s\n%s\n%s\n%s\n%s",
		r.Seq, r.At, r.Kind, r.SessionID, r.CallID, r.PrevHash, r.Body)))
	return hex.EncodeToString(h[:])
}

func TestAuditExport(t *testing.T) {
	tr := newTranscript(t)
	pub, err := recorder.ReadPublicKey(tr.pub)
	must(t, err)
	tests := []struct {
		name    string
		filters []string
		calls   int
	}{
		{"all", nil, 7},
		{"tool", []string{"--tool", "read_file"}, 4},
		{"outcome", []string{"--outcome", "denied"}, 2},
		{"target", []string{"--target", "local"}, 3},
		{"caller by email", []string{"--caller", "alice@example.com"}, 7},
		{"another caller", []string{"--caller", "bob"}, 0},
		{"tool and outcome", []string{"--tool", "run_shell", "--outcome", "ok"}, 2},
		{"approval pending", []string{"--outcome", "approval_pending"}, 1},
		{"time window", []string{"--since", "2000-01-01", "--until", "2000-01-02T00:00:00Z"}, 0},
		{"since long ago", []string{"--since", "2000-01-01"}, 7},
	}
	for _, format := range []string{"jsonl", "csv"} {
		for _, tt := range tests {
			t.Run(format+"/"+tt.name, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "export."+format)
				args := append([]string{"audit", "export", "--config", tr.cfgPath,
					"--format", format, "--out", out}, tt.filters...)
				if code, msg := run(t, args...); code != 0 {
					t.Fatalf("exit %d: %s", code, msg)
				}
				st, err := os.Stat(out)
				must(t, err)
				if st.Mode().Perm() != 0o600 {
					t.Errorf("export mode %v, want 0600", st.Mode().Perm())
				}
				var calls []exportCall
				var m manifest
				if format == "jsonl" {
					calls, m = readJSONL(t, out)
				} else {
					calls, m = readCSV(t, out)
				}
				if len(calls) != tt.calls || m.Calls != int64(tt.calls) {
					t.Fatalf("%d calls, manifest says %d; want %d", len(calls), m.Calls, tt.calls)
				}
				checkExport(t, calls, m, pub)
			})
		}
	}

	if code, out := run(t, "audit", "export", "--config", tr.cfgPath, "--format", "xml"); code == 0 ||
		!strings.Contains(out, "use jsonl, csv or chain") {
		t.Errorf("bad format: exit %d, %s", code, out)
	}
	if code, out := run(t, "audit", "export", "--config", tr.cfgPath, "--since", "yesterday"); code == 0 ||
		!strings.Contains(out, "--since") {
		t.Errorf("bad time: exit %d, %s", code, out)
	}
}

// checkExport checks what a third party would: every record matches its
// hash, the calls are what the guard saw, and the manifest's checkpoint
// is signed by the guard's key.
func checkExport(t *testing.T, calls []exportCall, m manifest, pub ed25519.PublicKey) {
	t.Helper()
	for _, c := range calls {
		first := exportRecord{}
		if len(c.Records) > 0 {
			first = c.Records[0]
		}
		if first.Kind != recorder.KindCallIntent || first.CallID != c.CallID {
			t.Fatalf("call %s: records %+v do not start with its intent", c.CallID, c.Records)
		}
		for _, r := range c.Records {
			if docHash(r) != r.Hash {
				t.Errorf("call %s: record %d does not match its hash", c.CallID, r.Seq)
			}
		}
		opened := len(c.Approvals) > 0 && c.Approvals[0].Event == "approval_opened"
		if c.Outcome == "approval_pending" && !opened {
			t.Errorf("pending call without its approval_opened event: %+v", c.Approvals)
		}
	}
	if m.Type != "manifest" || m.Format != ExportFormat || m.Checkpoint == nil ||
		m.HeadSeq != m.Checkpoint.Seq {
		t.Fatalf("manifest = %+v", m)
	}
	if docHash(*m.Checkpoint) != m.Checkpoint.Hash || m.HeadHash != m.Checkpoint.Hash {
		t.Error("the manifest's checkpoint record does not match its hash or the head")
	}
	cp, err := recorder.ParseCheckpoint([]byte(m.Checkpoint.Body))
	must(t, err)
	if !cp.Check(pub) || cp.Signature != m.Signature || cp.UptoSeq != m.CheckpointUptoSeq {
		t.Errorf("manifest checkpoint %+v does not verify with the guard's key", cp)
	}
}

func readJSONL(t *testing.T, path string) ([]exportCall, manifest) {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	var calls []exportCall
	var m manifest
	for _, ln := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var probe struct{ Type string }
		must(t, json.Unmarshal([]byte(ln), &probe))
		switch probe.Type {
		case "call":
			var c exportCall
			must(t, json.Unmarshal([]byte(ln), &c))
			calls = append(calls, c)
		case "manifest":
			must(t, json.Unmarshal([]byte(ln), &m))
		default:
			t.Fatalf("unexpected line %s", ln)
		}
	}
	return calls, m
}

func readCSV(t *testing.T, path string) ([]exportCall, manifest) {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	must(t, err)
	if !slices.Equal(rows[0], csvHeader) {
		t.Fatalf("header = %v", rows[0])
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	var calls []exportCall
	var m manifest
	for _, r := range rows[1:] {
		if r[0] == "#manifest" {
			must(t, json.Unmarshal([]byte(r[1]), &m))
			continue
		}
		get := func(k string) string { return r[col[k]] }
		c := exportCall{CallID: get("call_id"), SessionID: get("session_id"), Outcome: get("outcome")}
		for _, kind := range []string{"intent", "completion"} {
			if get(kind+"_seq") == "" {
				continue
			}
			seq, err := strconv.ParseInt(get(kind+"_seq"), 10, 64)
			must(t, err)
			c.Records = append(c.Records, exportRecord{Seq: seq, At: get(kind + "_at"),
				Kind: "call_" + kind, SessionID: c.SessionID, CallID: c.CallID,
				PrevHash: get(kind + "_prev_hash"), Hash: get(kind + "_hash"), Body: get(kind + "_body")})
		}
		if ar := get("approval_records"); ar != "" {
			var recs []exportRecord
			must(t, json.Unmarshal([]byte(ar), &recs))
			c.Records = append(c.Records, recs...)
			var av approvalView
			must(t, json.Unmarshal([]byte(recs[0].Body), &av))
			c.Approvals = append(c.Approvals, approvalLine{approvalView: av})
		}
		calls = append(calls, c)
	}
	return calls, m
}

// policyDir writes the bundled policy to a directory, with extra rules.
func policyDir(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	for _, m := range policy.Bundled() {
		if strings.HasSuffix(m.Name, "_test.rego") {
			continue
		}
		must(t, os.WriteFile(filepath.Join(dir, filepath.Base(m.Name)), []byte(m.Source), 0o644))
	}
	if extra != "" {
		must(t, os.WriteFile(filepath.Join(dir, "extra.rego"), []byte(extra), 0o644))
	}
	return dir
}

func TestAuditReplay(t *testing.T) {
	tr := newTranscript(t)

	// The policy that decided, replayed on what was recorded, decides the
	// same: the recorded input is complete enough to replay.
	code, out := run(t, "audit", "replay", "--config", tr.cfgPath, "--policy", policyDir(t, ""))
	if code != 0 || strings.TrimSpace(out) != "replayed 6 call(s): 0 would change, 6 unchanged; "+
		"1 skipped (stopped before the policy)" {
		t.Fatalf("replay with the same policy: exit %d\n%s", code, out)
	}

	strict := policyDir(t, `package mcpguard

import rego.v1

deny contains "reading files is switched off" if input.tool == "read_file"
`)
	code, out = run(t, "audit", "replay", "--config", tr.cfgPath, "--policy", strict)
	t.Logf("replay with a stricter policy:\n%s", out)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	want := []string{
		"read_file on docs", "allow -> deny", "was: -", "now: reading files is switched off",
		"read_file on docs", "deny -> deny", "was: .env is a secret file (an environment file)",
		"now: .env is a secret file (an environment file); reading files is switched off",
		"read_file on docs", "deny -> deny", "was: ../outside.txt is outside the target's roots",
		"replayed 6 call(s): 3 would change, 3 unchanged; 1 skipped (stopped before the policy) " +
			"[allow -> deny: 1, deny -> deny: 2]",
	}
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("replay output lacks %q after what came before", w)
		}
		rest = rest[i+len(w):]
	}
	if strings.Contains(out, "run_shell") {
		t.Error("replay reports run_shell calls the stricter policy does not change")
	}

	// Filters apply; without --config the labels are unknown, and it says so.
	code, out = run(t, "audit", "replay", "--db", tr.db, "--policy", strict, "--outcome", "ok")
	if code != 0 || !strings.Contains(out, "replayed 3 call(s): 1 would change") ||
		!strings.Contains(out, "without --config, target labels were empty") {
		t.Errorf("replay --outcome ok: exit %d\n%s", code, out)
	}
	if code, out := run(t, "audit", "replay", "--db", tr.db, "--policy", t.TempDir()); code == 0 {
		t.Errorf("replay against an empty policy directory: exit 0\n%s", out)
	}
}

func TestAuditPrune(t *testing.T) {
	tr := newTranscript(t)
	db := copyDB(t, tr.db)
	key := filepath.Join(tr.dir, "var", recorder.DefaultSigningKeyName)
	count := func() int {
		t.Helper()
		ro, err := recorder.OpenReadOnly(db)
		must(t, err)
		defer ro.Close()
		var n int
		must(t, ro.QueryRow(`SELECT count(*) FROM records`).Scan(&n))
		return n
	}
	before := count()

	code, out := run(t, "audit", "prune", "--db", db, "--before", "2000-01-01")
	if code != 0 || !strings.Contains(out, "nothing to prune") {
		t.Errorf("prune of nothing: exit %d\n%s", code, out)
	}
	future := time.Now().AddDate(1, 0, 0).Format("2006-01-02")
	code, out = run(t, "audit", "prune", "--db", db, "--before", future, "--dry-run")
	wouldDelete := fmt.Sprintf("would delete %d record(s)", before)
	if code != 0 || !strings.Contains(out, wouldDelete) || count() != before {
		t.Errorf("dry run: exit %d, %d records left of %d\n%s", code, count(), before, out)
	}

	code, out = run(t, "audit", "prune", "--db", db, "--before", future, "--signing-key", key)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("deleted %d record(s)", before)) {
		t.Fatalf("prune: exit %d\n%s", code, out)
	}
	if n := count(); n != 2 {
		t.Errorf("%d records after pruning everything, want the prune record and its checkpoint", n)
	}
	code, out = run(t, "audit", "verify", "--db", db, "--public-key", tr.pub)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("pruned:      seq 1 to %d", before)) {
		t.Errorf("verify after prune: exit %d\n%s", code, out)
	}

	// The live database, through the configuration: refuses a bad date.
	if code, out := run(t, "audit", "prune", "--config", tr.cfgPath, "--before", "last week"); code == 0 ||
		!strings.Contains(out, "--before") {
		t.Errorf("bad --before: exit %d\n%s", code, out)
	}
}

// The script in docs/audit.md checks exports as a third party would.
func TestAuditExportScript(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	doc, err := os.ReadFile("../../docs/audit.md")
	must(t, err)
	m := regexp.MustCompile("(?s)```python\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/audit.md has no python block")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "verify_export.py")
	must(t, os.WriteFile(script, m[1], 0o755))
	signed := exec.Command("python3", "-c", "import cryptography").Run() == nil

	tr := newTranscript(t)
	check := func(format string, tamper func([]byte) []byte) (string, error) {
		t.Helper()
		path := filepath.Join(dir, format+".jsonl")
		code, out := run(t, "audit", "export", "--config", tr.cfgPath, "--format", format, "--out", path)
		if code != 0 {
			t.Fatalf("export: %s", out)
		}
		if tamper != nil {
			data, err := os.ReadFile(path)
			must(t, err)
			must(t, os.WriteFile(path, tamper(data), 0o600))
		}
		res, err := exec.Command("python3", script, path, tr.pub).CombinedOutput()
		return string(res), err
	}
	for _, format := range []string{"chain", "jsonl"} {
		out, err := check(format, nil)
		if err != nil || !strings.HasPrefix(out, "OK: ") {
			t.Errorf("%s export: %v\n%s", format, err, out)
		}
		if signed && !strings.Contains(out, "signature valid\n") {
			t.Errorf("%s export: signature not checked:\n%s", format, out)
		}
	}
	tampers := map[string]func([]byte) []byte{
		"edited": func(b []byte) []byte {
			return bytes.Replace(b, []byte(`hello from the shell`), []byte(`hello from the sea!!`), 1)
		},
		"line dropped": func(b []byte) []byte {
			lines := bytes.SplitAfter(b, []byte("\n"))
			return bytes.Join(append(lines[:3:3], lines[4:]...), nil)
		},
		"cut short": func(b []byte) []byte {
			lines := bytes.SplitAfter(b, []byte("\n"))
			return bytes.Join(lines[:len(lines)-2], nil)
		},
	}
	for name, tamper := range tampers {
		out, err := check("chain", tamper)
		if err == nil || !strings.Contains(out, "FAIL: ") {
			t.Errorf("chain export %s: the script accepted it\n%s", name, out)
		}
	}
}

// TestAuditShowNeedsASession checks that audit show without a session id
// says where to find one.
func TestAuditShowNeedsASession(t *testing.T) {
	code, out := run(t, "audit", "show", "--db", filepath.Join(t.TempDir(), "none.db"))
	if code == 0 || !strings.Contains(out, "audit sessions lists them") {
		t.Fatalf("exit %d, output %q", code, out)
	}
}
