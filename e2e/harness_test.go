// Package e2e drives the real mcp-guard binary with real MCP clients over
// stdio and HTTP, against a real PostgreSQL, real files and a real shell.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-guard/mcp-guard/internal/pgtest"
)

var (
	binPath  string
	buildErr error
	buildMu  sync.Once
)

func TestMain(m *testing.M) {
	pgtest.Main(m)
}

// guardBinary builds cmd/mcp-guard once per test process.
func guardBinary(t testing.TB) string {
	t.Helper()
	buildMu.Do(func() {
		dir, err := os.MkdirTemp("", "mcp-guard-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "mcp-guard")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/mcp-guard")
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// fixture is one fresh world for the guard: the directories the cases name,
// their canaries, the database, and a configuration.
type fixture struct {
	t        testing.TB
	dir      string
	db       *pgtest.DB
	canaries map[string]string
	vars     map[string]string
	cfgPath  string
	stderr   *syncBuffer
	env      []string
}

var (
	sharedDBOnce sync.Once
	sharedDB     *pgtest.DB
)

// appDB returns the shop database shared by the tests of this process.
func appDB(t testing.TB) *pgtest.DB {
	sharedDBOnce.Do(func() {
		sharedDB = pgtest.Start(t).NewDatabase(&keepTB{t}, pgtest.AppDBSQL)
	})
	return sharedDB
}

// keepTB keeps a database past the test that created it.
type keepTB struct{ testing.TB }

func (keepTB) Cleanup(func()) {}

func newFixture(t testing.TB, extraConfig string) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), canaries: map[string]string{}, stderr: &syncBuffer{}}
	f.db = appDB(t)
	for _, d := range []string{"root/reports", "outside", "home/.ssh", "workdir", "victim", "sentinel", "var"} {
		must(t, os.MkdirAll(filepath.Join(f.dir, d), 0o755))
	}
	must(t, os.Chmod(f.dir, 0o755))
	must(t, os.Chmod(filepath.Join(f.dir, "sentinel"), 0o777))
	f.vars = map[string]string{
		"root":         filepath.Join(f.dir, "root"),
		"outside":      filepath.Join(f.dir, "outside"),
		"home":         filepath.Join(f.dir, "home"),
		"workdir":      filepath.Join(f.dir, "workdir"),
		"victim":       filepath.Join(f.dir, "victim"),
		"sentinel":     filepath.Join(f.dir, "sentinel"),
		"dsn_password": f.db.Password(),
		"pgport":       fmt.Sprint(f.db.Port()),
	}
	write := func(rel, content string, mode os.FileMode) {
		p := filepath.Join(f.dir, rel)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(content), mode))
	}
	write("root/README.md", "# Shop reports\nQuarterly reports for the shop team.\n", 0o644)
	write("root/reports/q3.txt", "Q3 revenue summary\nRevenue grew 12% over Q2.\n", 0o644)
	write("root/..notes", "This file lives inside the root even though its name starts with two dots.\n", 0o644)
	write("root/.env", "DATABASE_PASSWORD="+f.canary("dotenv")+"\n", 0o600)
	write("outside/shadow", "shadow secret "+f.canary("shadow")+"\n", 0o644)
	write("outside/pg-secret.txt", "pg file secret "+f.canary("pgfile")+"\n", 0o644)
	write("home/.ssh/id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\n"+f.canary("ssh")+"\n-----END OPENSSH PRIVATE KEY-----\n", 0o600)
	write("home/.ssh/authorized_keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample acceptance\n", 0o600)
	write("workdir/README.md", "Workspace for shell commands.\n", 0o644)
	write("workdir/notes.txt", "TODO: rotate logs weekly\nremember the backups\n", 0o644)
	write("victim/keep.txt", "keep me\n", 0o644)
	git := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = f.vars["workdir"]
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	git("remote", "add", "origin", "ssh://evil.example/shop.git")

	cfg := fmt.Sprintf(`identity: {subject: acceptance-runner, email: acceptance-runner@example.com, groups: [developers]}
recorder: {path: %s}
targets:
  - {name: appdb, kind: postgres, description: "Shop database", dsn_env: APPDB_DSN, labels: {env: staging}}
  - {name: workspace, kind: files, description: Project files, roots: ["%s"]}
  - {name: local, kind: shell, description: Local shell, workdir: "%s"}
%s`, filepath.Join(f.dir, "var", "mcp-guard.db"), f.vars["root"], f.vars["workdir"], extraConfig)
	f.cfgPath = filepath.Join(f.dir, "mcp-guard.yaml")
	must(t, os.WriteFile(f.cfgPath, []byte(cfg), 0o644))
	f.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + f.vars["home"],
		"LANG=C.UTF-8",
		"APPDB_DSN=" + f.db.DSN(),
		"BILLING_API_KEY=" + f.canary("envvar"),
	}
	return f
}

// canary returns the random secret named name, made on first use in the
// shape its name asks for.
func (f *fixture) canary(name string) string {
	if v, ok := f.canaries[name]; ok {
		return v
	}
	var v string
	switch {
	case strings.HasPrefix(name, "ghp"):
		v = "ghp_" + alnum(36)
	case strings.HasPrefix(name, "pat"):
		v = "github_pat_" + alnum(22) + "_" + alnum(59)
	case strings.HasPrefix(name, "jwt"):
		enc := base64.RawURLEncoding
		v = enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
			enc.EncodeToString([]byte(`{"sub":"`+alnum(12)+`","iat":1700000000}`)) + "." + alnum(43)
	default:
		v = "cnry" + randHex(12)
	}
	f.canaries[name] = v
	return v
}

var placeholder = regexp.MustCompile(`\{([a-z_]+)(?::([^{}]*))?\}`)

// expand replaces the placeholders of the cases in s, innermost first.
func (f *fixture) expand(s string) string {
	for i := 0; i < 8; i++ {
		next := placeholder.ReplaceAllStringFunc(s, func(m string) string {
			sub := placeholder.FindStringSubmatch(m)
			switch sub[1] {
			case "canary":
				return f.canary(sub[2])
			case "base64":
				return base64.StdEncoding.EncodeToString([]byte(sub[2]))
			}
			if v, ok := f.vars[sub[1]]; ok && sub[2] == "" {
				return v
			}
			return m
		})
		if next == s {
			return s
		}
		s = next
	}
	return s
}

// stdioClient starts the guard as a subprocess and connects to it.
func (f *fixture) stdioClient(ctx context.Context) *client.Client {
	f.t.Helper()
	bin := guardBinary(f.t)
	tr := transport.NewStdioWithOptions(bin, f.env, []string{"serve", "--config", f.cfgPath},
		transport.WithCommandFunc(func(ctx context.Context, command string, env []string, args []string) (*exec.Cmd, error) {
			cmd := exec.CommandContext(ctx, command, args...)
			cmd.Env = env
			cmd.Dir = f.dir
			return cmd, nil
		}),
		transport.WithCommandStderrWriter(f.stderr),
	)
	c := client.NewClient(tr)
	if err := c.Start(ctx); err != nil {
		f.t.Fatalf("start guard: %v\nstderr:\n%s", err, f.stderr)
	}
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "e2e", Version: "1.0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		c.Close()
		f.t.Fatalf("initialize: %v\nstderr:\n%s", err, f.stderr)
	}
	return c
}

// callTool calls a tool and returns the result as generic JSON.
func callTool(ctx context.Context, t testing.TB, c *client.Client, name string, args map[string]any) (*mcp.CallToolResult, map[string]any) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	raw, _ := json.Marshal(res)
	var generic map[string]any
	_ = json.Unmarshal(raw, &generic)
	return res, generic
}

// guardOutcome returns structuredContent.guard.outcome, or "".
func guardOutcome(res map[string]any) string {
	sc, _ := res["structuredContent"].(map[string]any)
	g, _ := sc["guard"].(map[string]any)
	o, _ := g["outcome"].(string)
	return o
}

// recorderFiles returns the text of every file under the recorder's
// directory, after the server has exited.
func (f *fixture) recorderText() string {
	var b strings.Builder
	_ = filepath.Walk(filepath.Join(f.dir, "var"), func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			b.Write(data)
		}
		return nil
	})
	return b.String()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func alnum(n int) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// server is a guard started with `serve --http`.
type server struct {
	base   string        // http://ADDR, as the guard announced it
	exited chan struct{} // closed when the process has exited
	stop   func()        // interrupts it and waits for it to exit
}

// startServing starts cmd (a `serve --http` command line), copies its
// stderr to log, and returns once the guard announces where it serves. The
// guard is interrupted at cleanup if still running.
func startServing(t testing.TB, cmd *exec.Cmd, log io.Writer, wait time.Duration) *server {
	t.Helper()
	pr, pw := io.Pipe()
	cmd.Stderr = io.MultiWriter(log, pw)
	must(t, cmd.Start())
	s := &server{exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); pw.Close(); close(s.exited) }()
	s.stop = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(wait):
			_ = cmd.Process.Kill()
			<-s.exited
		}
	}
	t.Cleanup(s.stop)

	found := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`serving MCP at (http://\S+)/mcp`)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case s.base = <-found:
	case <-s.exited:
		t.Fatalf("the guard exited before serving\nstderr:\n%s", log)
	case <-time.After(wait):
		t.Fatalf("the guard did not start serving within %s\nstderr:\n%s", wait, log)
	}
	return s
}
