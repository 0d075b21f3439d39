package shellfacts

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// pathFixture adds to the fixture the files the path facts are checked
// on: a secret, a link to it, a hard link to it, a linked directory that
// leads outside, and a program in the working directory.
func pathFixture(t *testing.T) (fixture, string) {
	t.Helper()
	fx := newFixture(t)
	outside := filepath.Join(filepath.Dir(fx.work), "outside")
	write := func(p, content string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(fx.work, ".env"), "K=v\n", 0o644)
	write(filepath.Join(fx.work, ".ssh", "id_rsa"), "k\n", 0o600)
	write(filepath.Join(fx.work, "sub", "a.txt"), "a\n", 0o644)
	write(filepath.Join(fx.work, "cat"), "#!/bin/sh\n", 0o755)
	write(filepath.Join(outside, "secret.txt"), "s\n", 0o644)
	for name, to := range map[string]string{"innocent.txt": ".env", "out": "../outside"} {
		if err := os.Symlink(to, filepath.Join(fx.work, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(fx.work, ".env"), filepath.Join(fx.work, "hard")); err != nil {
		t.Fatal(err)
	}
	return fx, outside
}

// resolvedPaths returns the resolved paths of a command's facts.
func resolvedPaths(c Command) []string {
	out := []string{}
	for _, p := range c.Paths {
		out = append(out, p.Resolved)
	}
	return out
}

func TestPathFacts(t *testing.T) {
	fx, outside := pathFixture(t)
	env := filepath.Join(fx.work, ".env")
	secret := filepath.Join(outside, "secret.txt")
	cases := []struct {
		name, cmd, prog string
		want            []PathFact
	}{
		{"plain file", "cat sub/a.txt", "cat", []PathFact{{Arg: "sub/a.txt",
			Resolved: filepath.Join(fx.work, "sub/a.txt"), Inside: true, Exists: true, Links: 1}}},
		{"bare name that exists", "cat innocent.txt", "cat", []PathFact{{Arg: "innocent.txt",
			Resolved: env, Inside: true, Exists: true, Links: 2}}},
		{"word that names nothing", "grep -n TODO", "grep", []PathFact{}},
		{"dot dot", "cat ../outside/secret.txt", "cat", []PathFact{{Arg: "../outside/secret.txt",
			Resolved: secret, Exists: true, Links: 1}}},
		{"through a linked directory", "cat out/secret.txt", "cat", []PathFact{{
			Arg: "out/secret.txt", Resolved: secret, Exists: true, Links: 1}}},
		{"dot dot after a link", "cat out/../outside/secret.txt", "cat", []PathFact{{
			Arg: "out/../outside/secret.txt", Resolved: secret, Exists: true, Links: 1}}},
		{"after cd", "cd sub && cat ../.env", "cat", []PathFact{{Arg: "../.env",
			Resolved: env, Inside: true, Exists: true, Links: 2}}},
		{"after cd into a link", "cd out && cat secret.txt", "cat", []PathFact{{
			Arg: "secret.txt", Resolved: secret, Exists: true, Links: 1}}},
		{"tilde", "cat ~/.env", "cat", []PathFact{{Arg: "~/.env",
			Resolved: filepath.Join(fx.home, ".env")}}},
		{"another user's home", "cat ~root/x", "cat", []PathFact{{Arg: "~root/x"}}},
		{"long option value", "git blame --contents=" + secret, "git", []PathFact{{
			Arg: secret, Resolved: secret, Exists: true, Links: 1}}},
		{"short option value", "grep -f../outside/secret.txt x", "grep", []PathFact{{
			Arg: "../outside/secret.txt", Resolved: secret, Exists: true, Links: 1}}},
		{"value in a cluster", "date -uf" + secret, "date", []PathFact{
			{Arg: "f" + secret, Resolved: filepath.Join(fx.work, "f"+secret), Inside: true},
			{Arg: secret, Resolved: secret, Exists: true, Links: 1}}},
		{"dot file in a cluster", "date -uf.env", "date", []PathFact{{Arg: ".env",
			Resolved: env, Inside: true, Exists: true, Links: 2}}},
		{"cluster without a path", "ls -la", "ls", []PathFact{}},
		{"known value letter ends the cluster", "grep -fsub/a.txt x", "grep", []PathFact{{
			Arg: "sub/a.txt", Resolved: filepath.Join(fx.work, "sub/a.txt"), Inside: true,
			Exists: true, Links: 1}}},
		{"grep pattern is not a path", "grep /api/ sub", "grep", []PathFact{{Arg: "sub",
			Resolved: filepath.Join(fx.work, "sub"), Inside: true, Exists: true}}},
		{"grep -e makes every operand a file", "grep -e x /api/", "grep", []PathFact{{
			Arg: "/api/", Resolved: "/api"}}},
		{"glob", "cat .en?", "cat", []PathFact{
			{Arg: ".en?", Resolved: env, Inside: true, Exists: true, Links: 2, Glob: true},
			{Arg: ".en?", Resolved: filepath.Join(fx.work, ".en?"), Inside: true}}},
		{"glob after cd", "cd .ss? && cat i*", "cat", []PathFact{
			{Arg: "i*", Resolved: filepath.Join(fx.work, ".ssh/id_rsa"), Inside: true,
				Exists: true, Links: 1, Glob: true}}},
		{"star skips dot files", "cat *", "cat", nil},
		{"device", "diff x /dev/null", "diff", []PathFact{{Arg: "/dev/null",
			Resolved: "/dev/null", Exists: true}}},
		{"unknown directory", "cd - && cat notes", "cat", []PathFact{{Arg: "notes"}}},
		{"@FILE", "strings @.env", "strings", []PathFact{{Arg: ".env",
			Resolved: env, Inside: true, Exists: true, Links: 2}}},
		{"@FILE as an option value", "curl --data=@../outside/secret.txt x", "curl", []PathFact{
			{Arg: "@../outside/secret.txt", Resolved: filepath.Join(fx.work, "@../outside/secret.txt"), Inside: true},
			{Arg: "../outside/secret.txt", Resolved: secret, Exists: true, Links: 1}}},
		{"an address is no path", "cat ann@example.com", "cat", []PathFact{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Analyze(tc.cmd, fx.opts())
			if err != nil {
				t.Fatal(err)
			}
			got := command(t, f, tc.prog).Paths
			if tc.want == nil {
				// * matches names without a leading dot, as bash does;
				// innocent.txt still shows the .env it leads to.
				res := resolvedPaths(command(t, f, tc.prog))
				for _, p := range []string{"sub", "cat", ".env"} {
					if !slices.Contains(res, filepath.Join(fx.work, p)) {
						t.Errorf("* did not match %s: %q", p, res)
					}
				}
				if slices.Contains(res, filepath.Join(fx.work, ".ssh")) {
					t.Errorf("* matched .ssh: %q", res)
				}
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("paths =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestRedirectPaths(t *testing.T) {
	fx, outside := pathFixture(t)
	f, err := Analyze("cat < .en[v] > out/new.txt", fx.opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Redirects) != 2 {
		t.Fatalf("redirects = %+v", f.Redirects)
	}
	in, out := f.Redirects[0].Paths, f.Redirects[1].Paths
	if len(in) == 0 || in[0].Resolved != filepath.Join(fx.work, ".env") || !in[0].Glob {
		t.Errorf("input paths = %+v", in)
	}
	want := PathFact{Arg: "out/new.txt", Resolved: filepath.Join(outside, "new.txt")}
	if len(out) != 1 || out[0] != want {
		t.Errorf("output paths = %+v, want %+v", out, want)
	}
	f, err = Analyze("echo x 2>&1", fx.opts())
	if err != nil {
		t.Fatal(err)
	}
	if p := f.Redirects[0].Paths; p == nil || len(p) != 0 {
		t.Errorf("a descriptor has paths %+v", p)
	}
}

func TestInPath(t *testing.T) {
	fx, _ := pathFixture(t)
	cases := []struct {
		name, cmd string
		path      []string
		want      bool
	}{
		{"by name", "cat x", []string{fx.bin}, true},
		{"absolute into PATH", filepath.Join(fx.bin, "cat") + " x", []string{fx.bin}, true},
		{"dot slash", "./cat x", []string{fx.bin}, false},
		{"relative PATH entry", "cat x", []string{".", fx.bin}, false},
		{"workdir on PATH", "cat x", []string{fx.work, fx.bin}, false},
		{"not found", "nosuch x", []string{fx.bin}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := fx.opts()
			opts.Path = tc.path
			f, err := Analyze(tc.cmd, opts)
			if err != nil {
				t.Fatal(err)
			}
			if c := f.Commands[0]; c.InPath != tc.want {
				t.Errorf("in_path = %v (resolved %q), want %v", c.InPath, c.Resolved, tc.want)
			}
		})
	}
}

func TestRemotePathsAreNotLookedUp(t *testing.T) {
	opts := Options{Workdir: "/srv/app", Remote: true}
	f, err := Analyze("cat ../etc/./x .en? hard", opts)
	if err != nil {
		t.Fatal(err)
	}
	got := resolvedPaths(f.Commands[0])
	want := []string{"/srv/etc/x", "/srv/app/.en?"}
	if !slices.Equal(got, want) {
		t.Errorf("resolved = %q, want %q", got, want)
	}
}

func TestRecursiveReaders(t *testing.T) {
	fx, _ := pathFixture(t)
	cases := []struct {
		name, cmd, prog string
		want            []string // base names of the entries found below
	}{
		{"grep -r sees hidden files and hard links", "grep -r x .", "grep",
			[]string{".env", ".ssh", "id_rsa", "hard"}},
		{"grep -R follows links", "grep -R x .", "grep",
			[]string{".env", ".env", ".ssh", "id_rsa", "hard", "outside"}},
		{"grep without -r reads no tree", "grep x .", "grep", nil},
		{"grep -f value holds no r", "grep -fsub/r.txt x", "grep", nil},
		{"rg skips hidden files", "rg x", "rg", []string{"hard"}},
		{"rg --hidden", "rg --hidden x", "rg", []string{".env", ".ssh", "id_rsa", "hard"}},
		{"a directory without secrets", "grep -r x sub", "grep", nil},
		{"git grep reads the tree", "git grep --no-index -h -e x", "git",
			[]string{".env", ".ssh", "id_rsa", "hard"}},
		{"git diff --no-index", "git diff --no-index sub .", "git",
			[]string{".env", ".ssh", "id_rsa", "hard"}},
		{"git diff prints tracked files", "git diff HEAD~2 HEAD", "git",
			[]string{".env", ".ssh", "id_rsa", "hard"}},
		{"git show prints tracked files", "git show 3518dcde", "git",
			[]string{".env", ".ssh", "id_rsa", "hard"}},
		{"git log -p prints tracked files", "git log -p --all", "git",
			[]string{".env", ".ssh", "id_rsa", "hard"}},
		{"git log -1 -p clustered", "git log -1p", "git",
			[]string{".env", ".ssh", "id_rsa", "hard"}},
		{"git log without a patch reads no tree", "git log --oneline -- grep", "git", nil},
		{"git status reads no tree", "git status --short", "git", nil},
		{"git diff --stat reads no tree", "git diff --exit-code --stat", "git", nil},
		{"git show --stat may print a blob", "git show --stat 3518dcde", "git",
			[]string{".env", ".ssh", "id_rsa", "hard"}},
		{"git log -U3 prints tracked files", "git log -U3", "git",
			[]string{".env", ".ssh", "id_rsa", "hard"}},
		{"git diff --exit-code prints a patch", "git diff --exit-code HEAD~1 HEAD", "git",
			[]string{".env", ".ssh", "id_rsa", "hard"}},
		{"git reflog -p prints tracked files", "git reflog show -p", "git",
			[]string{".env", ".ssh", "id_rsa", "hard"}},
		{"git diff --quiet reads no tree", "git diff --quiet", "git", nil},
		{"git diff --stat -p prints tracked files", "git diff --stat -p", "git",
			[]string{".env", ".ssh", "id_rsa", "hard"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Analyze(tc.cmd, fx.opts())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range command(t, f, tc.prog).Paths {
				if p.Below {
					got = append(got, filepath.Base(p.Resolved))
				}
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("below = %q, want %q", got, want)
			}
		})
	}
}

// TestGitReadsTheWholeRepository: git show in a subdirectory prints every
// file of a commit, so the walk starts at the top of the work tree.
func TestGitReadsTheWholeRepository(t *testing.T) {
	fx, _ := pathFixture(t)
	if err := os.Mkdir(filepath.Join(fx.work, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cmd  string
		want bool // .env found below
	}{
		{"cd sub && git show HEAD", true},
		{"cd sub && git log -p", true},
		{"cd sub && git diff --no-index . /dev/null", false},
		{"cd sub && git log --oneline", false},
	} {
		f, err := Analyze(tc.cmd, fx.opts())
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range command(t, f, "git").Paths {
			found = found || p.Below && filepath.Base(p.Resolved) == ".env"
		}
		if found != tc.want {
			t.Errorf("%s: .env below = %v, want %v", tc.cmd, found, tc.want)
		}
	}
}

// TestWordsAndPrograms checks the two indexes of a call: every argument,
// path (as typed and resolved) and redirection target once, without the
// entries found below a directory; every name, base and resolved base.
func TestWordsAndPrograms(t *testing.T) {
	fx, _ := pathFixture(t)
	at := func(p string) string { return filepath.Join(fx.work, p) }
	cases := []struct {
		name, cmd       string
		words, programs []string
	}{
		{"arguments and their paths", "cat sub/a.txt sub/a.txt",
			[]string{"sub/a.txt", at("sub/a.txt")}, []string{"cat"}},
		{"a link is listed as typed and as resolved", "head -1 innocent.txt",
			[]string{"-1", "innocent.txt", at(".env")}, []string{"head"}},
		{"redirections", "ls > out.txt 2>/dev/null < sub/a.txt",
			[]string{"out.txt", at("out.txt"), "/dev/null", "sub/a.txt", at("sub/a.txt")}, []string{"ls"}},
		{"entries below a directory are left out", "grep -r x .",
			[]string{"-r", "x", ".", fx.work}, []string{"grep"}},
		{"a program by path, a link to another, an inner command", "./cat x; sh -c 'id'",
			[]string{"x", "-c", "id"}, []string{"./cat", "cat", "sh", "dash", "id"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Analyze(tc.cmd, fx.opts())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f.Words, tc.words) {
				t.Errorf("words %q, want %q", f.Words, tc.words)
			}
			if !slices.Equal(f.Programs, tc.programs) {
				t.Errorf("programs %q, want %q", f.Programs, tc.programs)
			}
		})
	}
}
