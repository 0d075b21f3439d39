package approvals

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// slackCall is one Web API call the fake received.
type slackCall struct {
	Method string
	Form   url.Values
}

// Blocks decodes the blocks form field.
func (c slackCall) Blocks(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(c.Form.Get("blocks")), &out); err != nil {
		t.Fatalf("%s: decode blocks: %v", c.Method, err)
	}
	return out
}

// fakeSlack is a local stand-in for the Slack Web API that records every
// call. users maps Slack user ids to the email users.info returns.
type fakeSlack struct {
	srv *httptest.Server

	mu      sync.Mutex
	calls   []slackCall
	changed chan struct{}
	users   map[string]string
	nextTS  int
	// onCall, if set, serves methods the fake does not know.
	onCall func(w http.ResponseWriter, r *http.Request, method string) bool
}

func newFakeSlack(t *testing.T) *fakeSlack {
	t.Helper()
	f := &fakeSlack{
		changed: make(chan struct{}),
		users: map[string]string{
			"U0FRANK":   "frank@example.com",
			"U0MALLORY": "mallory@example.com",
			"U0ALICE2":  "Alice@Example.com",
		},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the API base URL, ending in "/".
func (f *fakeSlack) URL() string { return f.srv.URL + "/" }

func (f *fakeSlack) serve(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/")
	f.mu.Lock()
	onCall := f.onCall
	f.mu.Unlock()
	if onCall != nil && onCall(w, r, method) {
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.PostForm.Get("token") != testToken {
		fmt.Fprint(w, `{"ok":false,"error":"invalid_auth"}`)
		return
	}

	f.mu.Lock()
	f.calls = append(f.calls, slackCall{Method: method, Form: r.PostForm})
	close(f.changed)
	f.changed = make(chan struct{})
	f.nextTS++
	ts := fmt.Sprintf("1764842400.%06d", f.nextTS)
	email, known := f.users[r.PostForm.Get("user")]
	f.mu.Unlock()

	ch := r.PostForm.Get("channel")
	var resp any
	switch method {
	case "chat.postMessage":
		resp = map[string]any{"ok": true, "channel": ch, "ts": ts}
	case "chat.update":
		resp = map[string]any{"ok": true, "channel": ch,
			"ts": r.PostForm.Get("ts")}
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

// setOnCall installs a handler for methods the fake does not know, or for
// overriding one.
func (f *fakeSlack) setOnCall(fn func(w http.ResponseWriter, r *http.Request, method string) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onCall = fn
}

// Calls returns the calls of one method so far.
func (f *fakeSlack) Calls(method string) []slackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []slackCall
	for _, c := range f.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Count is the number of calls of all methods so far.
func (f *fakeSlack) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// waitCalls waits until the fake has seen n calls of method. The deadline
// only turns a hang into a failure.
func (f *fakeSlack) waitCalls(t *testing.T, method string, n int) []slackCall {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		changed := f.changed
		f.mu.Unlock()
		if got := f.Calls(method); len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("fake slack: waited for %d %s calls, got %d", n, method,
				len(f.Calls(method)))
		}
	}
}

// textObjects collects every text object (type and text) in blocks.
func textObjects(blocks []map[string]any) []map[string]any {
	var out []map[string]any
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if typ, ok := x["type"].(string); ok && (typ == "plain_text" || typ == "mrkdwn") {
				if _, ok := x["text"].(string); ok {
					out = append(out, x)
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
	for _, b := range blocks {
		walk(b)
	}
	return out
}

// sectionTexts returns the plain_text of each section block, in order.
func sectionTexts(t *testing.T, blocks []map[string]any) []string {
	t.Helper()
	var out []string
	for _, b := range blocks {
		if b["type"] != "section" {
			continue
		}
		txt, ok := b["text"].(map[string]any)
		if !ok {
			t.Fatalf("section without text object: %v", b)
		}
		if txt["type"] != "plain_text" {
			t.Fatalf("section text is %v, want plain_text", txt["type"])
		}
		out = append(out, txt["text"].(string))
	}
	return out
}

// commandTexts returns the sections that show the command: those after the
// context block that announces it.
func commandTexts(t *testing.T, blocks []map[string]any) []string {
	t.Helper()
	var out []string
	in := false
	for _, b := range blocks {
		switch {
		case b["type"] == "context":
			in = true
		case in && b["type"] == "section":
			out = append(out, sectionTexts(t, []map[string]any{b})...)
		case in:
			return out
		}
	}
	return out
}

// actionsBlock returns the actions block, if any.
func actionsBlock(blocks []map[string]any) map[string]any {
	for _, b := range blocks {
		if b["type"] == "actions" {
			return b
		}
	}
	return nil
}
