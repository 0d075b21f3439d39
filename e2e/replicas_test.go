package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/mcp-guard/mcp-guard/internal/pgtest"
	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/recorder"
)

// The multi-replica world: three guard processes on one PostgreSQL store,
// one signed policy bundle served on loopback, one fake Slack.

const (
	storeEnv       = "MCP_GUARD_STORE_DSN"
	bundleRevision = "e2e-r1"
)

// replica is one guard process serving HTTP.
type replica struct {
	name   string
	cmd    *exec.Cmd
	base   string
	stderr *syncBuffer
	exited chan struct{}
	mcp    *client.Client
}

// replicaWorld is the shared setup of TestReplicas.
type replicaWorld struct {
	f       *fixture
	slack   *slackFake
	store   *pgtest.DB
	policyV string // the version the bundle's modules give
	// policyDir holds the bundle's modules as files, for audit replay.
	policyDir string
	answered  []answer
}

// answer is one call a client got an answer to.
type answer struct {
	replica, sql, outcome, requestID string
}

func newReplicaWorld(t *testing.T) *replicaWorld {
	t.Helper()
	w := &replicaWorld{slack: newSlackFake(t)}
	w.store = pgtest.Start(t).NewDatabase(t, "")
	bundleURL, pubFile, mods := serveBundle(t)
	w.policyV = policy.Version(mods)
	w.policyDir = t.TempDir()
	for _, m := range mods {
		p := filepath.Join(w.policyDir, m.Name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(m.Source), 0o644))
	}

	extra := fmt.Sprintf(`policy:
  bundle: {url: "%s", public_key_file: "%s", poll: 1m}
http: {shutdown_timeout: 20s}
approvals:
  wait: 60s
  expiry: 5m
  slack:
    bot_token_env: SLACK_BOT_TOKEN
    signing_secret_env: SLACK_SIGNING_SECRET
    channel: %s
    api_url: "%s"
%s`, bundleURL, pubFile, slackChannel, w.slack.apiURL(), approvalPeople)
	f := newFixture(t, extra)
	w.f = f

	// The replicas share one store; the recorder path stays, for keys.
	raw := readFile(t, f.cfgPath)
	raw = regexp.MustCompile(`(?m)^recorder: \{path: ([^}]*)\}$`).
		ReplaceAllString(raw, "recorder: {path: $1, postgres_dsn_env: "+storeEnv+"}")
	if !strings.Contains(raw, storeEnv) {
		t.Fatalf("could not point the recorder at the store:\n%s", raw)
	}
	must(t, os.WriteFile(f.cfgPath, []byte(raw), 0o644))

	// A shop database of its own: the approved updates change it.
	f.db = pgtest.AppDB(t)
	for i, kv := range f.env {
		if strings.HasPrefix(kv, "APPDB_DSN=") {
			f.env[i] = "APPDB_DSN=" + f.db.DSN()
		}
	}
	f.env = append(f.env, storeEnv+"="+w.store.DSN(),
		"SLACK_BOT_TOKEN="+slackToken, "SLACK_SIGNING_SECRET="+slackSecret)
	return w
}

// serveBundle signs the default policy, under paths of its own so that
// its version differs from the built-in default's, and serves it on
// loopback. It returns the URL, the public key file and the modules.
func serveBundle(t *testing.T) (string, string, []policy.Module) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	must(t, err)
	pubFile := filepath.Join(t.TempDir(), "bundle.pub")
	must(t, os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644))

	b := bundle.Bundle{Manifest: bundle.Manifest{Revision: bundleRevision}, Data: map[string]any{}}
	var mods []policy.Module
	for _, m := range policy.Bundled() {
		if strings.HasSuffix(m.Name, "_test.rego") {
			continue
		}
		name := "mcpguard/" + filepath.Base(m.Name)
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: "/" + name, Path: "/" + name,
			Raw: []byte(m.Source)})
		mods = append(mods, policy.Module{Name: name, Source: m.Source})
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	must(t, b.GenerateSignature(bundle.NewSigningConfig(string(priv), "RS256", ""),
		policy.DefaultBundleKeyID, false))
	var buf bytes.Buffer
	must(t, bundle.NewWriter(&buf).DisableFormat(true).Write(b))

	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/gzip")
		_, _ = rw.Write(buf.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/bundles/mcp-guard.tar.gz", pubFile, mods
}

// start runs a replica and connects an MCP client to it. It is stopped
// with SIGINT at cleanup if still running.
func (w *replicaWorld) start(ctx context.Context, t *testing.T, name string) *replica {
	t.Helper()
	r := &replica{name: name, stderr: &syncBuffer{}}
	r.cmd = exec.Command(guardBinary(t), "serve", "--config", w.f.cfgPath, "--http", "127.0.0.1:0")
	r.cmd.Env, r.cmd.Dir = w.f.env, w.f.dir
	srv := startServing(t, r.cmd, r.stderr, 60*time.Second)
	r.base, r.exited = srv.base, srv.exited

	tr, err := transport.NewStreamableHTTP(r.base + "/mcp")
	must(t, err)
	r.mcp = client.NewClient(tr)
	must(t, r.mcp.Start(ctx))
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "e2e-replicas", Version: "1.0"}
	if _, err := r.mcp.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize %s: %v", name, err)
	}
	t.Cleanup(func() { r.mcp.Close() })
	return r
}

// call sends one query_database call to r. A transport error is
// returned, not fatal: a killed replica's call ends that way.
func (w *replicaWorld) call(ctx context.Context, r *replica, stmt string) (map[string]any, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = "query_database"
	req.Params.Arguments = sqlArgs("appdb", stmt)
	res, err := r.mcp.CallTool(ctx, req)
	if err != nil {
		return nil, err
	}
	raw, _ := json.Marshal(res)
	var generic map[string]any
	_ = json.Unmarshal(raw, &generic)
	return generic, nil
}

// asyncCall is a call in flight.
type asyncCall struct {
	res map[string]any
	err error
}

func (w *replicaWorld) callAsync(ctx context.Context, r *replica, stmt string) <-chan asyncCall {
	out := make(chan asyncCall, 1)
	go func() {
		res, err := w.call(ctx, r, stmt)
		out <- asyncCall{res, err}
	}()
	return out
}

// await waits for an asynchronous call that must be answered, notes the
// answer and returns it. request is the approval request the call is
// known to go through; a call that ran does not show it to the client.
func (w *replicaWorld) await(t *testing.T, r *replica, stmt, request string,
	ch <-chan asyncCall) map[string]any {
	t.Helper()
	select {
	case got := <-ch:
		if got.err != nil {
			t.Fatalf("call on %s: %v\nstderr:\n%s", r.name, got.err, r.stderr)
		}
		w.note(r, stmt, got.res)
		if request != "" {
			w.answered[len(w.answered)-1].requestID = request
		}
		return got.res
	case <-time.After(45 * time.Second):
		t.Fatalf("call on %s was not answered:\n%s", r.name, r.stderr)
	}
	return nil
}

// note keeps an answer to check against the transcript.
func (w *replicaWorld) note(r *replica, stmt string, res map[string]any) {
	outcome := guardOutcome(res)
	if outcome == "" && res["isError"] != true {
		outcome = "ok"
	}
	w.answered = append(w.answered, answer{replica: r.name, sql: stmt, outcome: outcome,
		requestID: guardField(res, "request_id")})
}

// clickOn presses a Slack button on r's interactions endpoint.
func clickOn(t *testing.T, r *replica, user, id, action string) {
	t.Helper()
	body := clickBody(user, id, action)
	req, err := http.NewRequest(http.MethodPost, r.base+"/slack/interactions", strings.NewReader(body))
	must(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range signedHeaders(body, time.Now()) {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("click on %s: %d", r.name, resp.StatusCode)
	}
}

// cli runs an mcp-guard command against the shared configuration.
func (w *replicaWorld) cli(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(guardBinary(t), append(args, "--config", w.f.cfgPath)...)
	cmd.Env, cmd.Dir = w.f.env, w.f.dir
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	must(t, err)
	return string(out), 0
}

// get fetches an operations endpoint.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// newPost waits for the next approval message and returns its request.
func (w *replicaWorld) newPost(t *testing.T, n int) string {
	t.Helper()
	return requestID(t, w.slack.waitCount(t, "chat.postMessage", n)[n-1])
}

func TestReplicas(t *testing.T) {
	w := newReplicaWorld(t)
	ctx := testContext(t)
	// One at a time: the first creates the key files the others share.
	a := w.start(ctx, t, "a")
	b := w.start(ctx, t, "b")
	c := w.start(ctx, t, "c")

	// Every replica is ready and runs the bundle's policy.
	for _, r := range []*replica{a, b, c} {
		if code, body := get(t, r.base+"/readyz"); code != http.StatusOK {
			t.Fatalf("%s /readyz: %d %s", r.name, code, body)
		}
		_, m := get(t, r.base+"/metrics")
		want := fmt.Sprintf(`mcp_guard_policy_info{revision=%q,version=%q} 1`, bundleRevision, w.policyV)
		if !strings.Contains(m, want) {
			t.Fatalf("%s /metrics lacks %s", r.name, want)
		}
	}

	// Calls spread over the three.
	for i, r := range []*replica{a, b, c, a, b, c} {
		stmt := fmt.Sprintf("SELECT %d AS n, 'spread' AS kind", i)
		res, err := w.call(ctx, r, stmt)
		if err != nil || res["isError"] == true {
			t.Fatalf("select on %s: %v %v", r.name, err, res)
		}
		w.note(r, stmt, res)
	}

	// Requested on a, approved through b's Slack endpoint: b's decision
	// wakes the call waiting on a.
	first := "UPDATE orders SET status='refunded' WHERE id = 3"
	waiting := w.callAsync(ctx, a, first)
	id1 := w.newPost(t, 1)
	clickOn(t, b, "U0CAROL", id1, "approve")
	if res := w.await(t, a, first, id1, waiting); res["isError"] == true {
		t.Fatalf("the approved call on a did not run: %v", res)
	}
	if got := w.f.db.Query(t, "SELECT status FROM orders WHERE id = 3")[0][0]; got != "refunded" {
		t.Fatalf("order 3 is %q after the approved update", got)
	}

	// c is killed while a call waits; the re-call on a resumes the same
	// request, which the CLI approves through the shared store.
	second := "UPDATE orders SET status='refunded' WHERE id = 4"
	lost := w.callAsync(ctx, c, second)
	id2 := w.newPost(t, 2)
	// Killed once the message is stored; killed between posting and
	// storing, the next Open would post again, by design.
	waitUntil(t, "the stored message of "+id2, func() bool {
		rows := w.store.Query(t, "SELECT slack_ts FROM approval_requests WHERE id = '"+id2+"'")
		return len(rows) == 1 && rows[0][0] != ""
	})
	must(t, c.cmd.Process.Signal(syscall.SIGKILL))
	<-c.exited
	if got := <-lost; got.err == nil {
		t.Fatalf("the call on the killed replica was answered: %v", got.res)
	}
	resumed := w.callAsync(ctx, a, second)
	if out, code := w.cli(t, "approvals", "approve", id2, "--as", "carol@example.com"); code != 0 {
		t.Fatalf("approvals approve: %d\n%s", code, out)
	}
	if res := w.await(t, a, second, id2, resumed); res["isError"] == true {
		t.Fatalf("the re-call on a did not run: %v", res)
	}
	if n := len(w.slack.of("chat.postMessage")); n != 2 {
		t.Errorf("%d approval messages, want 2: the re-call must not post again", n)
	}

	// b is stopped while a call waits: it answers approval_pending with
	// the request at once and exits cleanly; the re-call on a resumes.
	third := "UPDATE orders SET status='refunded' WHERE id = 5"
	pending := w.callAsync(ctx, b, third)
	id3 := w.newPost(t, 3)
	must(t, b.cmd.Process.Signal(syscall.SIGTERM))
	res := w.await(t, b, third, "", pending)
	if o, got := guardOutcome(res), guardField(res, "request_id"); o != "approval_pending" || got != id3 {
		t.Fatalf("the call waiting on the stopped replica: %s %s, want approval_pending %s", o, got, id3)
	}
	<-b.exited
	if code := b.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("b exited %d after SIGTERM:\n%s", code, b.stderr)
	}
	again := w.callAsync(ctx, a, third)
	clickOn(t, a, "U0CAROL", id3, "deny")
	res = w.await(t, a, third, "", again)
	if o := guardOutcome(res); o != "approval_denied" || guardField(res, "request_id") != id3 {
		t.Fatalf("the re-call after the denial: %v", res)
	}

	_, m := get(t, a.base+"/metrics")
	for _, want := range []string{`mcp_guard_calls_total{outcome="ok",tool="query_database"}`,
		`mcp_guard_calls_total{outcome="approval_denied",tool="query_database"}`,
		"mcp_guard_decision_seconds_count", "mcp_guard_execution_seconds_count",
		"mcp_guard_recorder_commit_seconds_count", "mcp_guard_approvals_pending 0",
		"mcp_guard_approval_waiting_calls 0", "mcp_guard_ready 1"} {
		if !strings.Contains(m, want) {
			t.Errorf("a's /metrics lacks %s", want)
		}
	}

	// Stop a too, then check the shared transcript.
	must(t, a.cmd.Process.Signal(os.Interrupt))
	<-a.exited
	if out, code := w.cli(t, "audit", "verify"); code != 0 {
		t.Fatalf("audit verify on the shared store: exit %d\n%s", code, out)
	}
	out, code := w.cli(t, "audit", "export")
	if code != 0 {
		t.Fatalf("audit export on the shared store: exit %d\n%s", code, out)
	}
	for _, id := range []string{id1, id2, id3} {
		if !strings.Contains(out, id) {
			t.Errorf("the export does not name request %s", id)
		}
	}
	// Replayed against the bundle's own files, no decision changes.
	out, code = w.cli(t, "audit", "replay", "--policy", w.policyDir)
	sum := regexp.MustCompile(`replayed (\d+) call\(s\): 0 would change`).FindStringSubmatch(out)
	if code != 0 || sum == nil || sum[1] == "0" {
		t.Fatalf("audit replay on the shared store: exit %d\n%s", code, out)
	}
	w.checkTranscript(t)
}

// checkTranscript reads the shared transcript: every answered call is
// there with its outcome and approval request, all on the bundle's policy
// version, and nothing else but the call the killed replica never
// answered.
func (w *replicaWorld) checkTranscript(t *testing.T) {
	t.Helper()
	db, err := recorder.OpenPostgresDB(context.Background(), w.store.DSN(), true)
	must(t, err)
	defer db.Close()

	recorded := map[string][]recorder.Call{} // by SQL
	err = recorder.Calls(context.Background(), db, recorder.CallFilter{}, func(c recorder.Call) error {
		var ib struct {
			Arguments     map[string]any `json:"arguments"`
			PolicyVersion string         `json:"policy_version"`
		}
		if err := json.Unmarshal(c.Intent.Body, &ib); err != nil {
			return err
		}
		if ib.PolicyVersion != w.policyV {
			t.Errorf("call %s ran under policy %s, want the bundle's %s",
				c.Intent.CallID, ib.PolicyVersion, w.policyV)
		}
		stmt, _ := ib.Arguments["sql"].(string)
		recorded[stmt] = append(recorded[stmt], c)
		return nil
	})
	must(t, err)

	for _, ans := range w.answered {
		calls := recorded[ans.sql]
		found := -1
		for i, c := range calls {
			if c.Outcome == ans.outcome && requestOf(t, c) == ans.requestID {
				found = i
				break
			}
		}
		if found < 0 {
			t.Errorf("the %s answer on %s to %q (request %q) is not in the transcript",
				ans.outcome, ans.replica, ans.sql, ans.requestID)
			continue
		}
		recorded[ans.sql] = append(calls[:found], calls[found+1:]...)
	}
	// What is left was never answered: only the call on the killed
	// replica, which has no completion.
	for stmt, calls := range recorded {
		for _, c := range calls {
			if c.Outcome != recorder.OutcomeIncomplete || stmt != "UPDATE orders SET status='refunded' WHERE id = 4" {
				t.Errorf("an unanswered call in the transcript: %q %s", stmt, c.Outcome)
			}
		}
	}
}

// requestOf is the approval request a recorded call's completion names.
func requestOf(t *testing.T, c recorder.Call) string {
	t.Helper()
	if c.Completion == nil {
		return ""
	}
	var cb struct {
		RequestID string `json:"request_id"`
	}
	must(t, json.Unmarshal(c.Completion.Body, &cb))
	return cb.RequestID
}
