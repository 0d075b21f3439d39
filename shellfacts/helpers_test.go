package shellfacts

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// fixture is a target with a real PATH directory of small programs, some
// of them links to others, a working directory and a home.
type fixture struct {
	bin, work, home string
}

func (fx fixture) opts() Options {
	return Options{Path: []string{fx.bin}, Workdir: fx.work, Home: fx.home}
}

// programs written into the fixture's bin as executable files.
var fixturePrograms = []string{
	"rm", "sudo", "cat", "ls", "lsof", "git", "grep", "find", "dash", "bash",
	"env", "xargs", "timeout", "busybox", "curl", "wget", "python3.11",
	"base64", "head", "make", "psql", "less", "sed", "awk", "nohup", "id",
	"touch", "tee", "nice", "su", "ssh", "watch", "flock", "perl", "chroot",
	"echo", "true",
}

// fixtureLinks are name -> target links in bin.
var fixtureLinks = map[string]string{
	"sh": "dash", "sudoedit": "sudo", "python3": "python3.11",
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	root := t.TempDir()
	fx := fixture{
		bin:  filepath.Join(root, "bin"),
		work: filepath.Join(root, "work"),
		home: filepath.Join(root, "home"),
	}
	for _, d := range []string{fx.bin, fx.work, fx.home} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range fixturePrograms {
		err := os.WriteFile(filepath.Join(fx.bin, p), []byte("#!/bin/sh\n"), 0o755)
		if err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range fixtureLinks {
		if err := os.Symlink(target, filepath.Join(fx.bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	// A file that is not executable must not resolve.
	if err := os.WriteFile(filepath.Join(fx.bin, "notes"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return fx
}

// bases returns the base names of the commands, in order.
func bases(f *Facts) []string {
	out := []string{}
	for _, c := range f.Commands {
		if c.Base == "" {
			out = append(out, c.Name)
			continue
		}
		out = append(out, c.Base)
	}
	return out
}

// command returns the n-th command (0-based) whose Base or Name is name.
func command(t *testing.T, f *Facts, name string) Command {
	t.Helper()
	for _, c := range f.Commands {
		if c.Base == name || c.Name == name {
			return c
		}
	}
	t.Fatalf("no command %q in %v", name, bases(f))
	return Command{}
}

func wantBases(t *testing.T, f *Facts, want ...string) {
	t.Helper()
	if got := bases(f); !slices.Equal(got, want) {
		t.Errorf("commands = %q, want %q", got, want)
	}
}

func wantArgs(t *testing.T, c Command, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(c.Args, want) {
		t.Errorf("%s args = %q, want %q", c.Name, c.Args, want)
	}
}

func wantReason(t *testing.T, f *Facts, reason string) {
	t.Helper()
	if !f.Dynamic || !slices.Contains(f.DynamicReasons, reason) {
		t.Errorf("dynamic = %v %q, want reason %q", f.Dynamic, f.DynamicReasons, reason)
	}
}

func wantStatic(t *testing.T, f *Facts) {
	t.Helper()
	if f.Dynamic {
		t.Errorf("dynamic with %q, want static", f.DynamicReasons)
	}
}

func wantOpaque(t *testing.T, c Command, wrapper, flag string) {
	t.Helper()
	if !c.Opaque || c.Wrapper != wrapper || !slices.Contains(c.Flags, flag) {
		t.Errorf("%s: opaque=%v wrapper=%q flags=%q, want opaque %q with %q",
			c.Name, c.Opaque, c.Wrapper, c.Flags, wrapper, flag)
	}
}

func wantVia(t *testing.T, c Command, via string) {
	t.Helper()
	if c.Via != via {
		t.Errorf("%s via = %q, want %q", c.Name, c.Via, via)
	}
}

// sameRedirect compares two redirects, leaving out their path facts.
func sameRedirect(got, want Redirect) bool {
	got.Paths, want.Paths = nil, nil
	return reflect.DeepEqual(got, want)
}
