package guard

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	plantShellBait(tb, dir)
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

// textOnlyPrograms mirrors the policy's list of programs whose arguments
// are never opened as files.
var textOnlyPrograms = []string{
	"echo", "printf", "basename", "dirname", "true", "false", "seq", "yes",
	"sleep", "pwd", "type", "command", "which", "uname", "whoami", "id",
	"nproc", "arch", "uptime", "free", "hostname", "env", "test", "[",
}

// plantShellBait puts into the shell target's working directory what the
// fuzzer should never reach without approval: secrets, a link to one, a
// hard link to one, a link out of the directory, and a program named
// like a read-only one.
func plantShellBait(tb testing.TB, dir string) {
	tb.Helper()
	files := map[string]string{".env": "K=v\n", ".ssh/id_rsa": "key\n",
		"notes.txt": "TODO\n", "sign.key": "k\n"}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cat"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		tb.Fatal(err)
	}
	for name, to := range map[string]string{"innocent.txt": ".env", "etc": "/etc"} {
		if err := os.Symlink(to, filepath.Join(dir, name)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(dir, ".env"), filepath.Join(dir, "hard")); err != nil {
		tb.Fatal(err)
	}
}

// shellSeeds are the tester's spellings of each kind, for the fuzzer to
// start from.
var shellSeeds = []string{
	"cat /proc/self/env*", "cd /proc/self && cat environ", "cat /etc/./shadow",
	"cat < /etc/hostname", "cat ../../x", "cat ~/../x", "cat .en[v]", "cat .en?",
	"cd .ssh && base64 i*", "cat innocent.txt", "cat hard", "cat etc/passwd",
	"./cat notes.txt", "git show --output=.git/config", "git grep --open-files-i=x y",
	"sort --comp=sh notes.txt", "sort --outp x notes.txt", "date 010100002030",
	"date --se=x", "hostname --file=/etc/hostname", "git reflog expire --all",
	"ps auxe", "rg --pre=./x y", "tree -o x", "cat notes.txt", "ls -la",
}

// FuzzShellDecision mutates shell commands, seeded with the denied and
// approval cases, and checks that whatever the policy allows is what it
// means to allow: literal, read-only programs found on the target's PATH,
// nothing hidden, no writes, no file outside the working directory, no
// hard-linked file.
func FuzzShellDecision(f *testing.F) {
	g := testGuard(f)
	for _, s := range shellSeeds {
		f.Add(s)
	}
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
			if c.Resolved != "" && !c.InPath || strings.Contains(c.Name, "/") && !c.InPath {
				t.Fatalf("allowed %q, which runs %q from outside PATH", command, c.Resolved)
			}
			if !slices.Contains(textOnlyPrograms, c.Base) {
				checkAllowedPaths(t, command, c.Paths)
			}
		}
		for _, r := range facts.Redirects {
			if r.Writes {
				t.Fatalf("allowed %q, which writes %q", command, r.Target)
			}
			checkAllowedPaths(t, command, r.Paths)
		}
	})
}

// checkAllowedPaths fails when an allowed command opens a path outside
// the working directory, a hard-linked file, or a secret.
func checkAllowedPaths(t *testing.T, command string, paths []shellfacts.PathFact) {
	t.Helper()
	for _, p := range paths {
		switch {
		case !p.Inside && !strings.HasPrefix(p.Resolved, "/dev/"):
			t.Fatalf("allowed %q, which opens %q outside the workdir", command, p.Resolved)
		case p.Links > 1:
			t.Fatalf("allowed %q, which opens the hard-linked %q", command, p.Resolved)
		case slices.Contains(strings.Split(p.Resolved, "/"), ".ssh") ||
			filepath.Base(p.Resolved) == ".env" || strings.HasSuffix(p.Resolved, ".key"):
			t.Fatalf("allowed %q, which opens the secret %q", command, p.Resolved)
		}
	}
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
