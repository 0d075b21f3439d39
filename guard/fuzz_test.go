package guard

import (
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/identity"
	"github.com/mcp-guard/mcp-guard/masking"
	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/shellfacts"
	"github.com/mcp-guard/mcp-guard/sqlfacts"
	"github.com/mcp-guard/mcp-guard/tools"
)

// testGuard is a guard with the bundled policy and no backends: enough to
// evaluate calls, not to run them.
func testGuard(tb testing.TB) *Guard {
	tb.Helper()
	dir := tb.TempDir()
	cfg := &config.Config{
		Targets: []config.Target{
			{Name: "appdb", Kind: config.KindPostgres, DSNEnv: "X", Labels: map[string]string{"env": "staging"}},
			{Name: "local", Kind: config.KindShell, Workdir: dir, Path: []string{"/usr/local/bin", "/usr/bin", "/bin"}},
			{Name: "workspace", Kind: config.KindFiles, Roots: []string{dir}},
		},
		Limits: config.Limits{MaxRows: 100, MaxOutputBytes: 1000, MaxFileBytes: 1000},
	}
	ctx := context.Background()
	eng, err := policy.New(ctx, "", nil, policy.WithInputSchema(InputSchema()))
	if err != nil {
		tb.Fatal(err)
	}
	pg, err := tools.NewPostgres(cfg.Targets, func(string) string { return "postgres://u@127.0.0.1:1/db" }, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pg.Close)
	m, err := masking.New(masking.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	g, err := New(Options{
		Config: cfg, Engine: eng, Masker: ResultMasker{M: m},
		Tools:  []tools.Tool{&tools.Lister{Targets: cfg.Targets}, pg, tools.Shell{}, tools.Files{}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

var fuzzCaller = identity.Caller{Subject: "fuzz", Groups: []string{"developers"}}

// readOnlyPrograms mirrors the bundled policy's read-only list for the
// invariant below.
var readOnlyPrograms = []string{
	"ls", "cat", "head", "tail", "wc", "grep", "egrep", "fgrep", "rg", "find",
	"echo", "printf", "pwd", "date", "uname", "whoami", "id", "hostname",
	"uptime", "df", "du", "stat", "file", "sort", "uniq", "cut", "tr", "diff",
	"cmp", "md5sum", "sha1sum", "sha256sum", "sha512sum", "basename",
	"dirname", "realpath", "readlink", "tree", "jq", "column", "nl", "true",
	"false", "test", "[", "which", "ps", "free", "git", "cd", "tac", "rev",
	"fold", "fmt", "expand", "unexpand", "paste", "join", "comm", "seq",
	"yes", "sleep", "base64", "xxd", "od", "hexdump", "strings", "type",
	"command", "nproc", "arch", "lsblk", "env",
}

// FuzzShellDecision mutates shell commands, seeded with the denied and
// approval cases, and checks that whatever the policy allows is what it
// means to allow: literal, read-only programs, nothing hidden, no writes.
func FuzzShellDecision(f *testing.F) {
	g := testGuard(f)
	f.Fuzz(func(t *testing.T, command string) {
		ev := g.Evaluate(context.Background(), fuzzCaller, tools.RunShell,
			map[string]any{"target": "local", "command": command})
		if ev.Decision.Outcome != policy.OutcomeAllow {
			return
		}
		facts, ok := ev.Facts.(*shellfacts.Facts)
		if !ok {
			t.Fatalf("allowed %q without shell facts", command)
		}
		if facts.Dynamic || facts.Background || facts.ChangesEnvironment || facts.FunctionDefs {
			t.Fatalf("allowed %q with dynamic or environment-changing parts: %+v", command, facts)
		}
		for _, c := range facts.Commands {
			if !slices.Contains(readOnlyPrograms, c.Base) || c.Opaque || c.Privileged {
				t.Fatalf("allowed %q, which runs %q (%+v)", command, c.Base, c)
			}
		}
		for _, r := range facts.Redirects {
			if r.Writes {
				t.Fatalf("allowed %q, which writes %q", command, r.Target)
			}
		}
	})
}

// FuzzSQLDecision does the same for SQL: an allowed statement is one
// statement that only reads and calls no denied function.
func FuzzSQLDecision(f *testing.F) {
	g := testGuard(f)
	denied := []string{"pg_read_file", "set_config", "pg_sleep", "dblink", "dblink_exec", "lo_import", "pg_notify", "pg_terminate_backend"}
	f.Fuzz(func(t *testing.T, sql string) {
		ev := g.Evaluate(context.Background(), fuzzCaller, tools.QueryDatabase,
			map[string]any{"target": "appdb", "sql": sql})
		if ev.Decision.Outcome != policy.OutcomeAllow {
			return
		}
		facts, ok := ev.Facts.(*sqlfacts.Facts)
		if !ok {
			t.Fatalf("allowed %q without SQL facts", sql)
		}
		if facts.StatementCount != 1 || !facts.ReadOnly || ev.Decision.Writes {
			t.Fatalf("allowed %q: %d statements, read-only %v", sql, facts.StatementCount, facts.ReadOnly)
		}
		for _, fn := range facts.FunctionNames {
			if slices.Contains(denied, fn) {
				t.Fatalf("allowed %q, which calls %s", sql, fn)
			}
		}
	})
}
