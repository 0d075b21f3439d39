package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-guard/mcp-guard/recorder"
)

// TestCrashKeepsTheTranscript kills the guard with SIGKILL in the middle
// of concurrent calls, then checks the transcript as a reader sees it,
// once the records the guard had committed to its journal and not yet
// moved into the database are moved in (recorder.Recover, as every audit
// command does first): every call that was answered has its intent and
// completion, the call still running left its intent, and the chain
// verifies.
func TestCrashKeepsTheTranscript(t *testing.T) {
	bin := guardBinary(t)
	dir := t.TempDir()
	for _, d := range []string{"root", "work", "var"} {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	const files = 2000
	for i := 0; i < files; i++ {
		p := filepath.Join(dir, "root", fmt.Sprintf("f%04d.txt", i))
		must(t, os.WriteFile(p, []byte(fmt.Sprintf("file %d\n", i)), 0o644))
	}
	cfgPath := filepath.Join(dir, "mcp-guard.yaml")
	must(t, os.WriteFile(cfgPath, []byte(`identity: {subject: crash-tester, groups: [developers]}
recorder: {path: var/mcp-guard.db}
http: {rate_limit: 100000, rate_burst: 100000}
targets:
  - {name: docs, kind: files, roots: [root]}
  - {name: local, kind: shell, workdir: work}
`), 0o644))
	dbPath := filepath.Join(dir, "var", "mcp-guard.db")

	// Start the guard and read its address from stderr.
	cmd := exec.Command(bin, "serve", "--config", cfgPath, "--http", "127.0.0.1:0")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "LANG=C.UTF-8"}
	// Its own process group, so that the kill takes the commands it runs
	// along with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	must(t, err)
	must(t, cmd.Start())
	kill := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	t.Cleanup(func() { kill(); _ = cmd.Wait() })
	url := make(chan string, 1)
	go func() {
		served := regexp.MustCompile(`serving MCP at (http://\S+/mcp)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := served.FindStringSubmatch(sc.Text()); m != nil {
				url <- m[1]
			}
		}
	}()
	var endpoint string
	select {
	case endpoint = <-url:
	case <-time.After(30 * time.Second):
		t.Fatal("the guard did not say where it serves")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	connect := func() *client.Client {
		t.Helper()
		c, err := client.NewStreamableHttpClient(endpoint)
		must(t, err)
		must(t, c.Start(ctx))
		init := mcp.InitializeRequest{}
		init.Params.ClientInfo = mcp.Implementation{Name: "crash-test", Version: "1"}
		_, err = c.Initialize(ctx, init)
		must(t, err)
		return c
	}

	// A slow call that is sure to be running when the guard dies.
	slow := connect()
	slowDone := make(chan error, 1)
	go func() {
		_, err := slow.CallTool(ctx, toolCall("run_shell", map[string]any{
			"target": "local", "command": "sleep 30"}))
		slowDone <- err
	}()

	// Workers call until the guard dies; answered holds the unique token
	// of every call that got an answer, sent those of every call made.
	const workers = 6
	var (
		mu       sync.Mutex
		answered = map[string]bool{}
		sent     = map[string]bool{}
		count    atomic.Int64
		wg       sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		c := connect()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i/2 < files/workers; i++ {
				var token string
				var req mcp.CallToolRequest
				if i%2 == 0 {
					token = fmt.Sprintf("f%04d.txt", w*files/workers+i/2)
					req = toolCall("read_file", map[string]any{"target": "docs", "path": token})
				} else {
					token = fmt.Sprintf("w%d-call%d", w, i)
					req = toolCall("run_shell",
						map[string]any{"target": "local", "command": "echo " + token})
				}
				mu.Lock()
				sent[token] = true
				mu.Unlock()
				res, err := c.CallTool(ctx, req)
				if err != nil {
					return // the guard is gone
				}
				if res.IsError {
					t.Errorf("call %s failed: %v", token, res.Content)
					return
				}
				mu.Lock()
				answered[token] = true
				mu.Unlock()
				count.Add(1)
			}
		}()
	}

	// Kill the guard once the slow call's intent is committed and the
	// workers have had plenty answered.
	// Polling: the state to wait for is in another process.
	ro, err := recorder.OpenReadOnly(dbPath)
	must(t, err)
	for ctx.Err() == nil && (count.Load() < 300 || !hasIntent(t, ro, "sleep 30")) {
		time.Sleep(20 * time.Millisecond)
	}
	ro.Close()
	kill()
	_ = cmd.Wait()
	wg.Wait()
	if err := <-slowDone; err == nil {
		t.Error("the slow call was answered, though the guard was killed while it ran")
	}
	t.Logf("killed the guard after %d answered calls", count.Load())

	// The journal's records the guard had not moved in go in first, as
	// for any reader; then the database as the crash left it (opening
	// it read-write lets SQLite recover the write-ahead log, as a
	// restarted guard would).
	pending, err := recorder.Pending(dbPath)
	must(t, err)
	res, err := recorder.Recover(dbPath, recorder.Options{})
	must(t, err)
	if res.Ingested != pending || res.Serving || res.Pending != 0 {
		t.Errorf("Recover = %+v, want the %d records pending moved in", res, pending)
	}
	t.Logf("%d records were only in the journal at the kill", pending)
	db, err := recorder.OpenDB(dbPath, "normal")
	must(t, err)
	defer db.Close()
	pub, err := recorder.ReadPublicKey(filepath.Join(dir, "var", "recorder-signing.pub"))
	must(t, err)
	rep, err := recorder.Verify(ctx, db, recorder.VerifyOptions{PublicKey: pub})
	must(t, err)
	if !rep.OK() {
		t.Fatalf("the chain does not verify after the crash: %v", rep.Problems)
	}

	mu.Lock()
	defer mu.Unlock()
	inFlight := 0
	err = recorder.Calls(ctx, db, recorder.CallFilter{}, func(c recorder.Call) error {
		token := tokenOf(c)
		if !sent[token] && token != "sleep 30" {
			t.Errorf("call %s (%s) in the transcript was never sent", c.Intent.CallID, token)
		}
		if c.Completion == nil {
			inFlight++
			if answered[token] {
				t.Errorf("call %s was answered but has no completion record", token)
			}
			if token == "sleep 30" {
				delete(sent, token)
			}
		} else if !answered[token] {
			// Committed, then killed before the answer reached the client.
			t.Logf("call %s completed but its answer was lost in the crash", token)
		}
		delete(answered, token)
		return nil
	})
	must(t, err)
	for token := range answered {
		t.Errorf("call %s was answered but has no intent record", token)
	}
	if inFlight == 0 {
		t.Error("no call was left in flight; the slow call should have been")
	}
	t.Logf("%d records, %d calls in flight at the kill", rep.Records, inFlight)

	// A restarted recorder accepts the transcript and signs it.
	key, err := recorder.LoadSigningKey(filepath.Join(dir, "var", recorder.DefaultSigningKeyName))
	must(t, err)
	r, err := recorder.Open(dbPath, recorder.Options{SigningKey: key})
	must(t, err)
	must(t, r.Close())
	rep, err = recorder.Verify(ctx, db, recorder.VerifyOptions{PublicKey: pub})
	must(t, err)
	if !rep.OK() || rep.SignedThrough != rep.LastSeq-1 {
		t.Errorf("after restart: %+v", rep)
	}
}

func toolCall(name string, args map[string]any) mcp.CallToolRequest {
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	return req
}

// tokenOf is the unique part of a call's arguments: the file read, or
// the command's argument.
func tokenOf(c recorder.Call) string {
	var ib struct {
		Arguments struct {
			Path    string `json:"path"`
			Command string `json:"command"`
		} `json:"arguments"`
	}
	_ = json.Unmarshal(c.Intent.Body, &ib)
	if ib.Arguments.Path != "" {
		return ib.Arguments.Path
	}
	if len(ib.Arguments.Command) > 5 && ib.Arguments.Command[:5] == "echo " {
		return ib.Arguments.Command[5:]
	}
	return ib.Arguments.Command
}

func hasIntent(t *testing.T, db *sql.DB, text string) bool {
	t.Helper()
	var n int
	err := db.QueryRow(`SELECT count(*) FROM records WHERE kind = ? AND instr(body, ?) > 0`,
		recorder.KindCallIntent, text).Scan(&n)
	return err == nil && n > 0
}
