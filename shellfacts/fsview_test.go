package shellfacts

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// linkTree builds, below a temporary root, a working directory reached
// through a linked ancestor (alias -> real) and links of every kind:
// chains, links to links, links to directories, relative and absolute,
// dangling, looping, leading out of the tree. It returns the root.
func linkTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	work := filepath.Join(root, "real", "work")
	for _, d := range []string{"d/inner", "bin"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "outside"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]os.FileMode{
		"real/work/a.txt": 0o644, "real/work/d/inner/f": 0o644,
		"outside/s.txt": 0o644, "bin/cat": 0o755, "bin/plain": 0o644,
	}
	for p, mode := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte("x\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	links := [][2]string{ // link, target
		{"alias", "real"},
		{"alias2", "alias"},
		{"binlink", "bin"},
		{"bin/kat", "cat"},
		{"bin/kat2", "kat"},
		{"bin/gone", "/nonexistent/prog"},
		{"real/work/chain1", "chain2"},
		{"real/work/chain2", "a.txt"},
		{"real/work/dl", "d/inner"},
		{"real/work/dl2", "dl"},
		{"real/work/dangling", "nothing-here"},
		{"real/work/dchain", "dangling"},
		{"real/work/outnew", "../../outside/new.txt"},
		{"real/work/loop", "loop"},
		{"real/work/ping", "pong"},
		{"real/work/pong", "ping"},
		{"real/work/up", "../../outside"},
		{"real/work/abs", filepath.Join(root, "outside", "s.txt")},
		{"real/work/fileslash", "a.txt/"},
		{"real/work/top", "/"},
		{"real/work/dots", "./d/../d/inner/./f"},
	}
	for _, l := range links {
		if err := os.Symlink(l[1], filepath.Join(root, l[0])); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestLinkResolution checks the path and program facts through links:
// the resolved path, whether it is inside the working directory, whether
// it exists, and the program's resolution.
func TestLinkResolution(t *testing.T) {
	root := linkTree(t)
	work := filepath.Join(root, "real", "work")
	opts := Options{Path: []string{filepath.Join(root, "binlink")},
		Workdir: filepath.Join(root, "alias2", "work"), Home: work}
	at := func(p string) string { return filepath.Join(work, p) }
	secret := filepath.Join(root, "outside/s.txt")
	cases := []struct {
		name, cmd string
		want      PathFact
	}{
		{"link in the working directory's ancestry", "cat a.txt",
			PathFact{Arg: "a.txt", Resolved: at("a.txt"), Inside: true, Exists: true, Links: 1}},
		{"chain of links", "cat chain1",
			PathFact{Arg: "chain1", Resolved: at("a.txt"), Inside: true, Exists: true, Links: 1}},
		{"link to a link to a directory", "cat dl2/f",
			PathFact{Arg: "dl2/f", Resolved: at("d/inner/f"), Inside: true, Exists: true, Links: 1}},
		{"dot dot after a link leaves its target", "cat dl/../inner/f",
			PathFact{Arg: "dl/../inner/f", Resolved: at("d/inner/f"), Inside: true,
				Exists: true, Links: 1}},
		{"link with dots in its target", "cat dots",
			PathFact{Arg: "dots", Resolved: at("d/inner/f"), Inside: true, Exists: true, Links: 1}},
		{"dangling link: judged as the file a write would create", "cat dangling",
			PathFact{Arg: "dangling", Resolved: at("nothing-here"), Inside: true}},
		{"a chain ending in a dangling link", "cat dchain",
			PathFact{Arg: "dchain", Resolved: at("nothing-here"), Inside: true}},
		{"a dangling link out of the tree", "cat outnew",
			PathFact{Arg: "outnew", Resolved: filepath.Join(root, "outside", "new.txt")}},
		{"below a dangling link", "cat dangling/x",
			PathFact{Arg: "dangling/x", Resolved: at("dangling/x"), Inside: true}},
		{"link to itself", "cat loop",
			PathFact{Arg: "loop", Resolved: at("loop"), Inside: true}},
		{"two links in a loop", "cat ping/x",
			PathFact{Arg: "ping/x", Resolved: at("ping/x"), Inside: true}},
		{"link out of the tree", "cat up/s.txt",
			PathFact{Arg: "up/s.txt", Resolved: secret, Exists: true, Links: 1}},
		{"absolute link", "cat abs",
			PathFact{Arg: "abs", Resolved: secret, Exists: true, Links: 1}},
		{"link to the root then up", "cat top/../" + secret[1:],
			PathFact{Arg: "top/../" + secret[1:], Resolved: secret, Exists: true, Links: 1}},
		{"a file named as a directory through a link", "cat fileslash",
			PathFact{Arg: "fileslash", Resolved: at("fileslash"), Inside: true}},
		{"dot dot after a file", "cat a.txt/..",
			PathFact{Arg: "a.txt/..", Resolved: work, Inside: true, Exists: true}},
		{"cd through the linked ancestor", "cd ../../alias/work/d && cat ../a.txt",
			PathFact{Arg: "../a.txt", Resolved: at("a.txt"), Inside: true, Exists: true, Links: 1}},
		{"cd into a link to a directory", "cd dl && cat ../inner/f",
			PathFact{Arg: "../inner/f", Resolved: at("d/inner/f"), Inside: true,
				Exists: true, Links: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Analyze(tc.cmd, opts)
			if err != nil {
				t.Fatal(err)
			}
			got := command(t, f, "cat").Paths
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("paths =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// TestProgramResolutionThroughLinks checks resolved, resolved_base and
// in_path for programs found through a linked PATH entry and chains of
// links.
func TestProgramResolutionThroughLinks(t *testing.T) {
	root := linkTree(t)
	bin := filepath.Join(root, "bin")
	cases := []struct {
		name, cmd         string
		resolved, resBase string
		inPath            bool
	}{
		{"through a linked PATH entry", "cat x", filepath.Join(bin, "cat"), "cat", true},
		{"link to a program", "kat x", filepath.Join(bin, "cat"), "cat", true},
		{"link to a link", "kat2 x", filepath.Join(bin, "cat"), "cat", true},
		{"dangling link is no program", "gone x", "", "", false},
		{"a file without execute bits", "plain x", "", "", false},
		{"absolute name through a linked directory", filepath.Join(root, "binlink", "kat2") + " x",
			filepath.Join(bin, "cat"), "cat", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Path: []string{filepath.Join(root, "binlink")},
				Workdir: filepath.Join(root, "alias", "work")}
			f, err := Analyze(tc.cmd, opts)
			if err != nil {
				t.Fatal(err)
			}
			c := f.Commands[0]
			if c.Resolved != tc.resolved || c.ResolvedBase != tc.resBase || c.InPath != tc.inPath {
				t.Errorf("resolved %q base %q in_path %v, want %q %q %v",
					c.Resolved, c.ResolvedBase, c.InPath, tc.resolved, tc.resBase, tc.inPath)
			}
		})
	}
}

// TestFSViewAgreesWithTheOS resolves every path made of up to three
// components of the link tree (names, links, ".", ".." and empty ones)
// through one view, as an analysis does, and compares each answer with
// filepath.EvalSymlinks, os.Stat and os.Lstat.
func TestFSViewAgreesWithTheOS(t *testing.T) {
	root := linkTree(t)
	parts := []string{"", ".", "..", "real", "alias", "alias2", "work", "a.txt",
		"chain1", "dl", "dl2", "d", "inner", "f", "dangling", "loop", "ping",
		"up", "s.txt", "top", "fileslash", "dots", "abs", "nope"}
	v := newFSView()
	checked := 0
	var walk func(prefix string, depth int)
	walk = func(prefix string, depth int) {
		if depth == 0 {
			return
		}
		for _, p := range parts {
			path := prefix + "/" + p
			compareWithOS(t, v, path)
			checked++
			walk(path, depth-1)
		}
	}
	walk(root, 3)
	for _, p := range []string{"/", "/..", "/../..", "/.", root + "/", root + "//real///work/",
		root + "/real/work/a.txt/", root + "/real/work/a.txt/.", "/proc/self/cwd"} {
		compareWithOS(t, v, p)
		checked++
	}
	if checked < 10000 {
		t.Fatalf("only %d paths compared", checked)
	}
}

// compareWithOS fails unless the view answers for p as the OS does.
func compareWithOS(t *testing.T, v *fsView, p string) {
	t.Helper()
	want, werr := filepath.EvalSymlinks(p)
	got, gerr := v.evalSymlinks(p)
	if got != want || (gerr == nil) != (werr == nil) {
		t.Fatalf("evalSymlinks(%q) = %q, %v; filepath.EvalSymlinks gives %q, %v",
			p, got, gerr, want, werr)
	}
	if werr != nil && !errors.Is(gerr, syscall.ENOTDIR) && !errors.Is(gerr, fs.ErrNotExist) &&
		!errors.Is(gerr, errTooManyLinks) {
		t.Errorf("evalSymlinks(%q): unexpected error %v", p, gerr)
	}
	sameInfo := func(what string, got, want fs.FileInfo, gerr, werr error) {
		t.Helper()
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%s(%q): error %v, the OS says %v", what, p, gerr, werr)
		}
		if gerr != nil {
			return
		}
		gs, ws := got.Sys().(*syscall.Stat_t), want.Sys().(*syscall.Stat_t)
		if got.Mode() != want.Mode() || gs.Ino != ws.Ino || gs.Nlink != ws.Nlink {
			t.Fatalf("%s(%q) = %v ino %d, the OS says %v ino %d",
				what, p, got.Mode(), gs.Ino, want.Mode(), ws.Ino)
		}
	}
	st, serr := v.stat(p)
	wst, wserr := os.Stat(p)
	sameInfo("stat", st, wst, serr, wserr)
	e := v.lstat(p)
	wl, wlerr := os.Lstat(p)
	sameInfo("lstat", e.info, wl, e.err, wlerr)
}

// TestFSViewAsksOnce: a second analysis step over the same directories
// makes no new lookups, and a view is not shared between analyses.
func TestFSViewAsksOnce(t *testing.T) {
	root := linkTree(t)
	v := newFSView()
	if _, err := v.evalSymlinks(filepath.Join(root, "alias2/work/dl2/f")); err != nil {
		t.Fatal(err)
	}
	before := slices.Sorted(maps.Keys(v.entries))
	if _, err := v.stat(filepath.Join(root, "real/work/d/inner/f")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.evalSymlinks(filepath.Join(root, "alias/work/d")); err != nil {
		t.Fatal(err)
	}
	if after := slices.Sorted(maps.Keys(v.entries)); !slices.Equal(before, after) {
		t.Errorf("new lookups for paths already resolved:\n%q\nthen\n%q", before, after)
	}

	// A file that appears between two analyses is seen by the second.
	late := filepath.Join(root, "real/work/late.txt")
	opts := Options{Workdir: filepath.Join(root, "alias/work")}
	f, err := Analyze("cat ./late.txt", opts)
	if err != nil {
		t.Fatal(err)
	}
	if f.Commands[0].Paths[0].Exists {
		t.Fatal("a missing file exists")
	}
	if err := os.WriteFile(late, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if f, err = Analyze("cat ./late.txt", opts); err != nil {
		t.Fatal(err)
	}
	if !f.Commands[0].Paths[0].Exists {
		t.Error("a file created after an analysis is not seen by the next one")
	}
}
