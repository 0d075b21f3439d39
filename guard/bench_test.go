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

	"github.com/mcp-guard/mcp-guard/app"
	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/guard"
	"github.com/mcp-guard/mcp-guard/identity"
	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/tools"
)

// decisionCases are calls the bundled default policy allows, of the size
// an assistant typically sends: one per tool that gathers facts, and for
// the shell a recursive search (the costliest of the three: the guard
// walks the tree it reads), a listing and a read.
var decisionCases = []struct {
	name string
	tool string
	args map[string]any
}{
	{"sql", tools.QueryDatabase, map[string]any{"target": "appdb", "sql": "SELECT o.id, o.status, " +
		"c.company FROM orders o JOIN customers c ON c.id = o.customer_id " +
		"WHERE o.status = 'paid' ORDER BY o.id LIMIT 50"}},
	{"shell", tools.RunShell, map[string]any{"target": "local",
		"command": "grep -rn TODO . | head -20"}},
	{"shell-ls", tools.RunShell, map[string]any{"target": "local",
		"command": "ls -la root/reports"}},
	{"shell-cat", tools.RunShell, map[string]any{"target": "local",
		"command": "cat root/reports/q3.txt"}},
	{"file", tools.ReadFile, map[string]any{"target": "workspace", "path": "reports/q3.txt"}},
}

// BenchmarkDecide measures what the guard spends deciding one call before
// anything runs: argument validation, facts (the SQL parser, the bash
// parser, the path walk) and the policy, through guard.Evaluate on a guard
// assembled like the serving one. Besides the mean (ns/op) it reports the
// median and the 99th percentile of single calls. Run with
//
//	go test -run '^$' -bench Decide -benchmem ./guard
func BenchmarkDecide(b *testing.B) {
	g, caller := benchGuard(b)
	ctx := context.Background()
	for _, tc := range decisionCases {
		b.Run(tc.name, func(b *testing.B) {
			checkAllowed(b, g.Evaluate(ctx, caller, tc.tool, tc.args))
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				ev := g.Evaluate(ctx, caller, tc.tool, tc.args)
				lat = append(lat, time.Since(start))
				if ev.Decision.Outcome != policy.OutcomeAllow {
					b.Fatalf("outcome %q", ev.Decision.Outcome)
				}
			}
			reportPercentiles(b, lat)
		})
	}
}

// BenchmarkPolicy measures the policy evaluation alone on the input the
// guard built for each call, so that facts and policy can be told apart.
func BenchmarkPolicy(b *testing.B) {
	g, caller := benchGuard(b)
	eng := benchEngine(b)
	ctx := context.Background()
	for _, tc := range decisionCases {
		b.Run(tc.name, func(b *testing.B) {
			ev := g.Evaluate(ctx, caller, tc.tool, tc.args)
			checkAllowed(b, ev)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				d, err := eng.Decide(ctx, ev.Input)
				lat = append(lat, time.Since(start))
				if err != nil || d.Outcome != policy.OutcomeAllow {
					b.Fatalf("decide: %q %v", d.Outcome, err)
				}
			}
			reportPercentiles(b, lat)
		})
	}
}

func checkAllowed(b *testing.B, ev guard.Evaluation) {
	b.Helper()
	if ev.Refusal != nil || ev.Decision.Outcome != policy.OutcomeAllow {
		b.Fatalf("the call is not allowed: refusal %+v, decision %+v", ev.Refusal, ev.Decision)
	}
}

// reportPercentiles adds the median and 99th percentile of the single-call
// durations as metrics.
func reportPercentiles(b *testing.B, lat []time.Duration) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pick := func(q float64) float64 {
		return float64(lat[int(q*float64(len(lat)-1))].Nanoseconds())
	}
	b.ReportMetric(pick(0.5), "p50-ns")
	b.ReportMetric(pick(0.99), "p99-ns")
}

// benchEngine compiles the bundled default policy with the input schema,
// as the serving guard does, so that validating the input is measured.
func benchEngine(b *testing.B) *policy.Engine {
	b.Helper()
	eng, err := policy.New(context.Background(), "", slog.New(slog.DiscardHandler),
		policy.WithInputSchema(guard.InputSchema()))
	if err != nil {
		b.Fatal(err)
	}
	return eng
}

// benchGuard builds a guard as app.Evaluate does (app.DecisionGuard), on
// a configuration with a postgres target (never connected to), a files
// root holding a real file, and a shell target.
func benchGuard(b *testing.B) (*guard.Guard, identity.Caller) {
	b.Helper()
	dir := b.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "reports"), 0o755); err != nil {
		b.Fatal(err)
	}
	q3 := filepath.Join(root, "reports", "q3.txt")
	if err := os.WriteFile(q3, []byte("Revenue grew 12% over Q2.\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	yaml := `identity: {subject: bench, email: bench@example.com, groups: [developers]}
recorder: {path: ` + filepath.Join(dir, "var", "guard.db") + `}
targets:
  - {name: appdb, kind: postgres, description: Shop database, dsn_env: BENCH_DSN}
  - {name: workspace, kind: files, description: Files, roots: ["` + root + `"]}
  - {name: local, kind: shell, description: Shell, workdir: "` + dir + `"}
`
	cfg, err := config.Parse(strings.NewReader(yaml), dir)
	if err != nil {
		b.Fatal(err)
	}
	// The pool connects lazily and no benchmark runs a query.
	const dsn = "postgres://bench:unused@127.0.0.1:1/bench?sslmode=disable"
	g, closeGuard, err := app.DecisionGuard(cfg, benchEngine(b), func(string) string { return dsn })
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(closeGuard)
	caller := identity.Caller{Subject: "bench", Email: "bench@example.com",
		Groups: []string{"developers"}}
	return g, caller
}
