package approvals

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/mcp-guard/mcp-guard/identity"
)

const (
	testSecret  = "test-signing-secret-8f3a"
	testToken   = "xoxb-test-token"
	testChannel = "C0APPROVALS"
)

// fakeClock is an injectable clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// lockedBuffer is a log sink that handlers may write to concurrently.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// openDB opens a real SQLite file the way the recorder does.
func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate")
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// testPeople is the approver directory of the tests. Alice is the usual
// requester; carol, dave and erin are DBAs.
func testPeople() []Person {
	return []Person{
		{Email: "alice@example.com", SlackUser: "U0ALICE", Groups: []string{"dev"},
			Subject: "alice-sub", Issuer: "https://idp.test"},
		{Email: "carol@example.com", SlackUser: "U0CAROL", Groups: []string{"dba"}},
		{Email: "dave@example.com", SlackUser: "U0DAVE", Groups: []string{"dba"}},
		{Email: "erin@example.com", SlackUser: "U0ERIN", Groups: []string{"dba", "sre"}},
	}
}

func alice() identity.Caller {
	return identity.Caller{Subject: "alice-sub", Issuer: "https://idp.test",
		Email: "alice@example.com", Groups: []string{"dev"}}
}

// deleteRequest is the call most tests ask approval for.
func deleteRequest() Request {
	return Request{
		Caller:    alice(),
		Tool:      "query_database",
		Target:    "prod",
		Arguments: json.RawMessage(`{"sql": "DELETE FROM users WHERE id = 7"}`),
		Display:   "DELETE FROM users WHERE id = 7",
		Reasons:   []string{"writes to table users"},
		Approvers: Approvers{Groups: []string{"dba"}},
		Required:  1,
		Channel:   testChannel,
	}
}

// env is a service on a real SQLite file, optionally with Slack.
type env struct {
	t        *testing.T
	clock    *fakeClock
	dbPath   string
	db       *sql.DB
	svc      *Service
	logs     *lockedBuffer
	slack    *fakeSlack
	notifier *SlackNotifier
	handler  *CallbackHandler
	server   *httptest.Server

	mu     sync.Mutex
	events []Event
}

type envConfig struct {
	slack bool
	opts  func(*Options)
}

func newEnv(t *testing.T, cfg envConfig) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), logs: &lockedBuffer{}}
	e.dbPath = filepath.Join(t.TempDir(), "guard.db")
	e.db = openDB(t, e.dbPath)
	logger := slog.New(slog.NewTextHandler(e.logs,
		&slog.HandlerOptions{Level: slog.LevelDebug}))

	o := Options{
		People: testPeople(),
		Now:    e.clock.Now,
		Logger: logger,
		OnEvent: func(ev Event) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.events = append(e.events, ev)
		},
	}
	if cfg.slack {
		e.slack = newFakeSlack(t)
		n, err := NewSlackNotifier(SlackOptions{BotToken: testToken,
			APIURL: e.slack.URL(), Channel: "C0DEFAULT", Logger: logger})
		if err != nil {
			t.Fatalf("NewSlackNotifier: %v", err)
		}
		e.notifier = n
		o.Notifier = n
	}
	if cfg.opts != nil {
		cfg.opts(&o)
	}

	svc, err := New(e.db, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.svc = svc

	if cfg.slack {
		h, err := NewCallbackHandler(svc, e.notifier, testSecret)
		if err != nil {
			t.Fatalf("NewCallbackHandler: %v", err)
		}
		e.handler = h
		mux := http.NewServeMux()
		mux.Handle("POST /slack/interactions", h)
		e.server = httptest.NewServer(mux)
		t.Cleanup(e.server.Close)
		t.Cleanup(h.Close)
	}
	return e
}

// eventTypes lists the events seen so far.
func (e *env) eventTypes() []EventType {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []EventType
	for _, ev := range e.events {
		out = append(out, ev.Type)
	}
	return out
}

// open opens r and fails the test on error.
func (e *env) open(r Request) *Request {
	e.t.Helper()
	got, err := e.svc.Open(context.Background(), r)
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	return got
}

// get reads a request and fails the test on error.
func (e *env) get(id string) *Request {
	e.t.Helper()
	r, err := e.svc.Get(context.Background(), id)
	if err != nil {
		e.t.Fatalf("Get(%s): %v", id, err)
	}
	return r
}

// storedState reads the state column as stored, without judging expiry.
func (e *env) storedState(id string) State {
	e.t.Helper()
	var s string
	err := e.db.QueryRow(`SELECT state FROM approval_requests WHERE id = ?`,
		id).Scan(&s)
	if err != nil {
		e.t.Fatalf("read state of %s: %v", id, err)
	}
	return State(s)
}

// post sends a callback to the handler over loopback HTTP and waits until
// its background work is done.
func (e *env) post(req *http.Request) (int, string) {
	e.t.Helper()
	resp, err := e.server.Client().Do(req)
	if err != nil {
		e.t.Fatalf("post callback: %v", err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		e.t.Fatalf("read callback answer: %v", err)
	}
	e.handler.Close()
	return resp.StatusCode, b.String()
}

// click sends a correctly signed button click.
func (e *env) click(user, id, action string) (int, string) {
	e.t.Helper()
	return e.post(e.signed(clickBody(user, id, action), time.Now()))
}

// signed builds a callback request signed as Slack signs it.
func (e *env) signed(body string, at time.Time) *http.Request {
	e.t.Helper()
	ts := strconv.FormatInt(at.Unix(), 10)
	req := e.request(body)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", sign(testSecret, ts, body))
	return req
}

// request builds an unsigned callback request.
func (e *env) request(body string) *http.Request {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost,
		e.server.URL+"/slack/interactions", strings.NewReader(body))
	if err != nil {
		e.t.Fatalf("build request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

// sign computes Slack's v0 signature.
func sign(secret, ts, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "v0:%s:%s", ts, body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// clickBody is the form body Slack sends when user clicks a button.
func clickBody(user, id, action string) string {
	b, _ := json.Marshal(clickPayload(user, id, action))
	return url.Values{"payload": {string(b)}}.Encode()
}

// clickPayload is the block_actions payload of a button click.
func clickPayload(user, id, action string) map[string]any {
	return map[string]any{
		"type":    "block_actions",
		"user":    map[string]any{"id": user, "username": strings.ToLower(user)},
		"team":    map[string]any{"id": "T0TEAM"},
		"channel": map[string]any{"id": testChannel},
		"container": map[string]any{"type": "message",
			"message_ts": "1764842400.000001", "channel_id": testChannel},
		"response_url": "http://127.0.0.1:1/unused",
		"actions": []map[string]any{{
			"type": "button", "action_id": action, "block_id": blockPrefix + id,
			"value": id, "action_ts": "1764842401.000001",
		}},
	}
}
