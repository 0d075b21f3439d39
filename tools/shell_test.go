package tools

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/policy"
)

func shellCall(dir, command string) *Call {
	return &Call{Tool: RunShell, Target: &config.Target{
		Name: "local", Kind: config.KindShell, Workdir: dir,
		Path: []string{"/usr/local/bin", "/usr/bin", "/bin"},
	}, Args: map[string]any{"target": "local", "command": command}}
}

func TestRunLocal(t *testing.T) {
	t.Setenv("MCP_GUARD_TEST_SECRET", "server-secret-value")
	dir := t.TempDir()
	lim := Limits{TimeoutSeconds: 10, MaxOutputBytes: 1 << 20}
	cases := []struct {
		name    string
		command string
		limits  Limits
		exit    any
		stdout  string
		stderr  string
		trunc   bool
		timeout bool
	}{
		{"exit zero", "echo hello", lim, 0, "hello\n", "", false, false},
		{"exit code", "exit 3", lim, 3, "", "", false, false},
		{"stderr kept apart", "echo out; echo err >&2", lim, 0, "out\n", "err\n", false, false},
		{"runs in the workdir", "pwd", lim, 0, dir + "\n", "", false, false},
		{"server environment withheld", "echo \"[$MCP_GUARD_TEST_SECRET]\"", lim, 0, "[]\n", "", false, false},
		{"output capped", "yes | head -c 100000", Limits{TimeoutSeconds: 10, MaxOutputBytes: 1000}, 0, strings.Repeat("y\n", 500), "", true, false},
		{"timeout", "sleep 30", Limits{TimeoutSeconds: 1, MaxOutputBytes: 1000}, 137, "", "", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Shell{}.Run(context.Background(), shellCall(dir, tc.command), policy.Decision{}, tc.limits)
			if err != nil {
				t.Fatal(err)
			}
			s := res.Structured
			if s["exit_code"] != tc.exit || s["stdout"] != tc.stdout || s["stderr"] != tc.stderr ||
				s["truncated"] != tc.trunc || s["timed_out"] != tc.timeout {
				t.Fatalf("got %+v", s)
			}
		})
	}
}

// TestTimeoutKillsTheProcessGroup: a command's children die with it.
func TestTimeoutKillsTheProcessGroup(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "marker")
	cmd := "(sleep 2; touch " + marker + ") & sleep 30"
	res, err := Shell{}.Run(context.Background(), shellCall(dir, cmd), policy.Decision{}, Limits{TimeoutSeconds: 1, MaxOutputBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.Structured["timed_out"] != true {
		t.Fatalf("not timed out: %+v", res.Structured)
	}
	// Wait past the child's sleep with a second, bounded command rather
	// than a sleep in the test.
	_, _ = Shell{}.Run(context.Background(), shellCall(dir, "sleep 2"), policy.Decision{}, Limits{TimeoutSeconds: 5, MaxOutputBytes: 100})
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a child of the timed-out command kept running")
	}
}
