package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/oauth2-proxy/mockoidc"
)

// tokenAudience is the audience the tests configure for the guard.
const tokenAudience = "mcp-guard"

// groupPolicy lets read_file through for the group auditors, or for the
// verified email boss@example.com, and denies everything else. It shows
// that the policy sees the groups and the verified email of the token.
const groupPolicy = `package mcpguard

import rego.v1

default decision := {"outcome": "deny", "reasons": ["only auditors and the boss may read files here"]}

decision := {"outcome": "allow", "reasons": []} if allowed

allowed if input.tool == "list_targets"

allowed if {
	input.tool == "read_file"
	"auditors" in input.caller.groups
}

allowed if {
	input.tool == "read_file"
	input.caller.email == "boss@example.com"
}
`

// issuers are a configured OIDC issuer and a second one the guard does
// not trust, each with its own signing key, both on loopback.
type issuers struct {
	trusted *mockoidc.MockOIDC
	rogue   *mockoidc.MockOIDC
}

func startIssuers(t *testing.T) issuers {
	t.Helper()
	trusted, err := mockoidc.Run()
	if err != nil {
		t.Fatalf("start issuer: %v", err)
	}
	t.Cleanup(func() { _ = trusted.Shutdown() })

	// mockoidc.Run signs with a built-in key shared by every instance; the
	// rogue issuer gets a key of its own.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := mockoidc.NewServer(key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	must(t, rogue.Start(ln, nil))
	t.Cleanup(func() { _ = rogue.Shutdown() })
	return issuers{trusted: trusted, rogue: rogue}
}

// claims returns a valid claim set for sub from the trusted issuer; set
// overrides claims, and a nil value removes one.
func (is issuers) claims(sub string, set map[string]any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"iss": is.trusted.Issuer(),
		"aud": tokenAudience,
		"sub": sub,
		"iat": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(),
	}
	for k, v := range set {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// sign signs claims with the key of m.
func sign(t *testing.T, m *mockoidc.MockOIDC, c jwt.MapClaims) string {
	t.Helper()
	tok, err := m.Keypair.SignJWT(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unsigned returns claims as a JWT with alg none and an empty signature.
func unsigned(c jwt.MapClaims, sig string) string {
	enc := base64.RawURLEncoding
	payload, _ := json.Marshal(c)
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		enc.EncodeToString(payload) + "." + sig
}

// oidcConfig is the extra configuration that trusts the issuer.
func oidcConfig(issuer, resource, policyDir string) string {
	var b strings.Builder
	if resource != "" {
		fmt.Fprintf(&b, "http: {resource: %q}\n", resource)
	}
	fmt.Fprintf(&b, "auth: {oidc: [{issuer: %q, audience: %s, groups_claim: groups}]}\n",
		issuer, tokenAudience)
	fmt.Fprintf(&b, "policy: {dir: %q, watch: false}\n", policyDir)
	return b.String()
}

// writePolicy writes a policy directory holding rego and returns it.
func writePolicy(t *testing.T, rego string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "policy")
	must(t, os.MkdirAll(dir, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "policy.rego"), []byte(rego), 0o644))
	return dir
}

// freeLoopbackAddr returns a loopback address with a port that was free a
// moment ago, so that the resource URL can name it before the guard
// listens.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// serveGuard runs `mcp-guard serve` with args and returns the base URL it
// announces and a function that stops it and waits for it to exit.
func (f *fixture) serveGuard(ctx context.Context, args ...string) (string, func()) {
	f.t.Helper()
	args = append([]string{"serve", "--config", f.cfgPath}, args...)
	cmd := exec.CommandContext(ctx, guardBinary(f.t), args...)
	cmd.Env = f.env
	cmd.Dir = f.dir
	srv := startServing(f.t, cmd, f.stderr, 30*time.Second)
	return srv.base, srv.stop
}

// bearerClient connects an MCP client that sends token on every request.
func bearerClient(ctx context.Context, t *testing.T, url, token string) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(url,
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	must(t, c.Start(ctx))
	t.Cleanup(func() { c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "e2e-oidc", Version: "1.0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return c
}

// rawMCP speaks JSON-RPC over streamable HTTP by hand, as one session, so
// that tests can send bodies no client library would.
type rawMCP struct {
	t       *testing.T
	url     string
	token   string
	session string
}

// rawReply is what the server answered to one POST.
type rawReply struct {
	status int
	header http.Header
	body   []byte
	msg    map[string]any // the JSON-RPC message, if there is one
}

func (r rawReply) errorCode() float64 {
	e, _ := r.msg["error"].(map[string]any)
	code, _ := e["code"].(float64)
	return code
}

func (r rawReply) result() map[string]any {
	m, _ := r.msg["result"].(map[string]any)
	return m
}

// post sends body to /mcp with the session's headers.
func (r *rawMCP) post(ctx context.Context, body []byte) rawReply {
	r.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	must(r.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.session != "" {
		req.Header.Set("Mcp-Session-Id", r.session)
		req.Header.Set("MCP-Protocol-Version", mcp.ProtocolVersion20251125)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	must(r.t, err)
	return rawReply{status: resp.StatusCode, header: resp.Header, body: data,
		msg: jsonRPCMessage(resp.Header.Get("Content-Type"), data)}
}

// jsonRPCMessage finds the JSON-RPC answer in a JSON or SSE body: the
// last message that has an id.
func jsonRPCMessage(contentType string, data []byte) map[string]any {
	if !strings.HasPrefix(contentType, "text/event-stream") {
		var m map[string]any
		if json.Unmarshal(data, &m) != nil {
			return nil
		}
		return m
	}
	var last map[string]any
	for _, line := range strings.Split(string(data), "\n") {
		payload, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "data:")
		if !ok {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(strings.TrimSpace(payload)), &m) == nil && m["id"] != nil {
			last = m
		}
	}
	return last
}

// initialize opens the session.
func (r *rawMCP) initialize(ctx context.Context) {
	r.t.Helper()
	rep := r.post(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":`+
		`{"protocolVersion":"`+mcp.ProtocolVersion20251125+`","capabilities":{},`+
		`"clientInfo":{"name":"raw","version":"1"}}}`))
	if rep.status != http.StatusOK || rep.result() == nil {
		r.t.Fatalf("initialize: %d %s", rep.status, rep.body)
	}
	r.session = rep.header.Get("Mcp-Session-Id")
	if r.session == "" {
		r.t.Fatal("initialize gave no session id")
	}
	rep = r.post(ctx, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	if rep.status != http.StatusAccepted {
		r.t.Fatalf("initialized: %d %s", rep.status, rep.body)
	}
}

// stillServes checks that a valid call on the session is answered.
func (r *rawMCP) stillServes(ctx context.Context) {
	r.t.Helper()
	rep := r.post(ctx, []byte(`{"jsonrpc":"2.0","id":"alive","method":"tools/call",`+
		`"params":{"name":"list_targets","arguments":{}}}`))
	if rep.status != http.StatusOK || rep.result() == nil || rep.result()["isError"] == true {
		r.t.Fatalf("the server no longer answers a valid call: %d %s", rep.status, rep.body)
	}
}

// getJSON fetches url and decodes its JSON body.
func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// recordedCallers returns subject → issuers of the callers of recorded
// call intents.
func recordedCallers(t *testing.T, f *fixture) map[string][]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(f.dir, "var", "mcp-guard.db")+"?mode=ro")
	must(t, err)
	defer db.Close()
	rows, err := db.Query(`SELECT json_extract(body, '$.caller.subject'),
		coalesce(json_extract(body, '$.caller.issuer'), '')
		FROM records WHERE kind = 'call_intent' ORDER BY seq`)
	must(t, err)
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var sub, iss string
		must(t, rows.Scan(&sub, &iss))
		out[sub] = append(out[sub], iss)
	}
	must(t, rows.Err())
	return out
}

// refusedToken is a token the guard must refuse, with the reason code its
// log must give ("" when the code is not pinned).
type refusedToken struct {
	name, sub, token, reason string
}

func TestOIDCOverHTTP(t *testing.T) {
	is := startIssuers(t)
	addr := freeLoopbackAddr(t)
	resource := "http://" + addr + "/mcp"
	f := newFixture(t, oidcConfig(is.trusted.Issuer(), resource, writePolicy(t, groupPolicy)))
	ctx := testContext(t)
	base, stop := f.serveGuard(ctx, "--http", addr)
	url := base + "/mcp"
	if base != "http://"+addr {
		t.Fatalf("the guard serves at %s, want %s", base, addr)
	}

	// Every token made here must stay out of the log and the transcript.
	var tokens []string
	mint := func(m *mockoidc.MockOIDC, c jwt.MapClaims) string {
		tok := sign(t, m, c)
		tokens = append(tokens, tok)
		return tok
	}

	t.Run("groups decide", func(t *testing.T) {
		cases := []struct {
			name, sub string
			groups    []string
			want      string
		}{
			{"auditor reads", "alice", []string{"staff", "auditors"}, ""},
			{"developer is denied", "bob", []string{"developers"}, "denied"},
			{"no groups is denied", "nobody", nil, "denied"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				set := map[string]any{"groups": tc.groups}
				c := bearerClient(ctx, t, url, mint(is.trusted, is.claims(tc.sub, set)))
				_, res := callTool(ctx, t, c, "read_file",
					map[string]any{"target": "workspace", "path": "README.md"})
				if got := guardOutcome(res); got != tc.want {
					t.Fatalf("outcome %q, want %q: %v", got, tc.want, res)
				}
				if tc.want == "" && !strings.Contains(resultText(res), "Shop reports") {
					t.Fatalf("the file was not returned: %v", res)
				}
			})
		}
	})

	t.Run("email counts only when verified", func(t *testing.T) {
		cases := []struct {
			name, sub string
			verified  any
			want      string
		}{
			{"verified", "carol", true, ""},
			{"B27 verified false", "mallet", false, "denied"},
			{"verified as a string", "trudy", "true", "denied"},
			{"no verified flag", "eve", nil, "denied"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				set := map[string]any{"email": "boss@example.com", "email_verified": tc.verified}
				c := bearerClient(ctx, t, url, mint(is.trusted, is.claims(tc.sub, set)))
				_, res := callTool(ctx, t, c, "read_file",
					map[string]any{"target": "workspace", "path": "README.md"})
				if got := guardOutcome(res); got != tc.want {
					t.Fatalf("outcome %q, want %q: %v", got, tc.want, res)
				}
			})
		}
	})

	// Refused tokens: each has a subject of its own, so the log and the
	// transcript can be searched for it afterwards.
	var refused []refusedToken
	refuse := func(name, reason string, build func(sub string) string) {
		sub := "refused-" + alnum(10)
		tok := build(sub)
		tokens = append(tokens, tok)
		refused = append(refused, refusedToken{name, sub, tok, reason})
	}
	refuse("B24 other audience", "wrong_audience", func(sub string) string {
		return sign(t, is.trusted, is.claims(sub, map[string]any{"aud": "another-app"}))
	})
	refuse("B25 alg none, empty signature", "malformed", func(sub string) string {
		return unsigned(is.claims(sub, map[string]any{"email": sub + "@example.com",
			"email_verified": true, "groups": []string{"auditors"}}), "")
	})
	refuse("alg none, junk signature", "alg_not_allowed", func(sub string) string {
		return unsigned(is.claims(sub, map[string]any{"groups": []string{"auditors"}}), "c2ln")
	})
	refuse("B26 expired ten minutes ago", "expired", func(sub string) string {
		return sign(t, is.trusted, is.claims(sub, map[string]any{
			"iat": time.Now().Add(-time.Hour).Unix(), "exp": time.Now().Add(-10 * time.Minute).Unix()}))
	})
	refuse("no exp", "missing_exp", func(sub string) string {
		return sign(t, is.trusted, is.claims(sub, map[string]any{"exp": nil}))
	})
	// The signature is checked before any claim, so a token of another
	// issuer fails on its key, not on its iss.
	refuse("second issuer", "bad_signature", func(sub string) string {
		return sign(t, is.rogue, is.claims(sub, map[string]any{"iss": is.rogue.Issuer()}))
	})
	refuse("second issuer's key, our issuer's name", "bad_signature", func(sub string) string {
		return sign(t, is.rogue, is.claims(sub, nil))
	})
	refuse("no subject", "missing_subject", func(string) string {
		return sign(t, is.trusted, is.claims("", nil))
	})

	t.Run("refused tokens", func(t *testing.T) {
		for _, tc := range refused {
			t.Run(tc.name, func(t *testing.T) {
				r := &rawMCP{t: t, url: url, token: tc.token}
				rep := r.post(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":`+
					`{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`))
				if rep.status != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401: %s", rep.status, rep.body)
				}
				if string(rep.body) != `{"error":"invalid_token"}`+"\n" {
					t.Errorf("body %q is not the fixed invalid_token body", rep.body)
				}
				want := `Bearer resource_metadata="http://` + addr +
					`/.well-known/oauth-protected-resource/mcp", error="invalid_token"`
				if got := rep.header.Get("WWW-Authenticate"); got != want {
					t.Errorf("WWW-Authenticate %q, want %q", got, want)
				}
			})
		}
	})

	t.Run("missing token points to the metadata", func(t *testing.T) {
		r := &rawMCP{t: t, url: url}
		rep := r.post(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		if rep.status != http.StatusUnauthorized || string(rep.body) != `{"error":"unauthorized"}`+"\n" {
			t.Fatalf("status %d body %q, want 401 unauthorized", rep.status, rep.body)
		}
		m := regexp.MustCompile(`^Bearer resource_metadata="([^"]+)"$`).
			FindStringSubmatch(rep.header.Get("WWW-Authenticate"))
		if m == nil {
			t.Fatalf("WWW-Authenticate %q", rep.header.Get("WWW-Authenticate"))
		}
		for _, u := range []string{m[1], base + "/.well-known/oauth-protected-resource"} {
			status, doc := getJSON(t, u)
			if status != http.StatusOK {
				t.Fatalf("GET %s: %d", u, status)
			}
			servers := fmt.Sprint(doc["authorization_servers"])
			if doc["resource"] != resource || servers != "["+is.trusted.Issuer()+"]" {
				t.Errorf("GET %s: %v", u, doc)
			}
		}
	})

	t.Run("oversized body", func(t *testing.T) {
		big := bytes.Repeat([]byte(" "), 1<<20+1)
		copy(big, `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
		ok := mint(is.trusted, is.claims("big-sender", nil))
		cases := []struct {
			name, token string
			chunked     bool
		}{
			{"length over the cap, no token", "", false},
			{"length over the cap, valid token", ok, false},
			{"chunked over the cap, valid token", ok, true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var body io.Reader = bytes.NewReader(big)
				if tc.chunked {
					body = io.MultiReader(bytes.NewReader(big)) // hides the length
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
				must(t, err)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				if tc.token != "" {
					req.Header.Set("Authorization", "Bearer "+tc.token)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("post: %v", err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestEntityTooLarge {
					t.Fatalf("status %d, want 413", resp.StatusCode)
				}
			})
		}
		r := &rawMCP{t: t, url: url, token: ok}
		r.initialize(ctx)
		r.stillServes(ctx)
	})

	t.Run("malformed requests", func(t *testing.T) {
		r := &rawMCP{t: t, url: url, token: mint(is.trusted,
			is.claims("dave", map[string]any{"groups": []string{"auditors"}}))}
		r.initialize(ctx)
		cases := []struct {
			name, body string
			status     int
			code       float64 // JSON-RPC error code, or 0
			outcome    string  // guard outcome, or ""
		}{
			{"duplicate keys in arguments",
				`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_file",` +
					`"arguments":{"target":"workspace","path":"README.md","path":"../outside/shadow"}}}`,
				400, -32600, ""},
			{"duplicate keys differing in case",
				`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"read_file",` +
					`"arguments":{"target":"workspace","path":"README.md","PATH":"x"}}}`,
				400, -32600, ""},
			{"truncated frame",
				`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":`, 400, -32700, ""},
			{"not json", `hello`, 400, -32700, ""},
			{"unknown method",
				`{"jsonrpc":"2.0","id":5,"method":"tools/destroy","params":{}}`, 200, -32601, ""},
			{"params not an object",
				`{"jsonrpc":"2.0","id":6,"method":"tools/call","params":[1,2]}`, 200, -32600, ""},
			{"unknown tool",
				`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"drop_everything",` +
					`"arguments":{}}}`, 200, -32602, ""},
			{"path is a number",
				`{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"read_file",` +
					`"arguments":{"target":"workspace","path":5}}}`, 200, 0, "invalid"},
			{"arguments are a string",
				`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"read_file",` +
					`"arguments":"README.md"}}`, 200, 0, "invalid"},
			{"unknown argument",
				`{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"read_file",` +
					`"arguments":{"target":"workspace","path":"README.md","root":"/"}}}`, 200, 0, "invalid"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				rep := r.post(ctx, []byte(tc.body))
				if rep.status != tc.status {
					t.Errorf("status %d, want %d: %s", rep.status, tc.status, rep.body)
				}
				if got := rep.errorCode(); got != tc.code {
					t.Errorf("JSON-RPC error %v, want %v: %s", got, tc.code, rep.body)
				}
				if got := guardOutcome(rep.result()); got != tc.outcome {
					t.Errorf("guard outcome %q, want %q: %s", got, tc.outcome, rep.body)
				}
				r.stillServes(ctx)
			})
		}
	})

	stop()
	stderr := f.stderr.String()
	stored := f.recorderText()

	t.Run("transcript names the caller", func(t *testing.T) {
		callers := recordedCallers(t, f)
		for _, sub := range []string{"alice", "bob", "carol", "dave"} {
			iss := callers[sub]
			if len(iss) == 0 {
				t.Errorf("no call recorded for %s", sub)
			}
			for _, got := range iss {
				if got != is.trusted.Issuer() {
					t.Errorf("%s recorded with issuer %q", sub, got)
				}
			}
		}
		if _, ok := callers["acceptance-runner"]; ok {
			t.Error("a call ran as the configured stdio identity over authenticated HTTP")
		}
	})

	t.Run("refused tokens leave no trace", func(t *testing.T) {
		for _, tc := range refused {
			if strings.Contains(stderr, tc.sub) || strings.Contains(stored, tc.sub) {
				t.Errorf("%s: the subject of a refused token was logged or recorded", tc.name)
			}
		}
		// The refusals were sent one by one, in order.
		re := regexp.MustCompile(`msg="token rejected".* reason="identity: invalid token \(` +
			`(?:` + regexp.QuoteMeta(is.trusted.Issuer()) + `: )?([a-z_]+)\)"`)
		var got, want []string
		for _, m := range re.FindAllStringSubmatch(stderr, -1) {
			got = append(got, m[1])
		}
		for _, tc := range refused {
			want = append(want, tc.reason)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("logged reasons %v, want %v", got, want)
		}
	})

	t.Run("tokens are never logged or recorded", func(t *testing.T) {
		for i, tok := range tokens {
			parts := strings.Split(tok, ".")
			for _, p := range append(parts, tok) {
				if len(p) < 16 {
					continue
				}
				if strings.Contains(stderr, p) || strings.Contains(stored, p) {
					t.Errorf("token %d: a part of it is in the log or the recorder's files", i)
				}
			}
		}
	})
}

// TestHTTPNeedsOIDCOffLoopback: without auth.oidc the guard refuses to
// listen anywhere but loopback.
func TestHTTPNeedsOIDCOffLoopback(t *testing.T) {
	f := newFixture(t, "")
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", ":0"} {
		t.Run(addr, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, guardBinary(t), "serve", "--config", f.cfgPath, "--http", addr)
			cmd.Env = f.env
			cmd.Dir = f.dir
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("the guard served on %s instead of refusing:\n%s", addr, out)
			}
			if err == nil {
				t.Fatalf("serve exited 0 on %s:\n%s", addr, out)
			}
			if !strings.Contains(string(out), "not a loopback address") {
				t.Fatalf("the refusal does not say why:\n%s", out)
			}
		})
	}
}

// TestStdioTokenEnv: on stdio, identity.token_env names a token that is
// verified at start-up and becomes the caller.
func TestStdioTokenEnv(t *testing.T) {
	is := startIssuers(t)
	policyDir := writePolicy(t, groupPolicy)

	// newStdio makes a fixture whose identity comes from GUARD_TOKEN.
	newStdio := func(t *testing.T, token string) *fixture {
		f := newFixture(t, oidcConfig(is.trusted.Issuer(), "", policyDir))
		cfg := readFile(t, f.cfgPath)
		first, rest, _ := strings.Cut(cfg, "\n")
		if !strings.HasPrefix(first, "identity:") {
			t.Fatalf("the fixture's first line is not the identity: %q", first)
		}
		must(t, os.WriteFile(f.cfgPath, []byte("identity: {token_env: GUARD_TOKEN}\n"+rest), 0o644))
		f.env = append(f.env, "GUARD_TOKEN="+token)
		return f
	}

	t.Run("valid token", func(t *testing.T) {
		tok := sign(t, is.trusted, is.claims("stdio-alice", map[string]any{
			"groups": []string{"auditors"}, "email": "alice@example.com", "email_verified": true}))
		f := newStdio(t, tok)
		ctx := testContext(t)
		c := f.stdioClient(ctx)
		_, res := callTool(ctx, t, c, "read_file", map[string]any{"target": "workspace", "path": "README.md"})
		if guardOutcome(res) != "" || !strings.Contains(resultText(res), "Shop reports") {
			t.Fatalf("the auditor's read did not run: %v", res)
		}
		c.Close()
		callers := recordedCallers(t, f)
		if fmt.Sprint(callers) != fmt.Sprintf("map[stdio-alice:[%s]]", is.trusted.Issuer()) {
			t.Fatalf("recorded callers %v", callers)
		}
		if strings.Contains(f.stderr.String()+f.recorderText(), strings.Split(tok, ".")[2]) {
			t.Fatal("the token's signature is in the log or the recorder's files")
		}
	})

	t.Run("token expires while serving", func(t *testing.T) {
		// Long enough for a slow start, short enough for a test.
		const life = 15 * time.Second
		exp := time.Unix(time.Now().Add(life).Unix(), 0)
		tok := sign(t, is.trusted, is.claims("stdio-brief", map[string]any{
			"groups": []string{"auditors"}, "exp": exp.Unix()}))
		f := newStdio(t, tok)
		ctx, cancel := context.WithTimeout(context.Background(), life+60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, guardBinary(t), "serve", "--config", f.cfgPath)
		cmd.Env = f.env
		cmd.Dir = f.dir
		cmd.Stderr = f.stderr
		stdin, err := cmd.StdinPipe()
		must(t, err)
		defer stdin.Close()
		stdout, err := cmd.StdoutPipe()
		must(t, err)
		must(t, cmd.Start())
		answers := bufio.NewReader(stdout)
		for _, req := range []string{
			`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",` +
				`"capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`,
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_file",` +
				`"arguments":{"target":"workspace","path":"README.md"}}}`,
		} {
			_, _ = io.WriteString(stdin, req+"\n")
			line, err := answers.ReadString('\n')
			if err != nil || !strings.Contains(line, `"result"`) || strings.Contains(line, `"isError":true`) {
				t.Fatalf("answer %q (%v) before the token expired\nstderr:\n%s", line, err, f.stderr)
			}
		}
		err = cmd.Wait()
		if ctx.Err() != nil {
			t.Fatalf("the guard still served %s after the token expired", time.Since(exp).Round(time.Second))
		}
		if err == nil || !strings.Contains(f.stderr.String(), "the token expired at") {
			t.Fatalf("exit %v; stderr:\n%s", err, f.stderr)
		}
		if time.Now().Before(exp) {
			t.Fatalf("the guard stopped before the token expired: %v", err)
		}
	})

	cases := []struct {
		name  string
		token func() string
	}{
		{"expired", func() string {
			return sign(t, is.trusted, is.claims("stdio-late", map[string]any{
				"exp": time.Now().Add(-10 * time.Minute).Unix()}))
		}},
		{"other audience", func() string {
			return sign(t, is.trusted, is.claims("stdio-other", map[string]any{"aud": "another-app"}))
		}},
		{"unsigned", func() string { return unsigned(is.claims("stdio-none", nil), "") }},
		{"not a token", func() string { return "hello-" + alnum(20) }},
	}
	for _, tc := range cases {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			tok := tc.token()
			f := newStdio(t, tok)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, guardBinary(t), "serve", "--config", f.cfgPath)
			cmd.Env = f.env
			cmd.Dir = f.dir
			cmd.Stdin = strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("serve did not refuse to start (err %v)\nstdout: %s\nstderr: %s",
					err, stdout.String(), stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("serve answered on stdout: %s", stdout.String())
			}
			if !strings.Contains(stderr.String(), "identity.token_env") {
				t.Errorf("the refusal does not name identity.token_env:\n%s", stderr.String())
			}
			if strings.Contains(stderr.String(), tok) || strings.Contains(stderr.String(), "stdio-") {
				t.Errorf("the refusal quotes the token or its claims:\n%s", stderr.String())
			}
		})
	}
}
