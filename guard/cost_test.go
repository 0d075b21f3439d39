package guard_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"net/http"
	"net/http/httptest"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/guard"
	"github.com/mcp-guard/mcp-guard/identity"
	"github.com/mcp-guard/mcp-guard/internal/pgtest"
	"github.com/mcp-guard/mcp-guard/masking"
	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/recorder"
	"github.com/mcp-guard/mcp-guard/tools"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// nopRecorder records nothing: the baseline for what recording costs.
type nopRecorder struct{}

func (nopRecorder) Append(context.Context, string, string, string, any) error { return nil }

// nopMasker masks nothing: the baseline for what masking costs.
type nopMasker struct{}

func (nopMasker) MaskResult(string, any, *tools.Result, policy.Decision) (map[string]int, error) {
	return nil, nil
}
func (nopMasker) Text(s string) string { return s }

// costGuard assembles a guard on a real database and real files, with the
// recorder and masker given, and returns a function making one call.
func costGuard(b *testing.B, rec guard.Recorder, mk guard.Masker) func(tool string, args map[string]any) *mcp.CallToolResult {
	b.Helper()
	g := costGuardOnly(b, rec, mk)
	ctx := identity.WithCaller(context.Background(), benchCaller)
	return func(tool string, args map[string]any) *mcp.CallToolResult {
		req := mcp.CallToolRequest{}
		req.Params.Name = tool
		req.Params.Arguments = args
		res, err := g.Handle(ctx, req)
		if err != nil || res.IsError {
			b.Fatalf("call failed: %v %+v", err, res)
		}
		return res
	}
}

var benchCaller = identity.Caller{Subject: "bench", Groups: []string{"developers"}}

// httpCaller serves g's MCP server over streamable HTTP on loopback and
// returns a function calling a tool through the mcp-go client.
func httpCaller(b *testing.B, g *guard.Guard) func(tool string, args map[string]any) {
	b.Helper()
	h := server.NewStreamableHTTPServer(guard.NewMCPServer(g, "bench"),
		server.WithHTTPContextFunc(func(ctx context.Context, _ *http.Request) context.Context {
			return identity.WithCaller(guard.WithTransport(ctx, guard.TransportHTTP), benchCaller)
		}))
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	c, err := client.NewStreamableHttpClient(srv.URL + "/mcp")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err != nil {
		b.Fatal(err)
	}
	return func(tool string, args map[string]any) {
		req := mcp.CallToolRequest{}
		req.Params.Name = tool
		req.Params.Arguments = args
		res, err := c.CallTool(ctx, req)
		if err != nil || res.IsError {
			b.Fatalf("call failed: %v %+v", err, res)
		}
	}
}

// costGuardOnly assembles the guard for the cost benchmarks.
func costGuardOnly(b *testing.B, rec guard.Recorder, mk guard.Masker) *guard.Guard {
	b.Helper()
	dir := b.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "q3.txt"), []byte(strings.Repeat("Revenue grew 12% over Q2.\n", 40)), 0o644); err != nil {
		b.Fatal(err)
	}
	db := pgtest.AppDB(b)
	yaml := `targets:
  - {name: appdb, kind: postgres, dsn_env: DSN}
  - {name: workspace, kind: files, roots: ["` + root + `"]}
  - {name: local, kind: shell, workdir: "` + root + `"}
limits: {max_rows: 20000}
`
	cfg, err := config.Parse(strings.NewReader(yaml), dir)
	if err != nil {
		b.Fatal(err)
	}
	pg, err := tools.NewPostgres(cfg.Targets, func(string) string { return db.DSN() }, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pg.Close)
	eng, err := policy.New(context.Background(), "", nil, policy.WithInputSchema(guard.InputSchema()))
	if err != nil {
		b.Fatal(err)
	}
	g, err := guard.New(guard.Options{
		Config: cfg, Engine: eng, Recorder: rec, Masker: mk,
		Tools:  []tools.Tool{pg, tools.Files{}, tools.Shell{}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	return g
}

func realRecorder(b *testing.B) *recorder.Recorder {
	b.Helper()
	r, err := recorder.Open(filepath.Join(b.TempDir(), "guard.db"), recorder.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

func realMasker(b *testing.B) guard.Masker {
	b.Helper()
	m, err := masking.New(masking.Options{Secrets: []string{"a-server-held-secret"}, HashKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		b.Fatal(err)
	}
	return guard.ResultMasker{M: m}
}

// costCalls are the typical calls the recording benchmarks time: the
// cheapest a guard answers (a small file, a one-row query), a query of a
// hundred rows, and a shell command, which starts a process.
var costCalls = []struct {
	name string
	tool string
	args map[string]any
}{
	{"read_file", tools.ReadFile, map[string]any{"target": "workspace", "path": "q3.txt"}},
	{"query_1row", tools.QueryDatabase, map[string]any{"target": "appdb", "sql": "SELECT id, company FROM customers WHERE id = 1"}},
	{"query_100rows", tools.QueryDatabase, map[string]any{"target": "appdb", "sql": "SELECT g AS id, md5(g::text) AS ref FROM generate_series(1, 100) g"}},
	{"shell_ls", tools.RunShell, map[string]any{"target": "local", "command": "ls -la"}},
}

// BenchmarkRecordingCost compares a guarded call with recording (intent
// and completion committed to SQLite) against the same call with a
// recorder that does nothing. The two guards are called in turn, so that
// a slow spell of the machine falls on both; it reports both medians and
// the share recording adds, which should stay under 10% for a typical
// call.
//
//	go test -run '^$' -bench RecordingCost ./guard
func BenchmarkRecordingCost(b *testing.B) {
	for _, c := range costCalls {
		b.Run(c.name, func(b *testing.B) {
			plain := costGuard(b, nopRecorder{}, realMasker(b))
			recorded := costGuard(b, realRecorder(b), realMasker(b))
			inTurn(b, func() { plain(c.tool, c.args) }, func() { recorded(c.tool, c.args) })
		})
	}
}

// inTurn times plain and recorded calls in turn (ABBA, so neither always
// runs second), b.N of each, and reports both medians and the share
// recording adds.
func inTurn(b *testing.B, plain, recorded func()) {
	b.Helper()
	plain() // warm caches and connections
	recorded()
	timed := func(call func(), into *[]time.Duration) {
		start := time.Now()
		call()
		*into = append(*into, time.Since(start))
	}
	pl := make([]time.Duration, 0, b.N)
	rl := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			timed(plain, &pl)
			timed(recorded, &rl)
		} else {
			timed(recorded, &rl)
			timed(plain, &pl)
		}
	}
	b.StopTimer()
	reportShare(b, pl, rl, "unrecorded", "recorded", "recording")
}

// BenchmarkMaskingCost compares a 10,000-row query through the guard with
// masking (the default policy's column rules and every detector on every
// value) against the same query with a masker that does nothing. The two
// guards are called in turn, so a slow spell of the machine falls on both;
// it reports both medians and the share masking adds. Masking should cost
// under 20% of the query's time.
//
//	go test -run '^$' -bench MaskingCost ./guard
func BenchmarkMaskingCost(b *testing.B) {
	sql := "SELECT g AS id, 'customer ' || g AS name, 'user' || g || '@shop.example' AS contact, " +
		"CASE WHEN g % 10 = 0 THEN '4111 1111 1111 1111' ELSE 'ref-' || g END AS note, " +
		"now() AS at, g * 1.5 AS amount FROM generate_series(1, 10000) g"
	args := map[string]any{"target": "appdb", "sql": sql, "max_rows": float64(10000)}
	plain := costGuard(b, nopRecorder{}, nopMasker{})
	masked := costGuard(b, nopRecorder{}, realMasker(b))
	timed := func(call func(string, map[string]any) *mcp.CallToolResult) time.Duration {
		start := time.Now()
		res := call(tools.QueryDatabase, args)
		d := time.Since(start)
		if sc := res.StructuredContent.(map[string]any); sc["row_count"] != 10000 {
			b.Fatalf("row_count %v", sc["row_count"])
		}
		return d
	}
	timed(plain)
	timed(masked)
	var pl, ml []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			pl = append(pl, timed(plain))
			ml = append(ml, timed(masked))
		} else {
			ml = append(ml, timed(masked))
			pl = append(pl, timed(plain))
		}
	}
	b.StopTimer()
	reportShare(b, pl, ml, "unmasked", "masked", "masking")
}

// reportShare reports the medians of calls without and with a part of the
// guard, and the share of the first that the part adds, as
// WITHOUT-median-µs, WITH-median-µs and PART-%.
func reportShare(b *testing.B, without, with []time.Duration, withoutName, withName, part string) {
	b.Helper()
	slices.Sort(without)
	slices.Sort(with)
	p, w := without[len(without)/2], with[len(with)/2]
	b.ReportMetric(float64(p.Microseconds()), withoutName+"-median-µs")
	b.ReportMetric(float64(w.Microseconds()), withName+"-median-µs")
	b.ReportMetric(100*float64(w-p)/float64(p), part+"-%")
}

// BenchmarkRecordingCostHTTP is BenchmarkRecordingCost as a client sees
// it: each call travels over streamable HTTP on loopback to the guard's
// MCP server, as it does in use.
//
//	go test -run '^$' -bench RecordingCostHTTP ./guard
func BenchmarkRecordingCostHTTP(b *testing.B) {
	for _, c := range costCalls {
		b.Run(c.name, func(b *testing.B) {
			plain := httpCaller(b, costGuardOnly(b, nopRecorder{}, realMasker(b)))
			recorded := httpCaller(b, costGuardOnly(b, realRecorder(b), realMasker(b)))
			inTurn(b, func() { plain(c.tool, c.args) }, func() { recorded(c.tool, c.args) })
		})
	}
}
