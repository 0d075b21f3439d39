package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// openInSlack opens r and returns it with the message the fake received.
func openInSlack(t *testing.T, e *env, r Request) (*Request, slackCall) {
	t.Helper()
	opened := e.open(r)
	posts := e.slack.waitCalls(t, "chat.postMessage", 1)
	post := posts[len(posts)-1]
	if opened.Message.TS == "" {
		t.Fatal("Open did not record the Slack message")
	}
	return opened, post
}

func TestSlackApproveFlow(t *testing.T) {
	e := newEnv(t, envConfig{slack: true, opts: func(o *Options) { o.Wait = time.Hour }})
	e.svc.poll = time.Hour // only the broadcast can wake Wait
	opened, post := openInSlack(t, e, deleteRequest())

	if got := post.Form.Get("channel"); got != testChannel {
		t.Fatalf("posted to %q, want %q", got, testChannel)
	}
	blocks := post.Blocks(t)
	acts := actionsBlock(blocks)
	if acts == nil || acts["block_id"] != blockPrefix+opened.ID {
		t.Fatalf("actions block = %v, want block_id approval:%s", acts, opened.ID)
	}
	for _, el := range acts["elements"].([]any) {
		b := el.(map[string]any)
		if b["value"] != opened.ID {
			t.Fatalf("button value %v, want only the request id", b["value"])
		}
	}
	if !slices.Contains(sectionTexts(t, blocks), opened.Display) {
		t.Fatalf("command not shown in a plain_text section: %v", sectionTexts(t, blocks))
	}

	blocked := make(chan struct{}, 1)
	e.svc.blocking = func(string) {
		select {
		case blocked <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waited := make(chan *Request, 1)
	go func() {
		r, err := e.svc.Wait(ctx, opened.ID, nil)
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
		waited <- r
	}()
	select {
	case <-blocked:
	case <-ctx.Done():
		t.Fatal("Wait never blocked")
	}

	if code, _ := e.click("U0CAROL", opened.ID, actionApprove); code != http.StatusOK {
		t.Fatalf("signed click answered %d, want 200", code)
	}
	if got := <-waited; got == nil || got.State != StateApproved {
		t.Fatalf("Wait = %v, want approved", got)
	}

	updates := e.slack.waitCalls(t, "chat.update", 1)
	upd := updates[0]
	if upd.Form.Get("ts") != opened.Message.TS || upd.Form.Get("channel") != testChannel {
		t.Fatalf("updated %s/%s, want %s/%s", upd.Form.Get("channel"),
			upd.Form.Get("ts"), testChannel, opened.Message.TS)
	}
	ublocks := upd.Blocks(t)
	if actionsBlock(ublocks) != nil {
		t.Fatal("buttons still shown after approval")
	}
	if !anyContains(sectionTexts(t, ublocks), "Approved by carol@example.com (via slack)") {
		t.Fatalf("outcome not shown: %v", sectionTexts(t, ublocks))
	}

	claimed, err := e.svc.Claim(ctx, opened.ID)
	if err != nil || claimed.State != StateExecuted {
		t.Fatalf("Claim = %v, %v", claimed, err)
	}
	if _, err := e.svc.Claim(ctx, opened.ID); !errors.Is(err, ErrAlreadyExecuted) {
		t.Fatalf("second Claim: %v, want ErrAlreadyExecuted", err)
	}
	updates = e.slack.waitCalls(t, "chat.update", 2)
	if !anyContains(sectionTexts(t, updates[1].Blocks(t)), "Run at") {
		t.Fatal("message not updated after execution")
	}
	if n := len(e.slack.Calls("chat.postEphemeral")); n != 0 {
		t.Fatalf("%d ephemeral replies to a plain approval", n)
	}
}

func TestSlackDenyFlow(t *testing.T) {
	e := newEnv(t, envConfig{slack: true})
	opened, _ := openInSlack(t, e, deleteRequest())

	if code, _ := e.click("U0DAVE", opened.ID, actionDeny); code != http.StatusOK {
		t.Fatalf("click answered %d", code)
	}
	got, err := e.svc.Wait(context.Background(), opened.ID, nil)
	if err != nil || got.State != StateDenied {
		t.Fatalf("Wait = %v, %v; want denied", got, err)
	}
	upd := e.slack.waitCalls(t, "chat.update", 1)[0].Blocks(t)
	if actionsBlock(upd) != nil || !anyContains(sectionTexts(t, upd), "Denied by dave@example.com") {
		t.Fatalf("message after deny: %v", sectionTexts(t, upd))
	}
	if _, err := e.svc.Claim(context.Background(), opened.ID); !errors.Is(err, ErrNotApproved) {
		t.Fatalf("Claim after deny: %v", err)
	}
}

func TestSlackExpiry(t *testing.T) {
	e := newEnv(t, envConfig{slack: true})
	opened, _ := openInSlack(t, e, deleteRequest())
	e.clock.Advance(DefaultExpiry + time.Second)

	if n, err := e.svc.ExpireDue(context.Background()); err != nil || n != 1 {
		t.Fatalf("ExpireDue = %d, %v", n, err)
	}
	upd := e.slack.waitCalls(t, "chat.update", 1)[0].Blocks(t)
	if actionsBlock(upd) != nil || !anyContains(sectionTexts(t, upd), "without a decision") {
		t.Fatalf("message after expiry: %v", sectionTexts(t, upd))
	}

	e.click("U0CAROL", opened.ID, actionApprove)
	eph := e.slack.waitCalls(t, "chat.postEphemeral", 1)[0]
	if eph.Form.Get("text") != "This request has expired." || eph.Form.Get("user") != "U0CAROL" {
		t.Fatalf("late click reply: %v", eph.Form)
	}
	if got := e.get(opened.ID); got.State != StateExpired || len(got.Decisions) != 0 {
		t.Fatalf("late click changed the request: %s, %d decisions", got.State, len(got.Decisions))
	}
}

func TestSlackRejectsBadSignatures(t *testing.T) {
	tests := []struct {
		name  string
		build func(e *env, body string) *http.Request
	}{
		{name: "B19 forged all-zero signature", build: func(e *env, body string) *http.Request {
			req := e.request(body)
			req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(time.Now().Unix(), 10))
			req.Header.Set("X-Slack-Signature", "v0="+strings.Repeat("0", 64))
			return req
		}},
		{name: "B21 stale but correctly signed", build: func(e *env, body string) *http.Request {
			return e.signed(body, time.Now().Add(-10*time.Minute))
		}},
		{name: "timestamp from the future", build: func(e *env, body string) *http.Request {
			return e.signed(body, time.Now().Add(10*time.Minute))
		}},
		{name: "missing signature", build: func(e *env, body string) *http.Request {
			req := e.signed(body, time.Now())
			req.Header.Del("X-Slack-Signature")
			return req
		}},
		{name: "missing timestamp", build: func(e *env, body string) *http.Request {
			req := e.signed(body, time.Now())
			req.Header.Del("X-Slack-Request-Timestamp")
			return req
		}},
		{name: "no headers at all", build: func(e *env, body string) *http.Request {
			return e.request(body)
		}},
		{name: "signature without v0 prefix", build: func(e *env, body string) *http.Request {
			req := e.signed(body, time.Now())
			sig := req.Header.Get("X-Slack-Signature")
			req.Header.Set("X-Slack-Signature", strings.TrimPrefix(sig, "v0="))
			return req
		}},
		{name: "signature not hex", build: func(e *env, body string) *http.Request {
			req := e.signed(body, time.Now())
			req.Header.Set("X-Slack-Signature", "v0="+strings.Repeat("zz", 32))
			return req
		}},
		{name: "signed with another secret", build: func(e *env, body string) *http.Request {
			req := e.signed(body, time.Now())
			ts := req.Header.Get("X-Slack-Request-Timestamp")
			req.Header.Set("X-Slack-Signature", sign("other-secret", ts, body))
			return req
		}},
		{name: "body changed after signing", build: func(e *env, body string) *http.Request {
			req := e.signed(body, time.Now())
			tampered := e.request(strings.Replace(body, "U0CAROL", "U0DAVE", 1))
			tampered.Header = req.Header
			return tampered
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envConfig{slack: true})
			opened, _ := openInSlack(t, e, deleteRequest())
			before := e.slack.Count()

			code, body := e.post(tt.build(e, clickBody("U0CAROL", opened.ID, actionApprove)))
			if code != http.StatusUnauthorized || body != rejectBody {
				t.Fatalf("answer %d %q, want 401 %q", code, body, rejectBody)
			}
			if got := e.get(opened.ID); got.State != StatePending || len(got.Decisions) != 0 {
				t.Fatalf("request changed: %s, %d decisions", got.State, len(got.Decisions))
			}
			if after := e.slack.Count(); after != before {
				t.Fatalf("%d Slack calls after a rejected callback", after-before)
			}
		})
	}
}

var hexRun = regexp.MustCompile(`[0-9a-fA-F]{64,}`)

func TestSlackRejectionLeaksNoSignature(t *testing.T) {
	e := newEnv(t, envConfig{slack: true})
	opened, _ := openInSlack(t, e, deleteRequest())
	body := clickBody("U0CAROL", opened.ID, actionApprove)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	expected := strings.TrimPrefix(sign(testSecret, ts, body), "v0=")

	forged := func(sig string) *http.Request {
		req := e.request(body)
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", "v0="+sig)
		return req
	}
	code, answer := e.post(forged(strings.Repeat("0", 64)))
	if code != http.StatusUnauthorized {
		t.Fatalf("forged callback answered %d", code)
	}

	// Everything an attacker or an operator could read afterwards.
	sources := map[string]string{"answer": answer, "log": e.logs.String()}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(e.dbPath + suffix)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		sources["db"+suffix] = string(b)
	}
	rows, err := e.svc.List(context.Background(), ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	dump, _ := json.Marshal(rows)
	sources["rows"] = string(dump)

	var candidates []string
	for name, text := range sources {
		if strings.Contains(strings.ToLower(text), expected) {
			t.Fatalf("%s holds the expected signature", name)
		}
		for _, h := range hexRun.FindAllString(text, -1) {
			for i := 0; i+64 <= len(h); i++ {
				candidates = append(candidates, strings.ToLower(h[i:i+64]))
			}
		}
	}
	if len(candidates) == 0 {
		t.Fatal("found no hex strings at all; the stored digest should be one")
	}
	for _, c := range candidates {
		if code, _ := e.post(forged(c)); code != http.StatusUnauthorized {
			t.Fatalf("resend with %s answered %d", c, code)
		}
	}
	if got := e.get(opened.ID); got.State != StatePending {
		t.Fatalf("state = %s, want pending", got.State)
	}
}

func TestSlackRefusesNonApprovers(t *testing.T) {
	tests := []struct {
		name string
		user string
	}{
		{name: "B22 slack user not on the list", user: "U0FRANK"},
		{name: "requester clicks their own request", user: "U0ALICE"},
		{name: "requester under a slack account outside the directory", user: "U0ALICE2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envConfig{slack: true})
			r := deleteRequest()
			r.Approvers = Approvers{Groups: []string{"dba", "dev"}}
			opened, _ := openInSlack(t, e, r)

			if code, _ := e.click(tt.user, opened.ID, actionApprove); code != http.StatusOK {
				t.Fatalf("click answered %d", code)
			}
			eph := e.slack.waitCalls(t, "chat.postEphemeral", 1)[0]
			if eph.Form.Get("text") != msgNotApprover || eph.Form.Get("user") != tt.user ||
				eph.Form.Get("channel") != testChannel {
				t.Fatalf("reply = %v, want %q to %s", eph.Form, msgNotApprover, tt.user)
			}
			if got := e.get(opened.ID); got.State != StatePending || len(got.Decisions) != 0 {
				t.Fatalf("request changed: %s, %d decisions", got.State, len(got.Decisions))
			}
			if n := len(e.slack.Calls("chat.update")); n != 0 {
				t.Fatalf("message updated %d times after a refused click", n)
			}
		})
	}
}

func TestSlackUnknownUserGetsAReply(t *testing.T) {
	e := newEnv(t, envConfig{slack: true})
	opened, _ := openInSlack(t, e, deleteRequest())
	e.click("U0NOBODY", opened.ID, actionApprove)
	eph := e.slack.waitCalls(t, "chat.postEphemeral", 1)[0]
	if !strings.Contains(eph.Form.Get("text"), "could not be checked") {
		t.Fatalf("reply = %q", eph.Form.Get("text"))
	}
	if got := e.get(opened.ID); got.State != StatePending {
		t.Fatalf("state = %s, want pending", got.State)
	}
}

func TestSlackReplayChangesNothing(t *testing.T) {
	e := newEnv(t, envConfig{slack: true})
	opened, _ := openInSlack(t, e, deleteRequest())
	body := clickBody("U0CAROL", opened.ID, actionApprove)
	at := time.Now()

	if code, _ := e.post(e.signed(body, at)); code != http.StatusOK {
		t.Fatalf("first click answered %d", code)
	}
	approved := e.get(opened.ID)
	if approved.State != StateApproved {
		t.Fatalf("state = %s, want approved", approved.State)
	}

	// The same signed request again, inside Slack's five minutes.
	if code, _ := e.post(e.signed(body, at)); code != http.StatusOK {
		t.Fatalf("replay answered %d", code)
	}
	got := e.get(opened.ID)
	if got.State != StateApproved || len(got.Decisions) != 1 ||
		!got.ExpiresAt.Equal(approved.ExpiresAt) {
		t.Fatalf("replay changed the request: %s, %d decisions", got.State, len(got.Decisions))
	}
	eph := e.slack.waitCalls(t, "chat.postEphemeral", 1)[0]
	if eph.Form.Get("text") != "This request is no longer pending." {
		t.Fatalf("replay reply = %q", eph.Form.Get("text"))
	}
	if n := len(e.slack.Calls("chat.update")); n != 1 {
		t.Fatalf("message updated %d times, want once", n)
	}
}

func TestSlackTwoApprovers(t *testing.T) {
	e := newEnv(t, envConfig{slack: true})
	r := deleteRequest()
	r.Required = 2
	opened, _ := openInSlack(t, e, r)

	e.click("U0CAROL", opened.ID, actionApprove)
	if got := e.get(opened.ID); got.State != StatePending {
		t.Fatalf("after one approval: %s, want pending", got.State)
	}
	upd := e.slack.waitCalls(t, "chat.update", 1)[0].Blocks(t)
	if actionsBlock(upd) == nil || !anyContains(sectionTexts(t, upd), "1 of 2 needed") {
		t.Fatalf("partial approval not shown with buttons kept: %v", sectionTexts(t, upd))
	}

	e.click("U0CAROL", opened.ID, actionApprove)
	ephs := e.slack.waitCalls(t, "chat.postEphemeral", 2)
	if ephs[1].Form.Get("text") != "You have already decided this request." {
		t.Fatalf("second click by carol: %q", ephs[1].Form.Get("text"))
	}
	if got := e.get(opened.ID); got.State != StatePending || len(got.Decisions) != 1 {
		t.Fatalf("second click by carol counted: %s, %d decisions", got.State, len(got.Decisions))
	}

	e.click("U0ERIN", opened.ID, actionApprove)
	got := e.get(opened.ID)
	if got.State != StateApproved || len(got.Approvals()) != 2 {
		t.Fatalf("after erin: %s, %d approvals; want approved by 2", got.State, len(got.Approvals()))
	}
}

func TestSlackApproverByEmailLookup(t *testing.T) {
	e := newEnv(t, envConfig{slack: true})
	r := deleteRequest()
	r.Approvers = Approvers{Emails: []string{"frank@example.com"}}
	first, _ := openInSlack(t, e, r)
	e.click("U0FRANK", first.ID, actionApprove)
	if got := e.get(first.ID); got.State != StateApproved {
		t.Fatalf("frank by Slack email: %s, want approved", got.State)
	}

	r.Arguments = json.RawMessage(`{"sql":"DELETE FROM users WHERE id = 9"}`)
	second := e.open(r)
	e.click("U0FRANK", second.ID, actionApprove)
	if got := e.get(second.ID); got.State != StateApproved {
		t.Fatalf("second request: %s, want approved", got.State)
	}
	if n := len(e.slack.Calls("users.info")); n != 1 {
		t.Fatalf("users.info called %d times, want 1 (cached)", n)
	}
}

func TestSlackMarkupStaysPlainText(t *testing.T) {
	const markup = "ls ` <https://evil.example|Approve safely> ` <@U0CAROL> <!channel> *bold* & more"
	e := newEnv(t, envConfig{slack: true})
	r := deleteRequest()
	r.Tool = "run_shell"
	r.Target = "<https://evil.example|web-1>"
	r.Arguments = json.RawMessage(`{"command":` + strconv.Quote(markup) + `}`)
	r.Display = markup
	r.Reasons = []string{"<!here> reason"}
	opened, post := openInSlack(t, e, r)
	e.click("U0CAROL", opened.ID, actionApprove)
	update := e.slack.waitCalls(t, "chat.update", 1)[0]

	for _, call := range []slackCall{post, update} {
		raw := call.Form.Get("blocks")
		if strings.Contains(raw, "mrkdwn") {
			t.Fatalf("%s: blocks use mrkdwn: %s", call.Method, raw)
		}
		for _, obj := range textObjects(call.Blocks(t)) {
			if obj["type"] != "plain_text" || obj["emoji"] != false {
				t.Fatalf("%s: text object %v, want plain_text with emoji false", call.Method, obj)
			}
		}
		texts := sectionTexts(t, call.Blocks(t))
		if !slices.Contains(texts, markup) {
			t.Fatalf("%s: command not verbatim in a plain_text section: %q", call.Method, texts)
		}
		if !anyContains(texts, "Target: <https://evil.example|web-1>") {
			t.Fatalf("%s: target not verbatim: %q", call.Method, texts)
		}
		if txt := call.Form.Get("text"); strings.ContainsAny(txt, "<>") || strings.Contains(txt, "evil") {
			t.Fatalf("%s: fallback text %q carries markup", call.Method, txt)
		}
	}
}

func TestSlackLongCommandIsSplitNotTruncated(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 20000; i++ {
		b.WriteString("SELECT '<x>' & 'é😀' AS c" + strconv.Itoa(i) + " FROM t;")
		if i%7 == 0 {
			b.WriteString("\n")
		}
	}
	long := b.String()

	e := newEnv(t, envConfig{slack: true})
	r := deleteRequest()
	r.Display = long
	_, post := openInSlack(t, e, r)

	blocks := post.Blocks(t)
	parts := commandTexts(t, blocks)
	for _, txt := range parts {
		if n := utf8.RuneCountInString(txt); n > maxTextCost {
			t.Fatalf("a section holds %d characters", n)
		}
	}
	if got := strings.Join(parts, ""); got != long {
		t.Fatalf("sections rebuild %d of %d bytes", len(got), len(long))
	}
	if len(parts) < 2 || len(blocks) > maxBlocks {
		t.Fatalf("%d parts in %d blocks", len(parts), len(blocks))
	}
}

func TestSlackRefusesWhatCannotBeShownInFull(t *testing.T) {
	e := newEnv(t, envConfig{slack: true})
	r := deleteRequest()
	r.Display = strings.Repeat("x", maxBlocks*maxTextCost)
	_, err := e.svc.Open(context.Background(), r)
	if !errors.Is(err, ErrTooLong) {
		t.Fatalf("Open error = %v, want ErrTooLong", err)
	}
	if list, _ := e.svc.List(context.Background(), ListFilter{}); len(list) != 0 {
		t.Fatal("refused request was stored")
	}
	if n := e.slack.Count(); n != 0 {
		t.Fatalf("%d Slack calls for a refused request", n)
	}
}

func TestSlackUsesTheDefaultChannel(t *testing.T) {
	e := newEnv(t, envConfig{slack: true})
	r := deleteRequest()
	r.Channel = ""
	_, post := openInSlack(t, e, r)
	if got := post.Form.Get("channel"); got != "C0DEFAULT" {
		t.Fatalf("posted to %q, want the default channel", got)
	}
}

func TestSlackPostFailureIsRetriedOnResume(t *testing.T) {
	e := newEnv(t, envConfig{slack: true})
	var fail atomic.Bool
	fail.Store(true)
	e.slack.setOnCall(func(w http.ResponseWriter, _ *http.Request, method string) bool {
		if method == "chat.postMessage" && fail.Load() {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"ok":false,"error":"channel_not_found"}`))
			return true
		}
		return false
	})
	first := e.open(deleteRequest())
	if first.State != StatePending || first.Message.TS != "" {
		t.Fatalf("after a failed post: %s, ts %q", first.State, first.Message.TS)
	}
	fail.Store(false)
	again := e.open(deleteRequest())
	if again.ID != first.ID || again.Message.TS == "" {
		t.Fatalf("resume did not post: id %s, ts %q", again.ID, again.Message.TS)
	}
	if n := len(e.slack.Calls("chat.postMessage")); n != 1 {
		t.Fatalf("%d successful posts, want 1", n)
	}
}

func TestSlackCallbackRejectsOversizeAndWrongMethod(t *testing.T) {
	e := newEnv(t, envConfig{slack: true})
	big := strings.Repeat("a", maxCallbackBody+1)
	code, _ := e.post(e.signed(big, time.Now()))
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversize body answered %d, want 413", code)
	}
	resp, err := e.server.Client().Get(e.server.URL + "/slack/interactions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET answered %d, want 405", resp.StatusCode)
	}
}

func TestSlackConstructorsRefuseBadConfig(t *testing.T) {
	e := newEnv(t, envConfig{slack: true})
	if _, err := NewCallbackHandler(e.svc, e.notifier, ""); err == nil {
		t.Fatal("NewCallbackHandler accepted an empty signing secret")
	}
	if _, err := NewSocketMode(e.svc, e.notifier, ""); err == nil {
		t.Fatal("NewSocketMode accepted an empty app token")
	}
	bad := []SlackOptions{
		{},
		{BotToken: testToken, APIURL: "http://127.0.0.1:9/api"},
		{BotToken: testToken, APIURL: "file:///etc/"},
		{BotToken: testToken, APIURL: "::"},
	}
	for _, o := range bad {
		if _, err := NewSlackNotifier(o); err == nil {
			t.Fatalf("NewSlackNotifier(%+v) accepted", o)
		} else if strings.Contains(err.Error(), testToken) {
			t.Fatalf("error %q shows the token", err)
		}
	}
}

func TestSplitText(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		limit int
		parts int
	}{
		{name: "fits", text: "abc", limit: 3, parts: 1},
		{name: "plain split", text: "abcdef", limit: 4, parts: 2},
		{name: "escaped characters cost more", text: "<<<", limit: 8, parts: 2},
		{name: "astral runes count two", text: "😀😀😀", limit: 4, parts: 2},
		{name: "prefers a late newline", text: "abc\ndefgh", limit: 6, parts: 2},
		{name: "empty", text: "", limit: 5, parts: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splitText(tt.text, tt.limit)
			if len(got) != tt.parts || strings.Join(got, "") != tt.text {
				t.Fatalf("splitText(%q, %d) = %q", tt.text, tt.limit, got)
			}
			for _, p := range got {
				cost := 0
				for _, r := range p {
					cost += runeCost(r)
				}
				if cost > tt.limit || !utf8.ValidString(p) {
					t.Fatalf("part %q costs %d > %d or is broken", p, cost, tt.limit)
				}
			}
		})
	}
	if got := splitText("abc\ndefgh", 6); got[0] != "abc\n" {
		t.Fatalf("cut at %q, want after the newline", got[0])
	}
}

func anyContains(list []string, sub string) bool {
	for _, x := range list {
		if strings.Contains(x, sub) {
			return true
		}
	}
	return false
}
