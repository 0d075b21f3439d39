package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// startTimeout bounds how long a server may take to say where it serves.
const startTimeout = 60 * time.Second

// servingLine is what both mcp-guard and plainserver print on stderr once
// they listen.
var servingLine = regexp.MustCompile(`serving MCP at (http://\S+)/mcp`)

// httpServer is a server process serving MCP over HTTP on loopback.
type httpServer struct {
	cmd  *exec.Cmd
	base string // http://127.0.0.1:PORT
	done chan struct{}
}

// startHTTPServer starts bin with args (which must make it listen on a
// loopback port it prints) and waits until it says where it serves. Its
// stderr goes to logPath.
func startHTTPServer(ctx context.Context, bin string, args, env []string,
	dir, logPath string) (*httpServer, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create server log: %w", err)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Dir = dir
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	s := &httpServer{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(s.done)
	}()
	found := make(chan string, 1)
	go func() {
		defer logf.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(logf, pr)
	}()
	select {
	case s.base = <-found:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("%s exited before serving; see %s", filepath.Base(bin), logPath)
	case <-time.After(startTimeout):
		s.stop()
		return nil, fmt.Errorf("%s did not start serving; see %s", filepath.Base(bin), logPath)
	}
}

// stop interrupts the server and waits for it to exit.
func (s *httpServer) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// newHTTPTransport returns an HTTP transport that keeps enough idle
// connections for every benchmark client to reuse its own.
func newHTTPTransport() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	return &http.Client{Transport: t}
}

// connectHTTP returns an initialized MCP client of the server at base.
func connectHTTP(ctx context.Context, base string, hc *http.Client) (*client.Client, error) {
	tr, err := transport.NewStreamableHTTP(base+"/mcp", transport.WithHTTPBasicClient(hc))
	if err != nil {
		return nil, fmt.Errorf("http transport: %w", err)
	}
	c := client.NewClient(tr)
	if err := c.Start(ctx); err != nil {
		return nil, fmt.Errorf("start http client: %w", err)
	}
	if err := initialize(ctx, c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// stdioServer is a server process the client talks to over its stdio.
type stdioServer struct {
	client *client.Client
	mu     sync.Mutex
	cmd    *exec.Cmd
	logf   *os.File
}

// startStdio starts bin with args as an MCP server on its stdio and
// returns the client of it, not yet initialized. ctx bounds the process's
// life.
func startStdio(ctx context.Context, bin string, args, env []string,
	dir, logPath string) (*stdioServer, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create server log: %w", err)
	}
	s := &stdioServer{logf: logf}
	tr := transport.NewStdioWithOptions(bin, env, args,
		transport.WithCommandFunc(func(ctx context.Context, command string,
			env, args []string) (*exec.Cmd, error) {
			cmd := exec.CommandContext(ctx, command, args...)
			cmd.Env = env
			cmd.Dir = dir
			cmd.Stderr = logf
			s.mu.Lock()
			s.cmd = cmd
			s.mu.Unlock()
			return cmd, nil
		}),
	)
	s.client = client.NewClient(tr)
	if err := s.client.Start(ctx); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	return s, nil
}

// pid returns the server's process id.
func (s *stdioServer) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Pid
}

// close closes the server's stdin, which ends it, and waits for it.
func (s *stdioServer) close() {
	_ = s.client.Close()
	s.logf.Close()
}

// initialize opens the MCP conversation (server/discover on the current
// protocol, the handshake on older ones).
func initialize(ctx context.Context, c *client.Client) error {
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "mcp-guard-loadgen", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	return nil
}

// callTool calls a tool and fails on a protocol error or an error result,
// quoting the result's text.
func callTool(ctx context.Context, c *client.Client, name string,
	args map[string]any) (*mcp.CallToolResult, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", name, err)
	}
	if res.IsError {
		return nil, fmt.Errorf("call %s: error result: %s", name, clip(resultText(res), 300))
	}
	return res, nil
}

// queryCall calls query_database and checks that wantRows rows came back.
func queryCall(ctx context.Context, c *client.Client, sql string, wantRows int) error {
	res, err := callTool(ctx, c, "query_database", map[string]any{"target": "appdb", "sql": sql})
	if err != nil {
		return err
	}
	if n := rowCount(res); n != wantRows {
		return fmt.Errorf("query_database returned %d rows, want %d", n, wantRows)
	}
	return nil
}

// rowCount returns structuredContent.row_count, or -1.
func rowCount(res *mcp.CallToolResult) int {
	m, _ := res.StructuredContent.(map[string]any)
	switch n := m["row_count"].(type) {
	case float64:
		return int(n)
	case json.Number:
		v, _ := n.Int64()
		return int(v)
	}
	return -1
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := mcp.AsTextContent(c); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

// resultBytes is the size of a result as JSON, about what travelled.
func resultBytes(res *mcp.CallToolResult) int {
	b, err := json.Marshal(res)
	if err != nil {
		return -1
	}
	return len(b)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// errServerGone reports a server that exited while measured.
var errServerGone = errors.New("the server process exited")
