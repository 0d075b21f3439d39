package policy_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mcp-guard/mcp-guard/app"
	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/guard"
	"github.com/mcp-guard/mcp-guard/identity"
	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/tools"
)

// TestInliningKeepsDecisions holds the default policy as the engine
// compiles it (constants written into the rules) to the decisions of the
// policy as written, for every string of the repository's fuzz seeds,
// attack cases and Rego tests, sent as a shell command, a SQL statement
// and a file path, against a working directory holding secrets, links and
// a hard link.
func TestInliningKeepsDecisions(t *testing.T) {
	ctx := context.Background()
	schema := policy.WithInputSchema(guard.InputSchema())
	inlined, err := policy.New(ctx, "", slog.New(slog.DiscardHandler), schema)
	if err != nil {
		t.Fatal(err)
	}
	literal, err := policy.New(ctx, "", slog.New(slog.DiscardHandler), schema, policy.WithoutInlining())
	if err != nil {
		t.Fatal(err)
	}
	g := decisionGuard(t, inlined)
	caller := identity.Caller{Subject: "dev", Email: "dev@example.com", Groups: []string{"developers"}}

	corpus := corpusStrings(t)
	compared, outcomes := 0, map[string]int{}
	check := func(tool string, args map[string]any) {
		ev := g.Evaluate(ctx, caller, tool, args)
		if ev.Input == nil {
			return // refused before policy
		}
		compared++
		a, errA := inlined.Decide(ctx, ev.Input)
		b, errB := literal.Decide(ctx, ev.Input)
		outcomes[a.Outcome]++
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) || (errA == nil) != (errB == nil) {
			t.Errorf("%s %q:\ninlined    %s (%v)\nas written %s (%v)", tool, args, ja, errA, jb, errB)
		}
	}
	for _, s := range corpus {
		check(tools.RunShell, map[string]any{"target": "local", "command": s})
		check(tools.QueryDatabase, map[string]any{"target": "appdb", "sql": s})
		if !strings.ContainsAny(s, " \n") {
			check(tools.ReadFile, map[string]any{"target": "workspace", "path": s})
		}
	}
	t.Logf("%d strings, %d decisions compared: %v", len(corpus), compared, outcomes)
	if compared < 1000 || outcomes[policy.OutcomeAllow] < 100 ||
		outcomes[policy.OutcomeDeny] < 100 || outcomes[policy.OutcomeApproval] < 100 {
		t.Fatalf("the corpus is too thin to compare: %d decisions, %v", compared, outcomes)
	}
}

// corpusStrings collects the string literals of the fuzz seeds, the attack
// cases and the Rego tests.
func corpusStrings(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{
		"../shellfacts/testdata/fuzz/*/*", "../sqlfacts/testdata/fuzz/*/*",
		"../tools/testdata/fuzz/*/*", "../e2e/testdata/*.yaml", "default/*_test.rego",
		"../shellfacts/*_test.go",
	} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	literal := regexp.MustCompile("`[^`\\n]{1,300}`|\"(?:[^\"\\\\\\n]|\\\\.){1,300}\"|'[^'\\n]{1,300}'")
	seen := map[string]bool{}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range literal.FindAllString(string(b), -1) {
			s := m[1 : len(m)-1]
			if m[0] == '"' {
				if s, err = strconv.Unquote(m); err != nil {
					continue
				}
			}
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// decisionGuard builds a guard over a working directory with a secret
// file, a key below a subdirectory, links to a system secret and to the
// secret file, a hard link and a git directory.
func decisionGuard(t *testing.T, eng *policy.Engine) *guard.Guard {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for _, d := range []string{"reports", "sub/.ssh", ".git/hooks"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{
		"reports/q3.txt": "Revenue\n", ".env": "KEY=1\n", "sub/.ssh/id_rsa": "key\n",
		"sub/server.pem": "pem\n", "notes.txt": "notes\n", ".git/config": "[core]\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, link := range [][2]string{{"/etc/shadow", "innocent.txt"}, {"../.env", "sub/link"}} {
		if err := os.Symlink(link[0], filepath.Join(root, link[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(root, "reports/q3.txt"), filepath.Join(root, "hard.txt")); err != nil {
		t.Fatal(err)
	}
	yaml := `identity: {subject: dev, email: dev@example.com, groups: [developers]}
recorder: {path: ` + filepath.Join(dir, "var", "guard.db") + `}
targets:
  - {name: appdb, kind: postgres, description: Shop, dsn_env: UNUSED_DSN, labels: {env: prod}}
  - {name: workspace, kind: files, description: Files, roots: ["` + root + `"]}
  - {name: local, kind: shell, description: Shell, workdir: "` + root + `"}
`
	cfg, err := config.Parse(strings.NewReader(yaml), dir)
	if err != nil {
		t.Fatal(err)
	}
	// The pool connects lazily and nothing here runs a query.
	getenv := func(string) string { return "postgres://u:unused@127.0.0.1:1/db?sslmode=disable" }
	g, closeGuard, err := app.DecisionGuard(cfg, eng, getenv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeGuard)
	return g
}
