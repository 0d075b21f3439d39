package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-guard/mcp-guard/internal/pgtest"
)

// The Slack side of the approval tests: a fake Web API the guard posts to,
// and signed interaction callbacks the tests send as Slack would.

const (
	slackToken   = "xoxb-e2e-approvals-token"
	slackSecret  = "e2e-signing-secret-0123456789abcdef"
	slackChannel = "C0APPROVALS"
	// runnerEmail is the identity the fixture's stdio and HTTP callers have.
	runnerEmail = "acceptance-runner@example.com"
	// pendingText is what the guard tells the model after a wait ends.
	pendingText = "call again with the same arguments to continue"
)

// approvalPeople is the approver directory of every approval fixture.
// The requester (the runner) is listed too, so that their own click can
// be tried.
const approvalPeople = `  people:
    - {email: carol@example.com, slack_user: U0CAROL, groups: [approvers, dba]}
    - {email: dave@example.com, slack_user: U0DAVE, groups: [developers]}
    - {email: erin@example.com, slack_user: U0ERIN, groups: [dba]}
    - {email: ` + runnerEmail + `, slack_user: U0RUNNER, groups: [approvers]}
`

// slackCall is one Web API call the fake received.
type slackCall struct {
	Method string
	Form   url.Values
}

// blocks decodes the blocks form field.
func (c slackCall) blocks(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(c.Form.Get("blocks")), &out); err != nil {
		t.Fatalf("%s: blocks: %v", c.Method, err)
	}
	return out
}

// slackFake stands in for Slack's Web API on loopback and keeps every call.
type slackFake struct {
	srv *httptest.Server

	// mu guards the fields below.
	mu      sync.Mutex
	calls   []slackCall
	changed chan struct{}
	nextTS  int
	// emails is what users.info reports for users outside the directory.
	emails map[string]string
}

func newSlackFake(t *testing.T) *slackFake {
	t.Helper()
	s := &slackFake{changed: make(chan struct{}),
		emails: map[string]string{"U0MALLORY": "mallory@example.com"}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// apiURL is the base URL for approvals.slack.api_url.
func (s *slackFake) apiURL() string { return s.srv.URL + "/" }

func (s *slackFake) serve(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/")
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.PostForm.Get("token") != slackToken {
		fmt.Fprint(w, `{"ok":false,"error":"invalid_auth"}`)
		return
	}

	s.mu.Lock()
	s.calls = append(s.calls, slackCall{Method: method, Form: r.PostForm})
	close(s.changed)
	s.changed = make(chan struct{})
	s.nextTS++
	ts := fmt.Sprintf("1764842400.%06d", s.nextTS)
	email, known := s.emails[r.PostForm.Get("user")]
	s.mu.Unlock()

	ch := r.PostForm.Get("channel")
	var resp any
	switch method {
	case "chat.postMessage":
		resp = map[string]any{"ok": true, "channel": ch, "ts": ts}
	case "chat.update":
		resp = map[string]any{"ok": true, "channel": ch, "ts": r.PostForm.Get("ts")}
	case "chat.postEphemeral":
		resp = map[string]any{"ok": true, "message_ts": ts}
	case "users.info":
		if !known {
			resp = map[string]any{"ok": false, "error": "user_not_found"}
			break
		}
		resp = map[string]any{"ok": true, "user": map[string]any{
			"id": r.PostForm.Get("user"), "profile": map[string]any{"email": email}}}
	default:
		resp = map[string]any{"ok": false, "error": "unknown_method"}
	}
	_ = json.NewEncoder(w).Encode(resp)
}

// all returns every call so far.
func (s *slackFake) all() []slackCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]slackCall(nil), s.calls...)
}

// of returns the calls of one method so far.
func (s *slackFake) of(method string) []slackCall {
	var out []slackCall
	for _, c := range s.all() {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// waitFor waits until ok holds for the calls so far and returns them. The
// deadline only turns a hang into a failure.
func (s *slackFake) waitFor(t *testing.T, what string, ok func([]slackCall) bool) []slackCall {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		if calls := s.all(); ok(calls) {
			return calls
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("fake slack: no %s after 15s; calls: %d", what, len(s.all()))
		}
	}
}

// waitCount waits for n calls of method.
func (s *slackFake) waitCount(t *testing.T, method string, n int) []slackCall {
	t.Helper()
	s.waitFor(t, fmt.Sprintf("%d %s", n, method), func([]slackCall) bool {
		return len(s.of(method)) >= n
	})
	return s.of(method)
}

// requestID is the approval request a posted message shows, read from its
// Approve button.
func requestID(t *testing.T, post slackCall) string {
	t.Helper()
	for _, b := range post.blocks(t) {
		if b["type"] != "actions" {
			continue
		}
		if id, ok := strings.CutPrefix(fmt.Sprint(b["block_id"]), "approval:"); ok {
			return id
		}
	}
	t.Fatalf("message without an approval actions block: %s", post.Form.Get("blocks"))
	return ""
}

// hasActions reports whether a message still has buttons.
func hasActions(t *testing.T, c slackCall) bool {
	t.Helper()
	for _, b := range c.blocks(t) {
		if b["type"] == "actions" {
			return true
		}
	}
	return false
}

// texts returns every text object of the message's blocks with its type.
func texts(t *testing.T, c slackCall) (plain []string, other []string) {
	t.Helper()
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if s, ok := x["text"].(string); ok {
				if x["type"] == "plain_text" {
					plain = append(plain, s)
				} else {
					other = append(other, fmt.Sprint(x["type"])+": "+s)
				}
			}
			for _, child := range x {
				walk(child)
			}
		case []any:
			for _, child := range x {
				walk(child)
			}
		}
	}
	for _, b := range c.blocks(t) {
		walk(b)
	}
	return plain, other
}

// ephemerals returns the texts of the ephemeral replies to user.
func (s *slackFake) ephemerals(user string) []string {
	var out []string
	for _, c := range s.of("chat.postEphemeral") {
		if c.Form.Get("user") == user {
			out = append(out, c.Form.Get("text"))
		}
	}
	return out
}

// slackSign is Slack's v0 signature over a callback body.
func slackSign(secret, ts, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "v0:%s:%s", ts, body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// clickBody is the form body Slack sends when user presses a button of
// request id.
func clickBody(user, id, action string) string {
	payload := map[string]any{
		"type":    "block_actions",
		"user":    map[string]any{"id": user, "username": strings.ToLower(user)},
		"team":    map[string]any{"id": "T0E2E"},
		"channel": map[string]any{"id": slackChannel},
		"container": map[string]any{"type": "message",
			"message_ts": "1764842400.000001", "channel_id": slackChannel},
		"actions": []map[string]any{{
			"type": "button", "action_id": action, "block_id": "approval:" + id,
			"value": id, "action_ts": "1764842401.000001",
		}},
	}
	b, _ := json.Marshal(payload)
	return url.Values{"payload": {string(b)}}.Encode()
}

// approvalWorld is a guard served over HTTP with Slack approvals, its own
// copy of the shop database, and an MCP client.
type approvalWorld struct {
	f     *fixture
	slack *slackFake
	base  string
	mcp   *client.Client

	// mu guards progress.
	mu       sync.Mutex
	progress map[string]int // notifications per progress token
}

// newApprovalWorld starts the guard with Slack approvals that wait and
// expire as given, and a postgres target proddb labelled env: prod on the
// same database.
func newApprovalWorld(t *testing.T, wait, expiry string) *approvalWorld {
	t.Helper()
	w := &approvalWorld{slack: newSlackFake(t), progress: map[string]int{}}
	cfg := fmt.Sprintf(`approvals:
  wait: %s
  expiry: %s
  slack:
    bot_token_env: SLACK_BOT_TOKEN
    signing_secret_env: SLACK_SIGNING_SECRET
    channel: %s
    api_url: "%s"
%s`, wait, expiry, slackChannel, w.slack.apiURL(), approvalPeople)
	f := newFixture(t, cfg)
	w.f = f

	// A database of its own: these tests change rows and the schema.
	f.db = pgtest.AppDB(t)
	for i, kv := range f.env {
		if strings.HasPrefix(kv, "APPDB_DSN=") {
			f.env[i] = "APPDB_DSN=" + f.db.DSN()
		}
	}
	f.env = append(f.env, "SLACK_BOT_TOKEN="+slackToken, "SLACK_SIGNING_SECRET="+slackSecret)
	prod := "  - {name: proddb, kind: postgres, description: Production shop, " +
		"dsn_env: APPDB_DSN, labels: {env: prod}}\n"
	raw := strings.Replace(readFile(t, f.cfgPath), "targets:\n", "targets:\n"+prod, 1)
	must(t, os.WriteFile(f.cfgPath, []byte(raw), 0o644))

	ctx := testContext(t)
	w.base = f.startHTTP(ctx)
	w.mcp = w.connect(ctx, t, "")
	return w
}

// connect opens an MCP client on the guard; version "" is the newest.
func (w *approvalWorld) connect(ctx context.Context, t *testing.T, version string) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(w.base + "/mcp")
	must(t, err)
	c := client.NewClient(tr)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method != "notifications/progress" {
			return
		}
		tok := fmt.Sprint(n.Params.AdditionalFields["progressToken"])
		w.mu.Lock()
		w.progress[tok]++
		w.mu.Unlock()
	})
	must(t, c.Start(ctx))
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "e2e-approvals", Version: "1.0"}
	init.Params.ProtocolVersion = version
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// progressCount is how many progress notifications carried token.
func (w *approvalWorld) progressCount(token string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.progress[token]
}

// call makes one tool call; token, if set, asks for progress.
func (w *approvalWorld) call(ctx context.Context, t *testing.T, tool string,
	args map[string]any, token string) map[string]any {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	if token != "" {
		req.Params.Meta = &mcp.Meta{ProgressToken: token}
	}
	res, err := w.mcp.CallTool(ctx, req)
	if err != nil {
		t.Errorf("call %s: %v", tool, err)
		return nil
	}
	raw, _ := json.Marshal(res)
	var generic map[string]any
	_ = json.Unmarshal(raw, &generic)
	return generic
}

// callAsync starts a call and returns where its result will arrive.
func (w *approvalWorld) callAsync(ctx context.Context, t *testing.T, tool string,
	args map[string]any, token string) <-chan map[string]any {
	out := make(chan map[string]any, 1)
	go func() { out <- w.call(ctx, t, tool, args, token) }()
	return out
}

// result waits for an asynchronous call.
func result(t *testing.T, ch <-chan map[string]any) map[string]any {
	t.Helper()
	select {
	case r := <-ch:
		if r == nil {
			t.Fatal("the call failed")
		}
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("the call did not return")
	}
	return nil
}

// interact posts a callback body to /slack/interactions with the given
// headers and returns the status and body.
func (w *approvalWorld) interact(t *testing.T, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, w.base+"/slack/interactions",
		strings.NewReader(body))
	must(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// signedHeaders signs body as Slack does at time at.
func signedHeaders(body string, at time.Time) map[string]string {
	ts := strconv.FormatInt(at.Unix(), 10)
	return map[string]string{
		"X-Slack-Request-Timestamp": ts,
		"X-Slack-Signature":         slackSign(slackSecret, ts, body),
	}
}

// click presses a button as user, correctly signed, and expects 200.
func (w *approvalWorld) click(t *testing.T, user, id, action string) {
	t.Helper()
	body := clickBody(user, id, action)
	if code, resp := w.interact(t, body, signedHeaders(body, time.Now())); code != http.StatusOK {
		t.Fatalf("signed click by %s: %d %q", user, code, resp)
	}
}

// cli runs an mcp-guard subcommand against the fixture's configuration.
func (w *approvalWorld) cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	args = append(args, "--config", w.f.cfgPath)
	cmd := exec.Command(guardBinary(t), args...)
	cmd.Env = w.f.env
	cmd.Dir = w.f.dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var stateLine = regexp.MustCompile(`(?m)^state\s+(\S+)`)

// state reads a request's state through the CLI.
func (w *approvalWorld) state(t *testing.T, id string) string {
	t.Helper()
	out, err := w.cli(t, "approvals", "show", id)
	if err != nil {
		t.Fatalf("approvals show %s: %v\n%s", id, err, out)
	}
	m := stateLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("approvals show %s printed no state:\n%s", id, out)
	}
	return m[1]
}

// orderStatus reads one order's status from the database.
func (w *approvalWorld) orderStatus(t *testing.T, id int) string {
	t.Helper()
	rows := w.f.db.Query(t, fmt.Sprintf("SELECT status FROM orders WHERE id = %d", id))
	if len(rows) != 1 {
		t.Fatalf("order %d: %d rows", id, len(rows))
	}
	return rows[0][0]
}

// transcriptDB opens the recorder's database read-only.
func (w *approvalWorld) transcriptDB(t *testing.T) *sql.DB {
	t.Helper()
	return openTranscript(t, w.f)
}

// openTranscript opens f's recorder database read-only, beside the
// running guard.
func openTranscript(t *testing.T, f *fixture) *sql.DB {
	t.Helper()
	path := filepath.Join(f.dir, "var", "mcp-guard.db")
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	must(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// approvalRecords returns the bodies of the approval records of request id,
// waiting until one has event last: the guard writes them in the
// background.
func (w *approvalWorld) approvalRecords(t *testing.T, id, last string) []map[string]any {
	t.Helper()
	db := w.transcriptDB(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		rows, err := db.Query(`SELECT body FROM records WHERE kind = 'approval'
			AND json_extract(body, '$.request_id') = ? ORDER BY seq`, id)
		must(t, err)
		var out []map[string]any
		for rows.Next() {
			var body string
			must(t, rows.Scan(&body))
			var m map[string]any
			must(t, json.Unmarshal([]byte(body), &m))
			out = append(out, m)
		}
		rows.Close()
		for _, m := range out {
			if m["event"] == last {
				return out
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s record for %s; have %v", last, id, out)
		}
		// The records are written by another process; nothing to wait on.
		time.Sleep(100 * time.Millisecond)
	}
}

// callRecords returns the intent and completion bodies of the calls whose
// completion names request id, once want completions are in or a short
// deadline passed: the guard moves a record into the database a few
// milliseconds after it answered the call.
func (w *approvalWorld) callRecords(t *testing.T, id string, want int) (intents,
	completions []map[string]any) {
	t.Helper()
	db := w.transcriptDB(t)
	pollRecords(func() bool {
		intents, completions = queryCallRecords(t, db, id)
		return len(completions) >= want
	})
	return intents, completions
}

// pollRecords calls done until it reports that the records it looks for
// are in the transcript, or a deadline passes; the caller's assertions
// then decide. The deadline only turns a hang into a failure.
func pollRecords(done func() bool) {
	deadline := time.Now().Add(5 * time.Second)
	for !done() && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
}

// queryCallRecords returns the intent and completion bodies of the calls
// whose completion names request id.
func queryCallRecords(t *testing.T, db *sql.DB, id string) (intents,
	completions []map[string]any) {
	t.Helper()
	rows, err := db.Query(`SELECT i.body, c.body FROM records c
		JOIN records i ON i.call_id = c.call_id AND i.kind = 'call_intent'
		WHERE c.kind = 'call_completion' AND json_extract(c.body, '$.request_id') = ?
		ORDER BY c.seq`, id)
	must(t, err)
	defer rows.Close()
	for rows.Next() {
		var ib, cb string
		must(t, rows.Scan(&ib, &cb))
		var i, c map[string]any
		must(t, json.Unmarshal([]byte(ib), &i))
		must(t, json.Unmarshal([]byte(cb), &c))
		intents, completions = append(intents, i), append(completions, c)
	}
	return intents, completions
}

// guardField returns structuredContent.guard[key] as a string.
func guardField(res map[string]any, key string) string {
	sc, _ := res["structuredContent"].(map[string]any)
	g, _ := sc["guard"].(map[string]any)
	s, _ := g[key].(string)
	return s
}

func sqlArgs(target, stmt string) map[string]any {
	return map[string]any{"target": target, "sql": stmt}
}

// TestApprovalsSlack follows calls through Slack approval on the real
// binary: approve, deny, two approvers for production DDL, markup in the
// command, and a decision made with the CLI.
func TestApprovalsSlack(t *testing.T) {
	w := newApprovalWorld(t, "5s", "1m")
	ctx := testContext(t)

	t.Run("approve", func(t *testing.T) {
		stmt := "UPDATE orders SET status='refunded' WHERE id = 1"
		done := w.callAsync(ctx, t, "query_database", sqlArgs("appdb", stmt), "tok-approve")

		post := w.slack.waitCount(t, "chat.postMessage", 1)[0]
		id := requestID(t, post)
		if ch := post.Form.Get("channel"); ch != slackChannel {
			t.Errorf("posted to %q, want %s", ch, slackChannel)
		}
		plain, other := texts(t, post)
		if len(other) > 0 {
			t.Errorf("message has text objects that are not plain_text: %q", other)
		}
		if strings.Contains(post.Form.Get("blocks"), "mrkdwn") {
			t.Error("the message blocks mention mrkdwn")
		}
		all := strings.Join(plain, "\n")
		for _, want := range []string{"Requester: " + runnerEmail, "Target: appdb",
			"Tool: query_database", "this statement writes (update) and needs approval"} {
			if !strings.Contains(all, want) {
				t.Errorf("message does not show %q:\n%s", want, all)
			}
		}
		if !containsExactly(plain, stmt) {
			t.Errorf("message does not show the statement verbatim in its own block:\n%q", plain)
		}
		if w.orderStatus(t, 1) != "paid" {
			t.Fatal("the update ran before approval")
		}

		// The call waits with progress before anyone clicks.
		waitUntil(t, "a progress notification", func() bool {
			return w.progressCount("tok-approve") > 0
		})
		w.click(t, "U0CAROL", id, "approve")
		res := result(t, done)
		if res["isError"] == true {
			t.Fatalf("approved call did not run: %v", res)
		}
		if got := w.orderStatus(t, 1); got != "refunded" {
			t.Fatalf("order 1 is %q after the approved update", got)
		}

		// The message ends without buttons, naming approver and run.
		final := w.slack.waitFor(t, "an update showing the run", func(cs []slackCall) bool {
			u := lastUpdate(cs, id)
			return u != nil && strings.Contains(u.Form.Get("blocks"), "Run at")
		})
		u := lastUpdate(final, id)
		if hasActions(t, *u) {
			t.Error("the final message still has buttons")
		}
		if !strings.Contains(u.Form.Get("blocks"), "carol@example.com") {
			t.Error("the final message does not name the approver")
		}

		// The transcript: opened, decided by carol via Slack, executed;
		// and the call's intent and completion under the same request.
		recs := w.approvalRecords(t, id, "approval_executed")
		decided := findEvent(recs, "approval_decided")
		if decided == nil || decided["approver"] != "carol@example.com" || decided["via"] != "slack" {
			t.Errorf("decision record: %v", decided)
		}
		for _, r := range recs {
			caller, _ := r["caller"].(map[string]any)
			if caller["subject"] != "acceptance-runner" || r["display"] != stmt {
				t.Errorf("approval record without requester or call: %v", r)
			}
		}
		intents, completions := w.callRecords(t, id, 1)
		if len(completions) != 1 || completions[0]["outcome"] != "ok" {
			t.Fatalf("completions for %s: %v", id, completions)
		}
		args, _ := intents[0]["arguments"].(map[string]any)
		if args["sql"] != stmt || intents[0]["tool"] != "query_database" {
			t.Errorf("intent for %s: %v", id, intents[0])
		}
	})

	t.Run("deny", func(t *testing.T) {
		stmt := "UPDATE orders SET status='pending' WHERE id = 2"
		before := len(w.slack.of("chat.postMessage"))
		done := w.callAsync(ctx, t, "query_database", sqlArgs("appdb", stmt), "")
		post := w.slack.waitCount(t, "chat.postMessage", before+1)[before]
		w.click(t, "U0CAROL", requestID(t, post), "deny")
		res := result(t, done)
		if o := guardOutcome(res); o != "approval_denied" {
			t.Fatalf("denied call: outcome %q: %v", o, res)
		}
		if got := w.orderStatus(t, 2); got != "paid" {
			t.Fatalf("order 2 is %q after a denied update", got)
		}
	})

	t.Run("production DDL needs two approvers", func(t *testing.T) {
		stmt := "ALTER TABLE orders ADD COLUMN approved_note text"
		before := len(w.slack.of("chat.postMessage"))
		done := w.callAsync(ctx, t, "query_database", sqlArgs("proddb", stmt), "")
		post := w.slack.waitCount(t, "chat.postMessage", before+1)[before]
		id := requestID(t, post)
		if !strings.Contains(post.Form.Get("blocks"), "Approvals needed: 2") {
			t.Errorf("message does not say two approvals are needed")
		}

		replies := len(w.slack.ephemerals("U0CAROL"))
		w.click(t, "U0CAROL", id, "approve")
		w.slack.waitFor(t, "carol's reply", func([]slackCall) bool {
			return len(w.slack.ephemerals("U0CAROL")) > replies
		})
		got := w.slack.ephemerals("U0CAROL")[replies]
		if !strings.Contains(got, "more approvals are needed") {
			t.Errorf("reply to the first approver: %q", got)
		}
		if st := w.state(t, id); st != "pending" {
			t.Fatalf("after one of two approvals the request is %s", st)
		}
		if columnExists(t, w, "approved_note") {
			t.Fatal("the DDL ran after one approval")
		}
		w.click(t, "U0ERIN", id, "approve")
		res := result(t, done)
		if res["isError"] == true {
			t.Fatalf("DDL approved twice did not run: %v", res)
		}
		if !columnExists(t, w, "approved_note") {
			t.Fatal("the approved DDL did not change the table")
		}
	})

	t.Run("B23 markup is shown verbatim", func(t *testing.T) {
		// The case's own command does not parse as bash (a redirection
		// without a target), so the guard refuses it before anyone sees it.
		before := len(w.slack.of("chat.postMessage"))
		res := w.call(ctx, t, "run_shell", map[string]any{"target": "local",
			"command": "ls ` <https://evil.example|Approve safely> `"}, "")
		if o := guardOutcome(res); o != "denied" {
			t.Errorf("unparsable command: outcome %q", o)
		}

		cmd := "touch ' ` <https://evil.example|Approve safely> ` ' " +
			"'*bold*' '<@U0CAROL>' '<!channel>' '&amp;'"
		done := w.callAsync(ctx, t, "run_shell",
			map[string]any{"target": "local", "command": cmd}, "")
		post := w.slack.waitCount(t, "chat.postMessage", before+1)[before]
		plain, other := texts(t, post)
		if len(other) > 0 {
			t.Errorf("text objects that are not plain_text: %q", other)
		}
		if strings.Contains(post.Form.Get("blocks"), "mrkdwn") {
			t.Error("the message blocks mention mrkdwn")
		}
		if !containsExactly(plain, cmd) {
			t.Errorf("the command is not shown verbatim:\n%q", plain)
		}
		fb := post.Form.Get("text")
		if strings.Contains(fb, "evil.example") || strings.Contains(fb, "<") {
			t.Errorf("the notification text carries requester markup: %q", fb)
		}
		w.click(t, "U0CAROL", requestID(t, post), "deny")
		if o := guardOutcome(result(t, done)); o != "approval_denied" {
			t.Errorf("denied touch: outcome %q", o)
		}
		entries, err := os.ReadDir(w.f.vars["workdir"])
		must(t, err)
		for _, e := range entries {
			if strings.Contains(e.Name(), "bold") {
				t.Errorf("the denied command created %s", e.Name())
			}
		}
	})

	t.Run("CLI", func(t *testing.T) {
		stmt := "UPDATE orders SET status='refunded' WHERE id = 5"
		before := len(w.slack.of("chat.postMessage"))
		done := w.callAsync(ctx, t, "query_database", sqlArgs("appdb", stmt), "")
		id := requestID(t, w.slack.waitCount(t, "chat.postMessage", before+1)[before])

		out, err := w.cli(t, "approvals", "list", "--state", "pending")
		if err != nil || !strings.Contains(out, id) {
			t.Fatalf("approvals list --state pending: %v\n%s", err, out)
		}
		out, err = w.cli(t, "approvals", "show", id)
		if err != nil || !strings.Contains(out, stmt) || !strings.Contains(out, "acceptance-runner") {
			t.Fatalf("approvals show: %v\n%s", err, out)
		}
		refusals := []struct{ as, why string }{
			{"dave@example.com", "not an approver"},
			{"nobody@example.com", "not an approver"},
			{runnerEmail, "cannot decide their own request"},
		}
		for _, r := range refusals {
			out, err := w.cli(t, "approvals", "approve", id, "--as", r.as)
			if err == nil || !strings.Contains(out, r.why) {
				t.Errorf("approve --as %s: %v\n%s", r.as, err, out)
			}
		}
		select {
		case res := <-done:
			// The wait ran out while the CLI was checked (a slow machine):
			// the same call resumes the request and waits again.
			if o := guardOutcome(res); o != "approval_pending" {
				t.Fatalf("the call ended %q before any decision", o)
			}
			done = w.callAsync(ctx, t, "query_database", sqlArgs("appdb", stmt), "")
		default:
		}
		if out, err := w.cli(t, "approvals", "approve", id, "--as", "carol@example.com"); err != nil {
			t.Fatalf("approve --as carol: %v\n%s", err, out)
		}
		res := result(t, done)
		if res["isError"] == true {
			t.Fatalf("the call approved with the CLI did not run: %v", res)
		}
		if got := w.orderStatus(t, 5); got != "refunded" {
			t.Fatalf("order 5 is %q after the approved update", got)
		}
		recs := w.approvalRecords(t, id, "approval_executed")
		if d := findEvent(recs, "approval_decided"); d == nil || d["approver"] != "carol@example.com" || d["via"] != "cli" {
			t.Errorf("the CLI decision is not in the transcript: %v", recs)
		}
		ran := findEvent(recs, "approval_executed")
		ds, _ := ran["decisions"].([]any)
		if len(ds) != 1 || ds[0].(map[string]any)["approver"] != "carol@example.com" ||
			ds[0].(map[string]any)["via"] != "cli" {
			t.Errorf("the execution record does not name the CLI approver: %v", ran)
		}
	})

	stored := w.f.stderr.String() + w.f.recorderText()
	for _, secret := range []string{slackToken, slackSecret, w.f.db.Password()} {
		if strings.Contains(stored, secret) {
			t.Errorf("a secret is in the log or the recorder's files")
		}
	}
}

// TestApprovalsPending: with a short wait the call answers
// approval_pending; attacks on the Slack callback leave the request
// pending; once approved the same call resumes it, once.
func TestApprovalsPending(t *testing.T) {
	w := newApprovalWorld(t, "1s", "1m")
	ctx := testContext(t)
	stmt := "UPDATE orders SET status='refunded' WHERE id = 3"

	res := w.call(ctx, t, "query_database", sqlArgs("appdb", stmt), "")
	id := guardField(res, "request_id")
	if o := guardOutcome(res); o != "approval_pending" || id == "" {
		t.Fatalf("first call: outcome %q, request %q: %v", o, id, res)
	}
	if !strings.Contains(guardField(res, "reason"), pendingText) {
		t.Errorf("pending reason does not say how to continue: %q", guardField(res, "reason"))
	}
	post := w.slack.waitCount(t, "chat.postMessage", 1)[0]
	if requestID(t, post) != id {
		t.Fatalf("message shows %s, call got %s", requestID(t, post), id)
	}

	approve := clickBody("U0CAROL", id, "approve")
	sent := len(w.slack.all())

	// B19: a forged signature.
	forged := map[string]string{
		"X-Slack-Request-Timestamp": strconv.FormatInt(time.Now().Unix(), 10),
		"X-Slack-Signature":         "v0=" + strings.Repeat("0", 64),
	}
	code, body401 := w.interact(t, approve, forged)
	if code != http.StatusUnauthorized {
		t.Fatalf("forged signature: %d %q", code, body401)
	}

	// B20: the refusal is fixed text, and no hex it or the guard shows
	// is a signature.
	if regexp.MustCompile(`[0-9a-fA-F]{16,}`).MatchString(body401) {
		t.Errorf("the 401 body carries a hex string: %q", body401)
	}
	code2, again := w.interact(t, clickBody("U0CAROL", id, "deny"), forged)
	if code2 != http.StatusUnauthorized || again != body401 {
		t.Errorf("the 401 body varies: %q vs %q", body401, again)
	}
	hexes := hexStrings(body401 + w.f.stderr.String() + w.f.recorderText())
	if len(hexes) == 0 {
		t.Fatal("found no hex strings to try; the check would prove nothing")
	}
	for _, h := range hexes {
		hdr := map[string]string{
			"X-Slack-Request-Timestamp": forged["X-Slack-Request-Timestamp"],
			"X-Slack-Signature":         "v0=" + h,
		}
		if code, _ := w.interact(t, approve, hdr); code != http.StatusUnauthorized {
			t.Fatalf("a signature taken from the guard's output was accepted (%d)", code)
		}
	}

	// B21: correctly signed, ten minutes old.
	stale := signedHeaders(approve, time.Now().Add(-10*time.Minute))
	if code, _ := w.interact(t, approve, stale); code != http.StatusUnauthorized {
		t.Errorf("stale callback: %d", code)
	}
	// Missing headers, one at a time and both.
	good := signedHeaders(approve, time.Now())
	for name, hdr := range map[string]map[string]string{
		"no signature": {"X-Slack-Request-Timestamp": good["X-Slack-Request-Timestamp"]},
		"no timestamp": {"X-Slack-Signature": good["X-Slack-Signature"]},
		"no headers":   {},
	} {
		if code, _ := w.interact(t, approve, hdr); code != http.StatusUnauthorized {
			t.Errorf("%s: %d", name, code)
		}
	}
	if st := w.state(t, id); st != "pending" {
		t.Fatalf("after rejected callbacks the request is %s", st)
	}
	if n := len(w.slack.all()); n != sent {
		t.Fatalf("rejected callbacks made %d Slack calls", n-sent)
	}

	// B22: people who may not decide get a private refusal.
	for _, user := range []string{"U0DAVE", "U0MALLORY", "U0RUNNER"} {
		w.click(t, user, id, "approve")
		w.slack.waitFor(t, "a reply to "+user, func([]slackCall) bool {
			return len(w.slack.ephemerals(user)) > 0
		})
		if got := w.slack.ephemerals(user)[0]; got != "You are not an approver for this request." {
			t.Errorf("reply to %s: %q", user, got)
		}
		if st := w.state(t, id); st != "pending" {
			t.Fatalf("after a click by %s the request is %s", user, st)
		}
	}
	if len(w.slack.of("chat.update")) != 0 {
		t.Error("a refused click changed the message")
	}
	if w.orderStatus(t, 3) != "paid" {
		t.Fatal("the update ran without approval")
	}

	// Carol approves; a replay of her request changes nothing.
	w.click(t, "U0CAROL", id, "approve")
	waitUntil(t, "the approval", func() bool { return w.state(t, id) == "approved" })
	w.click(t, "U0CAROL", id, "approve")
	w.slack.waitFor(t, "a reply to the replay", func([]slackCall) bool {
		return len(w.slack.ephemerals("U0CAROL")) > 0
	})
	out, _ := w.cli(t, "approvals", "show", id)
	if n := strings.Count(out, "decision  "); n != 1 || w.state(t, id) != "approved" {
		t.Fatalf("after a replayed approval: %d decisions\n%s", n, out)
	}

	// Other arguments are another request.
	other := w.call(ctx, t, "query_database",
		sqlArgs("appdb", "UPDATE orders SET status='refunded' WHERE id = 4"), "")
	o, oid := guardOutcome(other), guardField(other, "request_id")
	if o != "approval_pending" || oid == id || oid == "" {
		t.Fatalf("a different call: outcome %q, request %q (first %s)", o, oid, id)
	}

	// The same call resumes the approved request and runs.
	res = w.call(ctx, t, "query_database", sqlArgs("appdb", stmt), "")
	if res["isError"] == true {
		t.Fatalf("the approved call did not run: %v", res)
	}
	if got := w.orderStatus(t, 3); got != "refunded" {
		t.Fatalf("order 3 is %q after the approved update", got)
	}
	if _, cs := w.callRecords(t, id, 2); len(cs) != 2 || cs[1]["outcome"] != "ok" {
		t.Errorf("completions under %s: %v", id, cs)
	}

	// An approval is good for one run.
	res = w.call(ctx, t, "query_database", sqlArgs("appdb", stmt), "")
	if o, nid := guardOutcome(res), guardField(res, "request_id"); o != "approval_pending" || nid == id {
		t.Fatalf("the same call after its run: outcome %q, request %q", o, nid)
	}
}

// TestApprovalsExpiry: nobody decides in time.
func TestApprovalsExpiry(t *testing.T) {
	w := newApprovalWorld(t, "4s", "2s")
	ctx := testContext(t)
	stmt := "UPDATE orders SET status='refunded' WHERE id = 6"
	res := w.call(ctx, t, "query_database", sqlArgs("appdb", stmt), "")
	if o := guardOutcome(res); o != "approval_expired" {
		t.Fatalf("outcome %q, want approval_expired: %v", o, res)
	}
	if got := w.orderStatus(t, 6); got != "paid" {
		t.Fatalf("order 6 is %q after an expired request", got)
	}
	post := w.slack.of("chat.postMessage")[0]
	id := requestID(t, post)
	w.slack.waitFor(t, "the expired message", func(cs []slackCall) bool {
		u := lastUpdate(cs, id)
		return u != nil && strings.Contains(u.Form.Get("blocks"), "Expired at")
	})
	if u := lastUpdate(w.slack.all(), id); hasActions(t, *u) {
		t.Error("the expired message still has buttons")
	}
	// A late click changes nothing.
	w.click(t, "U0CAROL", id, "approve")
	w.slack.waitFor(t, "a reply to the late click", func([]slackCall) bool {
		return len(w.slack.ephemerals("U0CAROL")) > 0
	})
	if st := w.state(t, id); st != "expired" {
		t.Errorf("after a late click the request is %s", st)
	}
	w.approvalRecords(t, id, "approval_expired")
}

// lastUpdate is the newest chat.update of request id's message, or nil.
func lastUpdate(calls []slackCall, id string) *slackCall {
	var last *slackCall
	for i := range calls {
		if calls[i].Method == "chat.update" && strings.Contains(calls[i].Form.Get("text"), id) {
			last = &calls[i]
		}
	}
	return last
}

// containsExactly reports whether one of texts is exactly s.
func containsExactly(texts []string, s string) bool {
	for _, x := range texts {
		if x == s {
			return true
		}
	}
	return false
}

// findEvent is the last record with this event.
func findEvent(recs []map[string]any, event string) map[string]any {
	var out map[string]any
	for _, r := range recs {
		if r["event"] == event {
			out = r
		}
	}
	return out
}

// columnExists reports whether orders has the column.
func columnExists(t *testing.T, w *approvalWorld, col string) bool {
	t.Helper()
	rows := w.f.db.Query(t, "SELECT count(*) FROM information_schema.columns "+
		"WHERE table_name = 'orders' AND column_name = '"+col+"'")
	return rows[0][0] == "1"
}

// hexStrings returns the distinct runs of 32 or more hex digits in s,
// lower-cased.
func hexStrings(s string) []string {
	seen := map[string]bool{}
	var out []string
	for _, h := range regexp.MustCompile(`[0-9a-fA-F]{32,}`).FindAllString(s, -1) {
		h = strings.ToLower(h)
		for _, v := range []string{h, h[:min(len(h), 64)]} {
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	return out
}

// waitUntil polls cond, which reads another process's state, until it
// holds. The deadline only turns a hang into a failure.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
