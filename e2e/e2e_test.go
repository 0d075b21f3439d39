package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	_ "modernc.org/sqlite"
)

// basicCalls are the calls every transport must get right.
func basicCalls(t *testing.T, ctx context.Context, c *client.Client) {
	t.Helper()
	tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tl := range tools.Tools {
		names[tl.Name] = true
		raw, _ := json.Marshal(tl)
		if strings.Contains(string(raw), "postgres://") || strings.Contains(string(raw), "APPDB_DSN") {
			t.Errorf("tool %s describes a DSN", tl.Name)
		}
	}
	for _, want := range []string{"list_targets", "query_database", "run_shell", "read_file"} {
		if !names[want] {
			t.Errorf("tool %s is not offered", want)
		}
	}

	_, res := callTool(ctx, t, c, "query_database", map[string]any{
		"target": "appdb", "sql": "SELECT id, company FROM customers WHERE company = 'Northwind Traders'",
	})
	if res["isError"] == true || !strings.Contains(resultText(res), "Northwind Traders") {
		t.Errorf("allowed SELECT did not return rows: %v", res)
	}
	sc, _ := res["structuredContent"].(map[string]any)
	if rc, _ := sc["row_count"].(float64); rc != 1 {
		t.Errorf("row_count = %v, want 1", sc["row_count"])
	}

	_, res = callTool(ctx, t, c, "query_database", map[string]any{
		"target": "appdb", "sql": "UPDATE orders SET status = 'refunded'",
	})
	if o := guardOutcome(res); !strings.HasPrefix(o, "approval_") {
		t.Errorf("a write got outcome %q, want approval_*", o)
	}

	_, res = callTool(ctx, t, c, "read_file", map[string]any{"target": "workspace", "path": "/etc/passwd"})
	if o := guardOutcome(res); o != "denied" {
		t.Errorf("read outside the roots got outcome %q", o)
	}

	_, res = callTool(ctx, t, c, "query_database", map[string]any{"target": "nosuch", "sql": "SELECT 1"})
	if o := guardOutcome(res); o != "invalid" {
		t.Errorf("unknown target got outcome %q", o)
	}
}

// transcript returns tool → outcome for the completed calls recorded.
func transcript(t *testing.T, f *fixture) map[string][]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(f.dir, "var", "mcp-guard.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT json_extract(i.body, '$.tool'), json_extract(c.body, '$.outcome')
		FROM records i JOIN records c ON c.call_id = i.call_id AND c.kind = 'call_completion'
		WHERE i.kind = 'call_intent' ORDER BY i.seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var tool, outcome string
		if err := rows.Scan(&tool, &outcome); err != nil {
			t.Fatal(err)
		}
		out[tool] = append(out[tool], outcome)
	}
	return out
}

func checkTranscript(t *testing.T, f *fixture) {
	t.Helper()
	tr := transcript(t, f)
	want := map[string][]string{
		"query_database": {"ok", "approval_denied", "invalid"},
		"read_file":      {"denied"},
	}
	for tool, outcomes := range want {
		if fmt.Sprint(tr[tool]) != fmt.Sprint(outcomes) {
			t.Errorf("transcript for %s: %v, want %v", tool, tr[tool], outcomes)
		}
	}
	stored := f.stderr.String() + f.recorderText()
	if strings.Contains(stored, f.db.Password()) {
		t.Error("the DSN password is in the log or the recorder's files")
	}
}

func TestStdio(t *testing.T) {
	f := newFixture(t, "")
	ctx := testContext(t)
	c := f.stdioClient(ctx)
	basicCalls(t, ctx, c)
	c.Close()
	checkTranscript(t, f)
}

// startHTTP runs the guard with --http on a free loopback port and
// returns its base URL.
func (f *fixture) startHTTP(ctx context.Context) string {
	f.t.Helper()
	cmd := exec.CommandContext(ctx, guardBinary(f.t), "serve", "--config", f.cfgPath, "--http", "127.0.0.1:0")
	cmd.Env = f.env
	cmd.Dir = f.dir
	return startServing(f.t, cmd, f.stderr, 30*time.Second).base
}

func TestHTTP(t *testing.T) {
	f := newFixture(t, "")
	ctx := testContext(t)
	base := f.startHTTP(ctx)

	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()

	for _, version := range []string{"", mcp.ProtocolVersion20251125} {
		name := version
		if name == "" {
			name = "current"
		}
		t.Run(name, func(t *testing.T) {
			tr, err := transport.NewStreamableHTTP(base + "/mcp")
			if err != nil {
				t.Fatal(err)
			}
			c := client.NewClient(tr)
			must(t, c.Start(ctx))
			init := mcp.InitializeRequest{}
			init.Params.ClientInfo = mcp.Implementation{Name: "e2e-http", Version: "1.0"}
			init.Params.ProtocolVersion = version
			if _, err := c.Initialize(ctx, init); err != nil {
				t.Fatal(err)
			}
			basicCalls(t, ctx, c)
			c.Close()
		})
	}
}

// TestTypeScriptSDK drives the guard with the official TypeScript SDK,
// which validates structuredContent against output schemas even on error
// results.
func TestTypeScriptSDK(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is required (scripts/install-deps.sh installs it)")
	}
	if _, err := os.Stat("../interop/node_modules/@modelcontextprotocol/sdk"); err != nil {
		t.Fatal("interop/node_modules is missing; run scripts/install-deps.sh")
	}
	f := newFixture(t, "")
	ctx := testContext(t)
	ops := []map[string]any{
		{"op": "list"},
		{"op": "call", "name": "list_targets", "arguments": map[string]any{}},
		{"op": "call", "name": "query_database", "arguments": map[string]any{"target": "appdb", "sql": "SELECT company FROM customers WHERE company = 'Northwind Traders'"}},
		{"op": "call", "name": "query_database", "arguments": map[string]any{"target": "appdb", "sql": "DELETE FROM orders"}},
		{"op": "call", "name": "read_file", "arguments": map[string]any{"target": "workspace", "path": "../outside/shadow"}},
		{"op": "call", "name": "run_shell", "arguments": map[string]any{"target": "nosuch", "command": "ls"}},
		{"op": "call", "name": "run_shell", "arguments": map[string]any{"target": "local", "command": "cat README.md"}},
		{"op": "call", "name": "query_database", "arguments": map[string]any{"target": "appdb", "sql": "SELECT 1/0"}},
	}
	opsPath := filepath.Join(f.dir, "ops.json")
	b, _ := json.Marshal(ops)
	must(t, os.WriteFile(opsPath, b, 0o644))
	for _, mode := range []string{"stdio", "http"} {
		t.Run(mode, func(t *testing.T) {
			args := []string{"../interop/client.mjs", "--ops", opsPath}
			if mode == "stdio" {
				args = append(args, "--stdio", guardBinary(t), "serve", "--config", f.cfgPath)
			} else {
				args = append(args, "--http", f.startHTTP(ctx)+"/mcp")
			}
			cmd := exec.CommandContext(ctx, "node", args...)
			cmd.Env = f.env
			cmd.Stderr = f.stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("node client: %v\nstdout: %s\nstderr: %s", err, out, f.stderr)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != len(ops) {
				t.Fatalf("%d results for %d operations:\n%s", len(lines), len(ops), out)
			}
			// "failed": the tool ran and reported an error (a SQL error).
			want := []string{"", "ok", "ok", "approval_", "denied", "invalid", "ok", "failed"}
			for i, line := range lines {
				var r map[string]any
				must(t, json.Unmarshal([]byte(line), &r))
				if e, ok := r["error"]; ok {
					t.Errorf("op %d: the SDK reported %v", i, e)
					continue
				}
				if i == 0 {
					continue
				}
				res, _ := r["result"].(map[string]any)
				got := guardOutcome(res)
				if want[i] == "ok" || want[i] == "failed" {
					if got != "" || (res["isError"] == true) != (want[i] == "failed") {
						t.Errorf("op %d: %s", i, line)
					}
				} else if !strings.HasPrefix(got, want[i]) {
					t.Errorf("op %d: outcome %q, want %s", i, got, want[i])
				}
			}
		})
	}
}

// TestMalformedFrame sends a truncated request line on stdio: it gets a
// parse error and the next request is answered normally.
func TestMalformedFrame(t *testing.T) {
	f := newFixture(t, "")
	send := rawJSON(t, f)
	m := send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":`)
	e, _ := m["error"].(map[string]any)
	if code, _ := e["code"].(float64); code != -32700 {
		t.Fatalf("truncated frame: %v, want error -32700", m)
	}
	m = send(`{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	if m["result"] == nil {
		t.Fatalf("the next request was not answered: %v", m)
	}
}

// TestConfigAndPolicyErrors: a misspelled key and a policy that does not
// compile are refused by check and serve, naming the key or file and line.
func TestConfigAndPolicyErrors(t *testing.T) {
	f := newFixture(t, "")
	typo := strings.Replace(readFile(t, f.cfgPath), "workdir:", "workdirr:", 1)
	typoPath := filepath.Join(f.dir, "typo.yaml")
	must(t, os.WriteFile(typoPath, []byte(typo), 0o644))

	policyDir := filepath.Join(f.dir, "policy")
	must(t, os.MkdirAll(policyDir, 0o755))
	must(t, os.WriteFile(filepath.Join(policyDir, "broken.rego"), []byte("package mcpguard\nimport rego.v1\n\ndecision := {\n"), 0o644))
	broken := readFile(t, f.cfgPath) + "policy: {dir: " + policyDir + "}\n"
	brokenPath := filepath.Join(f.dir, "broken.yaml")
	must(t, os.WriteFile(brokenPath, []byte(broken), 0o644))

	cases := []struct {
		name, config, want string
	}{
		{"misspelled key", typoPath, `unknown key "workdirr"`},
		{"broken policy", brokenPath, "broken.rego:"},
	}
	for _, tc := range cases {
		for _, sub := range []string{"check", "serve"} {
			t.Run(tc.name+"/"+sub, func(t *testing.T) {
				cmd := exec.Command(guardBinary(t), sub, "--config", tc.config)
				cmd.Env = f.env
				cmd.Stdin = strings.NewReader("")
				out, err := cmd.CombinedOutput()
				if err == nil {
					t.Fatalf("%s accepted it:\n%s", sub, out)
				}
				if !strings.Contains(string(out), tc.want) {
					t.Fatalf("%s output does not name %q:\n%s", sub, tc.want, out)
				}
			})
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	return string(b)
}

// TestPolicyErrorDenies: when the policy cannot be evaluated the call is
// denied, and the reason is recorded (not shown to the model).
func TestPolicyErrorDenies(t *testing.T) {
	dir := t.TempDir()
	src := "package mcpguard\nimport rego.v1\n" +
		"decision := {\"outcome\": \"allow\", \"reasons\": [], \"limits\": {\"max_rows\": to_number(input.arguments.target)}}\n"
	must(t, os.WriteFile(filepath.Join(dir, "broken_at_runtime.rego"), []byte(src), 0o644))
	f := newFixture(t, "policy: {dir: "+dir+", watch: false}\n")
	ctx := testContext(t)
	c := f.stdioClient(ctx)
	_, res := callTool(ctx, t, c, "read_file", map[string]any{"target": "workspace", "path": "reports/q3.txt"})
	c.Close()
	if o := guardOutcome(res); o != "denied" {
		t.Fatalf("outcome %q, want denied: %v", o, res)
	}
	if strings.Contains(resultText(res), "to_number") {
		t.Errorf("the model sees the policy's internals: %s", resultText(res))
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(f.dir, "var", "mcp-guard.db")+"?mode=ro")
	must(t, err)
	defer db.Close()
	var policyErr string
	pollRecords(func() bool {
		err = db.QueryRow(`SELECT json_extract(body, '$.policy_error') FROM records
			WHERE kind = 'call_intent'`).Scan(&policyErr)
		return err == nil
	})
	must(t, err)
	if !strings.Contains(policyErr, "to_number") {
		t.Errorf("the policy error was not recorded: %q", policyErr)
	}
}

// TestStdioDuplicateKeys: a stdio request whose params repeat a key is
// refused (the guard and the tool must read the same value), and the
// connection keeps serving.
func TestStdioDuplicateKeys(t *testing.T) {
	f := newFixture(t, "")
	send := rawJSON(t, f)
	send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	for _, dup := range []string{
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_targets","name":"query_database","arguments":{"target":"appdb","sql":"SELECT 1"}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"read_file","arguments":{"target":"workspace","path":"reports/q3.txt","path":"../outside/shadow"}}}`,
	} {
		m := send(dup)
		e, _ := m["error"].(map[string]any)
		if code, _ := e["code"].(float64); code != -32700 {
			t.Fatalf("a duplicate key was not refused: %v", m)
		}
	}
	m := send(`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"list_targets","arguments":{}}}`)
	if m["result"] == nil {
		t.Fatalf("the next request was not answered: %v", m)
	}
}

// TestServerEnvironmentHoldsNoSecrets: the serving process erases the
// environment the kernel keeps for it, so /proc/PID/environ (readable by
// commands it runs as the same user) shows neither the DSN nor any other
// secret it started with, while the DSN still works.
func TestServerEnvironmentHoldsNoSecrets(t *testing.T) {
	f := newFixture(t, "")
	send, pid := rawStdio(t, f)
	send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	out := send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"query_database","arguments":{"target":"appdb","sql":"SELECT company FROM customers WHERE company = 'Northwind Traders'"}}}`)
	if !strings.Contains(out, "Northwind Traders") {
		t.Fatalf("the DSN did not reach the server: %s", out)
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	must(t, err)
	for _, secret := range []string{f.db.Password(), f.canary("envvar"), "APPDB_DSN", "BILLING_API_KEY"} {
		if strings.Contains(string(environ), secret) {
			t.Errorf("the server's environment still holds %q", secret)
		}
	}
}

// rawStdio starts the guard on stdio and returns a function that sends one
// line and reads one answer line, and the guard's process id.
func rawStdio(t *testing.T, f *fixture) (send func(line string) string, pid int) {
	t.Helper()
	cmd := exec.CommandContext(testContext(t), guardBinary(t), "serve", "--config", f.cfgPath)
	cmd.Env = f.env
	cmd.Stderr = f.stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	must(t, cmd.Start())
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	r := bufio.NewReader(stdout)
	return func(s string) string {
		t.Helper()
		if _, err := io.WriteString(stdin, s+"\n"); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("no answer: %v\nstderr: %s", err, f.stderr)
		}
		return line
	}, cmd.Process.Pid
}

// rawJSON starts the guard on stdio like rawStdio, and decodes answers.
func rawJSON(t *testing.T, f *fixture) func(string) map[string]any {
	send, _ := rawStdio(t, f)
	return func(s string) map[string]any {
		t.Helper()
		var m map[string]any
		must(t, json.Unmarshal([]byte(send(s)), &m))
		return m
	}
}
