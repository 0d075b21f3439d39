package shellfacts

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// maxLinksFollowed is how many symbolic links one path may go through
// before its resolution fails, as in filepath.EvalSymlinks.
const maxLinksFollowed = 255

var errTooManyLinks = errors.New("shellfacts: too many links")

// fsView is what one analysis has learnt of the file system: every lstat,
// link target and stat it made, so that a command line naming the same
// directories again (the working directory's ancestors, PATH entries, a
// file both resolved and checked for existence) asks the kernel once. It
// lives for one Analyze call and is never shared: a file may change
// between calls, and each call reads the file system as at one moment.
type fsView struct {
	entries map[string]*fsEntry
	// real memoises whole resolutions (see analyzer.evalSymlinks).
	real map[string]realPath
}

// fsEntry is what is known of one path, looked up without following a
// link in its last component.
type fsEntry struct {
	info fs.FileInfo // from lstat; nil when err is set
	err  error

	// For a symbolic link: its target, and what stat (which follows
	// it) said, each read at most once.
	target     string
	targetErr  error
	targetRead bool
	stat       fs.FileInfo
	statErr    error
	statDone   bool
}

// realPath is one memoised resolution of a path's links.
type realPath struct {
	path string
	err  error
}

func newFSView() *fsView {
	return &fsView{entries: map[string]*fsEntry{}, real: map[string]realPath{}}
}

// lstat returns what os.Lstat says of p, asking once per analysis.
func (v *fsView) lstat(p string) *fsEntry {
	if e, ok := v.entries[p]; ok {
		return e
	}
	info, err := os.Lstat(p)
	e := &fsEntry{info: info, err: err}
	v.entries[p] = e
	return e
}

// remember records an lstat result obtained elsewhere (a directory walk
// reads it for every entry), unless p was already looked up.
func (v *fsView) remember(p string, info fs.FileInfo) {
	if _, ok := v.entries[p]; !ok {
		v.entries[p] = &fsEntry{info: info}
	}
}

// stat returns what os.Stat says of p. When p is not a symbolic link,
// stat and lstat agree (both follow the links of the directories above
// it), so the lstat answer serves; only a link is stat'ed on its own.
func (v *fsView) stat(p string) (fs.FileInfo, error) {
	e := v.lstat(p)
	switch {
	case e.err != nil:
		return nil, e.err
	case e.info.Mode()&fs.ModeSymlink == 0:
		return e.info, nil
	}
	if !e.statDone {
		e.stat, e.statErr = os.Stat(p)
		e.statDone = true
	}
	return e.stat, e.statErr
}

// readlink returns the target of the link at p, read once.
func (v *fsView) readlink(p string, e *fsEntry) (string, error) {
	if !e.targetRead {
		e.target, e.targetErr = os.Readlink(p)
		e.targetRead = true
	}
	return e.target, e.targetErr
}

// evalSymlinks returns p with every symbolic link followed, as
// filepath.EvalSymlinks does, memoised for the analysis.
func (v *fsView) evalSymlinks(p string) (string, error) {
	if r, ok := v.real[p]; ok {
		return r.path, r.err
	}
	var r realPath
	if filepath.IsAbs(p) {
		r.path, r.err = v.followLinks(p)
	} else {
		r.path, r.err = filepath.EvalSymlinks(p)
	}
	v.real[p] = r
	return r.path, r.err
}

// followLinks resolves an absolute path one component at a time, through
// the lstat memo, with the results of filepath.EvalSymlinks: ".." goes to
// the parent of what the path resolved to so far (after a link, the
// link's target's parent, as the kernel does); a component that is not a
// directory ends the resolution when anything, even a slash, follows it;
// a missing component is an error; more than maxLinksFollowed links is an
// error.
func (v *fsView) followLinks(p string) (string, error) {
	dest := "/" // resolved so far: clean, absolute, free of links
	rest := p   // still to resolve
	links := 0
	for {
		rest = strings.TrimLeft(rest, "/")
		if rest == "" {
			return dest, nil
		}
		name := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			name = rest[:i]
		}
		rest = rest[len(name):]
		switch name {
		case ".":
			continue
		case "..":
			dest = parentDir(dest)
			continue
		}
		next := joinName(dest, name)
		e := v.lstat(next)
		if e.err != nil {
			return "", e.err
		}
		if e.info.Mode()&fs.ModeSymlink == 0 {
			if !e.info.IsDir() && rest != "" {
				return "", syscall.ENOTDIR
			}
			dest = next
			continue
		}
		if links++; links > maxLinksFollowed {
			return "", errTooManyLinks
		}
		target, err := v.readlink(next, e)
		if err != nil {
			return "", err
		}
		// The target replaces the link: an absolute one starts again
		// from the root, a relative one from the link's directory.
		if strings.HasPrefix(target, "/") {
			dest = "/"
		}
		rest = target + rest
	}
}

// parentDir returns the directory holding dir, a clean absolute path;
// the root's parent is the root.
func parentDir(dir string) string {
	i := strings.LastIndexByte(dir, '/')
	if i <= 0 {
		return "/"
	}
	return dir[:i]
}

// joinName appends one component to a clean absolute directory.
func joinName(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}
