package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-guard/mcp-guard/approvals"
	"github.com/mcp-guard/mcp-guard/identity"
	"github.com/mcp-guard/mcp-guard/policy"
)

// confirmRego marks run_shell calls made only of touch commands as
// confirmable by the caller; the rest of the bundled policy is unchanged.
const confirmRego = `package mcpguard

import rego.v1

approval_spec := {
	"groups": ["approvers"], "emails": [], "required": 1, "channel": "",
	"confirmable": true,
} if {
	input.tool == "run_shell"
	count(commands) > 0
	every c in commands {
		c.base == "touch"
	}
}
`

// runner is the caller the fixture's HTTP listener sees.
var runner = identity.Caller{Subject: "acceptance-runner", Email: runnerEmail}

// confirmWorld is a guard over HTTP whose policy lets the caller confirm
// touch commands, with a confirmation key the test knows.
type confirmWorld struct {
	f    *fixture
	base string
	key  []byte
}

func newConfirmWorld(t *testing.T) *confirmWorld {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "policy")
	must(t, os.MkdirAll(dir, 0o755))
	for _, m := range policy.Bundled() {
		if strings.HasSuffix(m.Name, "_test.rego") {
			continue
		}
		must(t, os.WriteFile(filepath.Join(dir, filepath.Base(m.Name)), []byte(m.Source), 0o644))
	}
	must(t, os.WriteFile(filepath.Join(dir, "confirm.rego"), []byte(confirmRego), 0o644))

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyPath := filepath.Join(t.TempDir(), "confirm.key")
	must(t, os.WriteFile(keyPath, key, 0o600))

	f := newFixture(t, fmt.Sprintf(`policy: {dir: "%s"}
approvals:
  wait: 1s
  confirm_key_file: "%s"
%s`, dir, keyPath, approvalPeople))
	w := &confirmWorld{f: f, key: key}
	w.base = f.startHTTP(testContext(t))
	return w
}

// elicitor answers every elicitation with one action and keeps the
// messages it was shown.
type elicitor struct {
	action  mcp.ElicitationResponseAction
	confirm bool

	// mu guards asked.
	mu    sync.Mutex
	asked []string
}

func (e *elicitor) Elicit(_ context.Context, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	e.mu.Lock()
	e.asked = append(e.asked, r.Params.Message)
	e.mu.Unlock()
	res := &mcp.ElicitationResult{}
	res.Action = e.action
	if e.action == mcp.ElicitationResponseActionAccept {
		res.Content = map[string]any{"confirm": e.confirm}
	}
	return res, nil
}

func (e *elicitor) messages() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.asked...)
}

// client connects an mcp-go client; h may be nil for a client that cannot
// elicit, version "" is the newest protocol.
func (w *confirmWorld) client(ctx context.Context, t *testing.T, version string,
	h client.ElicitationHandler) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(w.base + "/mcp")
	must(t, err)
	var opts []client.ClientOption
	if h != nil {
		opts = append(opts, client.WithElicitationHandler(h))
	}
	c := client.NewClient(tr, opts...)
	must(t, c.Start(ctx))
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "e2e-confirm", Version: "1.0"}
	init.Params.ProtocolVersion = version
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// stdio starts the guard on stdio with a client that elicits through h.
func (w *confirmWorld) stdio(ctx context.Context, t *testing.T,
	h client.ElicitationHandler) *client.Client {
	t.Helper()
	tr := transport.NewStdioWithOptions(guardBinary(t), w.f.env,
		[]string{"serve", "--config", w.f.cfgPath},
		transport.WithCommandFunc(func(ctx context.Context, command string,
			env []string, args []string) (*exec.Cmd, error) {
			cmd := exec.CommandContext(ctx, command, args...)
			cmd.Env = env
			cmd.Dir = w.f.dir
			return cmd, nil
		}),
		transport.WithCommandStderrWriter(w.f.stderr))
	c := client.NewClient(tr, client.WithElicitationHandler(h))
	must(t, c.Start(ctx))
	t.Cleanup(func() { c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "e2e-confirm-stdio", Version: "1.0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v\nstderr:\n%s", err, w.f.stderr)
	}
	return c
}

// touched reports whether the shell target's workdir holds name.
func (w *confirmWorld) touched(name string) bool {
	_, err := os.Stat(filepath.Join(w.f.vars["workdir"], name))
	return err == nil
}

func touchArgs(name string) map[string]any {
	return map[string]any{"target": "local", "command": "touch " + name}
}

// TestConfirmInIDE: a confirmable call is confirmed by the caller through
// elicitation, on both protocol versions; declining denies; a client that
// cannot elicit goes to the approval flow.
func TestConfirmInIDE(t *testing.T) {
	w := newConfirmWorld(t)
	ctx := testContext(t)

	for _, version := range []string{"", mcp.ProtocolVersion20251125} {
		name := version
		if name == "" {
			name = "current"
		}
		t.Run(name, func(t *testing.T) {
			yes := &elicitor{action: mcp.ElicitationResponseActionAccept, confirm: true}
			file := "confirmed-" + name
			_, res := callTool(ctx, t, w.client(ctx, t, version, yes), "run_shell", touchArgs(file))
			if res["isError"] == true || !w.touched(file) {
				t.Fatalf("confirmed call did not run: %v", res)
			}
			asked := yes.messages()
			if len(asked) != 1 || !strings.Contains(asked[0], "touch "+file) ||
				!strings.Contains(asked[0], "run_shell") {
				t.Errorf("the caller was asked %q", asked)
			}

			cases := []struct {
				name string
				h    *elicitor
			}{
				{"decline", &elicitor{action: mcp.ElicitationResponseActionDecline}},
				{"cancel", &elicitor{action: mcp.ElicitationResponseActionCancel}},
				{"accept without confirm", &elicitor{action: mcp.ElicitationResponseActionAccept}},
			}
			for _, tc := range cases {
				file := "refused-" + name + "-" + strings.ReplaceAll(tc.name, " ", "-")
				_, res := callTool(ctx, t, w.client(ctx, t, version, tc.h), "run_shell", touchArgs(file))
				if o := guardOutcome(res); o != "approval_denied" || w.touched(file) {
					t.Errorf("%s: outcome %q, ran %v", tc.name, o, w.touched(file))
				}
				if len(tc.h.messages()) != 1 {
					t.Errorf("%s: asked %d times", tc.name, len(tc.h.messages()))
				}
			}
		})
	}

	t.Run("stdio", func(t *testing.T) {
		yes := &elicitor{action: mcp.ElicitationResponseActionAccept, confirm: true}
		c := w.stdio(ctx, t, yes)
		_, res := callTool(ctx, t, c, "run_shell", touchArgs("confirmed-stdio"))
		if res["isError"] == true || !w.touched("confirmed-stdio") ||
			len(yes.messages()) != 1 {
			t.Fatalf("confirmed call over stdio: asked %d times: %v", len(yes.messages()), res)
		}
		no := &elicitor{action: mcp.ElicitationResponseActionDecline}
		_, res = callTool(ctx, t, w.stdio(ctx, t, no), "run_shell", touchArgs("declined-stdio"))
		if o := guardOutcome(res); o != "approval_denied" || w.touched("declined-stdio") {
			t.Fatalf("declined call over stdio: outcome %q", o)
		}
	})

	t.Run("client without elicitation", func(t *testing.T) {
		_, res := callTool(ctx, t, w.client(ctx, t, "", nil), "run_shell", touchArgs("unasked"))
		if o := guardOutcome(res); o != "approval_pending" || w.touched("unasked") {
			t.Fatalf("outcome %q, want approval_pending (the approval flow)", o)
		}
	})

	t.Run("not confirmable", func(t *testing.T) {
		yes := &elicitor{action: mcp.ElicitationResponseActionAccept, confirm: true}
		_, res := callTool(ctx, t, w.client(ctx, t, "", yes), "run_shell",
			map[string]any{"target": "local", "command": "mkdir made-by-mkdir"})
		if o := guardOutcome(res); o != "approval_pending" || len(yes.messages()) != 0 {
			t.Fatalf("mkdir: outcome %q after %d questions", o, len(yes.messages()))
		}
	})

	// The transcript holds the confirmation beside the call it ran, a
	// few milliseconds after the guard answered.
	db := openTranscript(t, w.f)
	var n int
	pollRecords(func() bool {
		err := db.QueryRow(`SELECT count(*) FROM records a JOIN records c
			ON c.call_id = a.call_id AND c.kind = 'call_completion'
			WHERE a.kind = 'approval' AND json_extract(a.body, '$.event') = 'confirmation_accepted'
			AND json_extract(a.body, '$.via') = 'elicitation'
			AND json_extract(a.body, '$.caller.subject') = 'acceptance-runner'
			AND json_extract(a.body, '$.display') = 'touch confirmed-current'
			AND json_extract(c.body, '$.outcome') = 'ok'`).Scan(&n)
		must(t, err)
		return n >= 1
	})
	if n != 1 {
		t.Errorf("%d accepted confirmation records for the confirmed call, want 1", n)
	}
}

// TestConfirmForged sends confirmation answers by hand: without having
// been asked, for another call, for another caller, after expiry, and
// twice. Each is refused and nothing runs.
func TestConfirmForged(t *testing.T) {
	w := newConfirmWorld(t)
	ctx := testContext(t)
	digest := func(name string) string {
		d, err := approvals.Digest("run_shell", "local", json.RawMessage(mustMarshal(touchArgs(name))))
		must(t, err)
		return d
	}
	signed := func(c identity.Caller, name string, exp time.Time) string {
		s, err := approvals.SignState(w.key, c, digest(name), exp)
		must(t, err)
		return s
	}
	accept := map[string]any{"confirm": map[string]any{"action": "accept",
		"content": map[string]any{"confirm": true}}}
	later := time.Now().Add(time.Minute)

	cases := []struct {
		name, file, state string
	}{
		{"forged state", "forged-1", "forged"},
		{"no state", "forged-2", ""},
		{"state of another call", "forged-3", signed(runner, "other-file", later)},
		{"state of another caller", "forged-4",
			signed(identity.Caller{Subject: "mallory"}, "forged-4", later)},
		{"expired state", "forged-5", signed(runner, "forged-5", time.Now().Add(-time.Second))},
		{"well-formed state, wrong key", "forged-6",
			"cs1.9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	}
	for _, tc := range cases {
		for _, version := range []string{mcp.ProtocolVersion20260728, mcp.ProtocolVersion20251125} {
			t.Run(tc.name+"/"+version, func(t *testing.T) {
				res := w.raw(ctx, t, version, touchArgs(tc.file), accept, tc.state)
				if o := guardOutcome(res); o != "denied" || w.touched(tc.file) {
					t.Fatalf("outcome %q, ran %v: %v", o, w.touched(tc.file), res)
				}
			})
		}
	}

	// A real state answers one call once.
	first := w.raw(ctx, t, mcp.ProtocolVersion20260728, touchArgs("once"), nil, "")
	state, _ := first["requestState"].(string)
	if first["resultType"] != "input_required" || state == "" {
		t.Fatalf("a call without an answer was not asked: %v", first)
	}
	if _, ok := first["inputRequests"].(map[string]any)["confirm"]; !ok {
		t.Fatalf("no confirm input request: %v", first)
	}
	res := w.raw(ctx, t, mcp.ProtocolVersion20260728, touchArgs("once"), accept, state)
	if res["isError"] == true || !w.touched("once") {
		t.Fatalf("the answered call did not run: %v", res)
	}
	must(t, os.Remove(filepath.Join(w.f.vars["workdir"], "once")))
	res = w.raw(ctx, t, mcp.ProtocolVersion20260728, touchArgs("once"), accept, state)
	if o := guardOutcome(res); o != "denied" || w.touched("once") {
		t.Fatalf("a replayed answer: outcome %q, ran %v", o, w.touched("once"))
	}
}

// raw sends one tools/call for run_shell as JSON-RPC over HTTP, with the
// given input responses and request state, and returns the result. On the
// newest protocol the request declares elicitation support; on 2025-11-25
// it opens a session that declares none.
func (w *confirmWorld) raw(ctx context.Context, t *testing.T, version string,
	args, responses map[string]any, state string) map[string]any {
	t.Helper()
	params := map[string]any{"name": "run_shell", "arguments": args}
	if responses != nil {
		params["inputResponses"] = responses
	}
	if state != "" {
		params["requestState"] = state
	}
	header := map[string]string{"Mcp-Protocol-Version": version}
	if version == mcp.ProtocolVersion20251125 {
		header["Mcp-Session-Id"] = w.legacySession(ctx, t)
	} else {
		params["_meta"] = map[string]any{
			mcp.MetaKeyProtocolVersion:    version,
			mcp.MetaKeyClientInfo:         map[string]any{"name": "forger", "version": "1"},
			mcp.MetaKeyClientCapabilities: map[string]any{"elicitation": map[string]any{}},
		}
		header["Mcp-Method"] = "tools/call"
		header["Mcp-Name"] = "run_shell"
	}
	body := mustMarshal(map[string]any{"jsonrpc": "2.0", "id": 7,
		"method": "tools/call", "params": params})
	status, msg := w.post(ctx, t, body, header)
	res, _ := msg["result"].(map[string]any)
	if status != http.StatusOK || res == nil {
		t.Fatalf("tools/call: %d %v", status, msg)
	}
	return res
}

// legacySession opens a 2025-11-25 session whose client declares no
// capabilities.
func (w *confirmWorld) legacySession(ctx context.Context, t *testing.T) string {
	t.Helper()
	init := mustMarshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "initialize",
		"params": map[string]any{"protocolVersion": mcp.ProtocolVersion20251125,
			"capabilities": map[string]any{},
			"clientInfo":   map[string]any{"name": "forger", "version": "1"}}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.base+"/mcp",
		bytes.NewReader(init))
	must(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("initialize: %d, session %q", resp.StatusCode, id)
	}
	status, _ := w.post(ctx, t, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`),
		map[string]string{"Mcp-Session-Id": id, "Mcp-Protocol-Version": mcp.ProtocolVersion20251125})
	if status != http.StatusAccepted {
		t.Fatalf("initialized: %d", status)
	}
	return id
}

// post sends a JSON-RPC body to /mcp and returns the status and the
// answer, read from a JSON or an event-stream body.
func (w *confirmWorld) post(ctx context.Context, t *testing.T, body []byte,
	header map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.base+"/mcp", bytes.NewReader(body))
	must(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	must(t, err)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		var m map[string]any
		_ = json.Unmarshal(data, &m)
		return resp.StatusCode, m
	}
	var last map[string]any
	for _, line := range strings.Split(string(data), "\n") {
		payload, ok := strings.CutPrefix(strings.TrimSpace(line), "data:")
		if !ok {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(payload), &m) == nil && m["id"] != nil {
			last = m
		}
	}
	return resp.StatusCode, last
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
