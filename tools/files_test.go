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

// tree makes a root with siblings and links for path tests.
func tree(t testing.TB) (base, root string) {
	t.Helper()
	base = t.TempDir()
	root = filepath.Join(base, "root")
	mk := func(p, content string) {
		p = filepath.Join(base, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ln := func(p, to string) {
		if err := os.Symlink(to, filepath.Join(base, p)); err != nil {
			t.Fatal(err)
		}
	}
	mk("root/reports/q3.txt", "Q3 revenue summary\n")
	mk("root/..notes", "inside\n")
	mk("root/.env", "SECRET=1\n")
	mk("root_backup/keys/prod.pem", "key\n")
	mk("outside/shadow", "shadow\n")
	ln("root/docs", filepath.Join(base, "outside"))
	ln("root/latest", "reports/q3.txt")
	ln("root/up", "../outside/shadow")
	ln("root/dangling-out", filepath.Join(base, "outside", "nope"))
	ln("root/dangling-in", "reports/nope.txt")
	ln("root/notes.txt", ".env")
	ln("root/self", "self")
	ln("root/abs-in", filepath.Join(root, "reports", "q3.txt"))
	ln("root/reports/back", "..")
	return base, root
}

func TestResolve(t *testing.T) {
	base, root := tree(t)
	cases := []struct {
		name     string
		path     string
		inside   bool
		exists   bool
		resolved string // relative to root when inside
	}{
		{"plain relative", "reports/q3.txt", true, true, "reports/q3.txt"},
		{"plain absolute", root + "/reports/q3.txt", true, true, "reports/q3.txt"},
		{"name starting with two dots", root + "/..notes", true, true, "..notes"},
		{"sibling sharing the prefix", root + "_backup/keys/prod.pem", false, false, ""},
		{"dotdot out of the root", root + "/../outside/shadow", false, false, ""},
		{"dotdot that stays inside", "reports/../reports/q3.txt", true, true, "reports/q3.txt"},
		{"directory link out", root + "/docs/shadow", false, false, ""},
		{"relative link out", "up", false, false, ""},
		{"link inside", "latest", true, true, "reports/q3.txt"},
		{"absolute link inside", "abs-in", true, true, "reports/q3.txt"},
		{"dangling link out", "dangling-out", false, false, ""},
		{"dangling link inside", "dangling-in", true, false, "reports/nope.txt"},
		{"innocent name for a secret", "notes.txt", true, true, ".env"},
		{"link loop", "self", false, false, ""},
		{"link to parent then out", "reports/back/../outside/shadow", false, false, ""},
		{"outside absolute", "/etc/passwd", false, false, ""},
		{"proc environ", "/proc/self/environ", false, false, ""},
		{"missing file", "reports/missing.txt", true, false, "reports/missing.txt"},
		{"the base itself", base, false, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := Resolve([]string{root}, tc.path)
			if f.Inside != tc.inside || f.Exists != tc.exists {
				t.Fatalf("Resolve(%q) = inside %v exists %v (%s), want %v %v", tc.path, f.Inside, f.Exists, f.Error, tc.inside, tc.exists)
			}
			if tc.inside && f.Relative != tc.resolved {
				t.Fatalf("Resolve(%q).Relative = %q, want %q", tc.path, f.Relative, tc.resolved)
			}
			if tc.inside && f.Exists {
				real, err := filepath.EvalSymlinks(filepath.Join(root, tc.path))
				if filepath.IsAbs(tc.path) {
					real, err = filepath.EvalSymlinks(tc.path)
				}
				if err != nil || real != f.Resolved {
					t.Fatalf("the kernel opens %q (%v), Resolve says %q", real, err, f.Resolved)
				}
			}
		})
	}
}

func readCall(root, path string, args map[string]any) *Call {
	a := map[string]any{"target": "w", "path": path}
	for k, v := range args {
		a[k] = v
	}
	return &Call{Tool: ReadFile, Target: &config.Target{Name: "w", Kind: config.KindFiles, Roots: []string{root}}, Args: a}
}

func TestReadFile(t *testing.T) {
	_, root := tree(t)
	if err := os.WriteFile(filepath.Join(root, "bin.dat"), []byte("ab\x00cd"), 0o644); err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	for i := 1; i <= 100; i++ {
		lines.WriteString(strings.Repeat("x", 9) + "\n")
	}
	if err := os.WriteFile(filepath.Join(root, "lines.txt"), []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	lim := Limits{MaxFileBytes: 1 << 20, TimeoutSeconds: 5}
	cases := []struct {
		name      string
		path      string
		args      map[string]any
		limits    Limits
		failed    bool
		content   string
		truncated bool
	}{
		{"text", "reports/q3.txt", nil, lim, false, "Q3 revenue summary\n", false},
		{"through an inside link", "latest", nil, lim, false, "Q3 revenue summary\n", false},
		{"binary refused", "bin.dat", nil, lim, true, "", false},
		{"directory refused", "reports", nil, lim, true, "", false},
		{"missing", "reports/none.txt", nil, lim, true, "", false},
		{"escape refused", "up", nil, lim, true, "", false},
		{"offset and limit", "lines.txt", map[string]any{"offset": float64(98), "limit": float64(1)}, lim, false, "xxxxxxxxx\n", true},
		{"offset to the end", "lines.txt", map[string]any{"offset": float64(99)}, lim, false, "xxxxxxxxx\n", false},
		{"size cap", "lines.txt", nil, Limits{MaxFileBytes: 25, TimeoutSeconds: 5}, false, "xxxxxxxxx\nxxxxxxxxx\nxxxxx", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Files{}.Run(context.Background(), readCall(root, tc.path, tc.args), policy.Decision{}, tc.limits)
			if err != nil {
				t.Fatal(err)
			}
			if res.Failed != tc.failed {
				t.Fatalf("failed = %v (%v), want %v", res.Failed, res.Structured, tc.failed)
			}
			if tc.failed {
				return
			}
			if got := res.Structured["content"]; got != tc.content {
				t.Fatalf("content %q, want %q", got, tc.content)
			}
			if got := res.Structured["truncated"]; got != tc.truncated {
				t.Fatalf("truncated %v, want %v", got, tc.truncated)
			}
		})
	}
}

func TestCheckTextRefusesInvisibleCharacters(t *testing.T) {
	bad := []string{"rm\u200b -rf x", "git\u3000push", "a\u202eb", "x\u00a0y", "a\x00b", "a\rb", "\ufeffls", "a\u2028b", "ls\U000E0041"}
	for _, s := range bad {
		if err := checkText("command", s); err == nil {
			t.Errorf("%q was accepted", s)
		}
	}
	good := []string{"ls -la", "echo 'Zürich naïve café'", "a\tb\nc", "日本語"}
	for _, s := range good {
		if err := checkText("command", s); err != nil {
			t.Errorf("%q was refused: %v", s, err)
		}
	}
	if err := checkSQLText("sql", "SELECT 1\r\n"); err != nil {
		t.Errorf("a CRLF in SQL was refused: %v", err)
	}
}

// FuzzResolve (seeded from testdata/fuzz/FuzzResolve) checks that whatever path is asked for, Resolve never
// reports as inside a file the kernel would open outside the root, and
// that os.Root agrees with it.
func FuzzResolve(f *testing.F) {
	base, root := tree(f)
	_ = base
	f.Fuzz(func(t *testing.T, p string) {
		if strings.ContainsRune(p, 0) {
			return
		}
		r := Resolve([]string{root}, p)
		if !r.Inside || !r.Exists || r.Error != "" {
			return
		}
		real, err := filepath.EvalSymlinks(r.Resolved)
		if err != nil {
			t.Fatalf("Resolve(%q) says %q exists: %v", p, r.Resolved, err)
		}
		if real != root && !strings.HasPrefix(real, root+"/") {
			t.Fatalf("Resolve(%q) = %q, which is %q outside the root", p, r.Resolved, real)
		}
		rt, err := os.OpenRoot(root)
		if err != nil {
			t.Fatal(err)
		}
		defer rt.Close()
		fh, err := rt.Open(r.Relative)
		if err != nil {
			t.Fatalf("Resolve(%q) = %q inside, but os.Root refuses it: %v", p, r.Relative, err)
		}
		fh.Close()
	})
}

// TestResolveCountsHardLinks: a second name for a file is visible in the
// facts, so the policy can hold it (it may be a secret under another name).
func TestResolveCountsHardLinks(t *testing.T) {
	_, root := tree(t)
	if err := os.Link(filepath.Join(root, ".env"), filepath.Join(root, "reports", "hard.txt")); err != nil {
		t.Fatal(err)
	}
	if f := Resolve([]string{root}, "reports/hard.txt"); f.HardLinks != 2 {
		t.Fatalf("hard_links = %d, want 2", f.HardLinks)
	}
	if f := Resolve([]string{root}, "reports/q3.txt"); f.HardLinks != 1 {
		t.Fatalf("hard_links = %d, want 1", f.HardLinks)
	}
}
