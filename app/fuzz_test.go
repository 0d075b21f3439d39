package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-guard/mcp-guard/app"
	"github.com/mcp-guard/mcp-guard/config"
)

// inputDeadline bounds the handling of one fuzz input. Far more than a
// call needs; reaching it means the server hung.
const inputDeadline = 10 * time.Second

// bodyCap is the HTTP body cap the fuzz server runs with (the default).
const bodyCap = 1 << 20

// lockedBuffer collects the app's log; fuzz properties search it for
// recovered panics.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// take returns what was logged since the last take.
func (l *lockedBuffer) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	l.b.Reset()
	return s
}

// fuzzApp builds a guard with one files target and no database: every
// call it can run is a list or a read inside a temp directory.
func fuzzApp(tb testing.TB) (*app.App, *lockedBuffer) {
	tb.Helper()
	dir := tb.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "README.md"), []byte("fuzz root\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	text := fmt.Sprintf(`identity: {subject: fuzzer, groups: [developers]}
recorder: {path: %q}
policy: {watch: false}
log: {level: warn}
http: {rate_limit: 1000000, rate_burst: 1000000}
targets:
  - {name: files, kind: files, roots: [%q]}
`, filepath.Join(dir, "var", "guard.db"), root)
	cfg, err := config.Parse(strings.NewReader(text), dir)
	if err != nil {
		tb.Fatal(err)
	}
	logs := &lockedBuffer{}
	a, err := app.Build(context.Background(), cfg, app.Options{
		Stderr: logs, Getenv: func(string) string { return "" },
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(a.Close)
	return a, logs
}

// panicMarkers are how net/http and mcp-go report a panic they recovered.
var panicMarkers = []string{"panic serving", "panic recovered in", "internal panic:"}

// checkNoPanic fails when the log or an answer reports a recovered panic.
func checkNoPanic(t *testing.T, logs *lockedBuffer, answers ...[]byte) {
	t.Helper()
	text := logs.take()
	for _, a := range answers {
		text += string(a)
	}
	for _, m := range panicMarkers {
		if strings.Contains(text, m) {
			t.Fatalf("a panic was recovered:\n%s", text)
		}
	}
}

// httpHarness is the real handler behind a loopback httptest server, with
// one initialized session.
type httpHarness struct {
	url     string
	session string
	client  *http.Client
}

func newHTTPHarness(tb testing.TB, a *app.App, logs io.Writer) *httpHarness {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	h, err := a.Handler(context.Background(), ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Config.ErrorLog = log.New(logs, "http: ", 0)
	srv.Start()
	tb.Cleanup(srv.Close)

	hh := &httpHarness{url: srv.URL + "/mcp", client: srv.Client()}
	ctx, cancel := context.WithTimeout(context.Background(), inputDeadline)
	defer cancel()
	resp, _, err := hh.post(ctx, modeNoSession, []byte(`{"jsonrpc":"2.0","id":0,"method":"initialize",`+
		`"params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"fuzz","version":"1"}}}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("initialize: %v %v", resp, err)
	}
	hh.session = resp.Header.Get("Mcp-Session-Id")
	if hh.session == "" {
		tb.Fatal("initialize gave no session id")
	}
	return hh
}

// Header sets a fuzz input can be sent with.
const (
	modeNoSession = iota // no session or version headers
	modeSession          // the harness's session, protocol 2025-11-25
	modeModern           // protocol 2026-07-28, which has no sessions
	modeCount
)

// post sends body and reads the whole answer.
func (h *httpHarness) post(ctx context.Context, mode int, body []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	switch mode {
	case modeSession:
		req.Header.Set("Mcp-Session-Id", h.session)
		req.Header.Set("MCP-Protocol-Version", mcp.ProtocolVersion20251125)
	case modeModern:
		req.Header.Set("MCP-Protocol-Version", mcp.ProtocolVersion20260728)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp, data, err
}

// probe checks that a valid call on the session is still answered.
func (h *httpHarness) probe(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), inputDeadline)
	defer cancel()
	resp, data, err := h.post(ctx, modeSession, []byte(`{"jsonrpc":"2.0","id":"probe",`+
		`"method":"tools/call","params":{"name":"list_targets","arguments":{}}}`))
	if err != nil {
		t.Fatalf("the server no longer answers: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(data, []byte(`"files"`)) {
		t.Fatalf("a valid call after the input got %d: %s", resp.StatusCode, data)
	}
}

// FuzzHTTPRequest posts arbitrary bytes to /mcp of the real handler, with
// one of three header sets. Properties: no panic, an answer within the
// deadline, a body over the cap refused with 413, and a valid call still
// answered afterwards.
func FuzzHTTPRequest(f *testing.F) {
	a, logs := fuzzApp(f)
	h := newHTTPHarness(f, a, logs)
	f.Add(byte(modeSession), []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))

	f.Fuzz(func(t *testing.T, mode byte, body []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), inputDeadline)
		defer cancel()
		resp, data, err := h.post(ctx, int(mode)%modeCount, body)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("no answer within %s", inputDeadline)
			}
			t.Fatalf("post: %v", err)
		}
		if len(body) > bodyCap && resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("a body of %d bytes got %d, want 413", len(body), resp.StatusCode)
		}
		if resp.StatusCode >= 500 {
			t.Fatalf("server error %d: %s", resp.StatusCode, data)
		}
		checkNoPanic(t, logs, data)
		h.probe(t)
	})
}

// stdioRun feeds lines to a.ServeStdio in-process after an initialize,
// then a probe call, and returns every line the server wrote once the
// probe is answered and the input has ended. It fails on a hang.
func stdioRun(t *testing.T, a *app.App, input io.Reader) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), inputDeadline)
	defer cancel()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	served := make(chan error, 1)
	go func() {
		served <- a.ServeStdio(ctx, inR, outW)
		outW.Close()
	}()

	// The writer stops when the server stops reading.
	go func() {
		for _, chunk := range []io.Reader{
			strings.NewReader(`{"jsonrpc":"2.0","id":"init","method":"initialize","params":{` +
				`"protocolVersion":"2025-11-25","capabilities":{},` +
				`"clientInfo":{"name":"fuzz","version":"1"}}}` + "\n"),
			strings.NewReader(`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n"),
			input, strings.NewReader("\n"),
			strings.NewReader(`{"jsonrpc":"2.0","id":"probe-7f3a","method":"tools/call",` +
				`"params":{"name":"list_targets","arguments":{}}}` + "\n"),
		} {
			if _, err := io.Copy(inW, chunk); err != nil {
				return
			}
		}
	}()

	// Read every answer; once the probe's is in, end the input.
	var lines [][]byte
	probed := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		r := bufio.NewReader(outR)
		once := sync.Once{}
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				lines = append(lines, line)
				var m struct {
					ID     any             `json:"id"`
					Result json.RawMessage `json:"result"`
				}
				if json.Unmarshal(line, &m) == nil && m.ID == "probe-7f3a" &&
					bytes.Contains(m.Result, []byte(`"files"`)) {
					once.Do(func() { close(probed) })
				}
			}
			if err != nil {
				return
			}
		}
	}()

	select {
	case <-probed:
	case <-ctx.Done():
		inW.CloseWithError(errors.New("deadline"))
		t.Fatalf("the probe was not answered within %s", inputDeadline)
	}
	inW.Close()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("ServeStdio: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("ServeStdio did not return within %s of the end of its input", inputDeadline)
	}
	<-drained
	return lines
}

// FuzzStdioFrames feeds arbitrary bytes as stdio input, between an
// initialize and a probe call. Properties: no panic, every line the server
// writes is one JSON-RPC message, the probe is answered, and ServeStdio
// returns when its input ends.
func FuzzStdioFrames(f *testing.F) {
	a, logs := fuzzApp(f)
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))

	f.Fuzz(func(t *testing.T, input []byte) {
		lines := stdioRun(t, a, bytes.NewReader(input))
		for _, l := range lines {
			var m map[string]any
			if err := json.Unmarshal(l, &m); err != nil || m["jsonrpc"] != "2.0" {
				t.Fatalf("the server wrote a line that is not a JSON-RPC message: %q", l)
			}
		}
		checkNoPanic(t, logs, bytes.Join(lines, nil))
	})
}

// TestStdioLongLine: a stdio line longer than app.MaxStdioMessageBytes is
// answered with a parse error without being held in memory, and the next
// line is served.
func TestStdioLongLine(t *testing.T) {
	a, logs := fuzzApp(t)
	const ping = `{"jsonrpc":"2.0","id":"long","method":"ping"}`
	cases := []struct {
		name   string
		size   int // of the line without its newline
		served bool
	}{
		{"at the cap", app.MaxStdioMessageBytes, true},
		{"one byte over", app.MaxStdioMessageBytes + 1, false},
		{"64 MiB", 64 << 20, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Whitespace after the value: were it not cut, the line
			// would be a valid ping.
			line := io.MultiReader(strings.NewReader(ping),
				io.LimitReader(repeat(' '), int64(tc.size-len(ping))))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			lines := stdioRun(t, a, line)
			runtime.ReadMemStats(&after)

			answered, parseErrors := 0, 0
			for _, l := range lines {
				if bytes.Contains(l, []byte(`"id":"long","result"`)) {
					answered++
				}
				if bytes.Contains(l, []byte(`"code":-32700`)) {
					parseErrors++
				}
			}
			if tc.served != (answered == 1) || tc.served == (parseErrors == 1) {
				t.Fatalf("answered %d, parse errors %d: %.300q", answered, parseErrors, lines)
			}
			grew := after.TotalAlloc - before.TotalAlloc
			if tc.size > 16<<20 && grew > uint64(tc.size/2) {
				t.Fatalf("serving one %d MiB line allocated %d MiB", tc.size>>20, grew>>20)
			}
			checkNoPanic(t, logs)
		})
	}
}

// repeat is an endless stream of one byte.
type repeat byte

func (r repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}
