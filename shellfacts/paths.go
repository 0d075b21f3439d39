package shellfacts

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"mvdan.cc/sh/v3/pattern"
)

// Glob limits: a pattern that matches more files, or needs more
// directories read, is reported as one path the guard could not resolve.
const (
	maxGlobMatches = 1024
	maxGlobReads   = 256
)

// PathFact is one file or directory a command or a redirection names.
type PathFact struct {
	// Arg is the word that names the path as the command gets it: an
	// argument, the value of --opt=VALUE or -oVALUE, a redirect target,
	// or the glob pattern Resolved matched.
	Arg string `json:"arg"`
	// Resolved is the absolute path, cleaned, with symbolic links
	// followed where the file exists (through the working directory the
	// facts track after cd). "" when it cannot be known: the working
	// directory is unknown, ~user, a glob the guard could not expand.
	Resolved string `json:"resolved"`
	// Inside is true when Resolved is Options.Workdir or below it (both
	// with links followed). False when Resolved is "".
	Inside bool `json:"inside"`
	// Exists is true when the file exists on this machine.
	Exists bool `json:"exists"`
	// Links is the number of hard links of a regular file (0 for
	// anything else): a file with more than one may be another name for
	// a file the policy would recognise by name.
	Links int `json:"links"`
	// Glob is true when Resolved is a match of the glob pattern Arg.
	Glob bool `json:"glob"`
	// Below is true for an entry found under a directory that a recursive
	// reader (grep -r, rg, diff -r) walks: a hidden entry, a key-like
	// name, a link it follows or a hard-linked file. Arg is then the
	// directory's word joined with the entry's relative path.
	Below bool `json:"below"`
}

// harmlessDevices are read as themselves, not through /proc/self.
var harmlessDevices = map[string]bool{
	"/dev/null": true, "/dev/zero": true, "/dev/full": true,
	"/dev/random": true, "/dev/urandom": true, "/dev/stdin": true,
	"/dev/stdout": true, "/dev/stderr": true, "/dev/tty": true,
	"/dev/fd/0": true, "/dev/fd/1": true, "/dev/fd/2": true,
}

// evalSymlinks is filepath.EvalSymlinks, memoised for the analysis. The
// file system is read once per path, as at one moment; the command runs
// later anyway, which the guard's documentation states.
func (a *analyzer) evalSymlinks(p string) (string, error) {
	return a.fs.evalSymlinks(p)
}

// physical returns p with symbolic links followed, or p cleaned when it
// does not resolve.
func (a *analyzer) physical(p string) string {
	if real, err := a.evalSymlinks(p); err == nil {
		return real
	}
	return filepath.Clean(p)
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	if p == "" || dir == "" {
		return false
	}
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// rawPath makes p absolute without cleaning it, so that ".." after a
// symbolic link is resolved the way the kernel does. It returns "" when
// the base is unknown.
func (a *analyzer) rawPath(p string, tilde bool) string {
	switch {
	case tilde && (p == "~" || strings.HasPrefix(p, "~/")):
		if a.opts.Home == "" {
			return ""
		}
		return a.opts.Home + p[1:]
	case tilde && strings.HasPrefix(p, "~"):
		return "" // another user's home
	case filepath.IsAbs(p):
		return p
	case !a.cwdOK:
		return ""
	}
	base := a.cwd
	if !a.opts.Remote {
		base = a.physical(base)
	}
	return strings.TrimSuffix(base, "/") + "/" + p
}

// pathFact resolves one path named by arg.
func (a *analyzer) pathFact(arg string, tilde bool) PathFact {
	pf := PathFact{Arg: arg}
	raw := a.rawPath(arg, tilde)
	if raw == "" {
		return pf
	}
	if a.opts.Remote {
		pf.Resolved = filepath.Clean(raw)
		pf.Inside = within(pf.Resolved, a.workdir)
		return pf
	}
	if clean := filepath.Clean(raw); harmlessDevices[clean] {
		pf.Resolved, pf.Exists = clean, true
		return pf
	}
	pf.Resolved = a.resolveFile(raw)
	pf.Inside = within(pf.Resolved, a.workdir)
	if st, err := a.fs.stat(pf.Resolved); err == nil {
		pf.Exists = true
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && st.Mode().IsRegular() {
			pf.Links = int(sys.Nlink)
		}
	}
	return pf
}

// resolveFile follows the links in raw. A file that does not exist is
// resolved through its directory. A dangling link is followed to the file
// it names: opening it to write creates that file (with notes ->
// .bashrc, echo x >> notes writes .bashrc), so it is judged as that file.
func (a *analyzer) resolveFile(raw string) string {
	for hops := 0; ; hops++ {
		if real, err := a.evalSymlinks(raw); err == nil {
			return real
		}
		i := strings.LastIndex(raw, "/")
		last := raw[i+1:]
		if i <= 0 || last == "" || last == "." || last == ".." {
			return filepath.Clean(raw)
		}
		dir, err := a.evalSymlinks(raw[:i])
		if err != nil {
			return filepath.Clean(raw)
		}
		p := filepath.Join(dir, last)
		e := a.fs.lstat(p)
		if hops >= maxLinksFollowed || e.err != nil || e.info.Mode()&os.ModeSymlink == 0 {
			return p
		}
		target, err := a.fs.readlink(p, e)
		if err != nil || strings.HasSuffix(target, "/") {
			// A target ending in a slash opens only as a directory,
			// and a directory that does not exist is not created.
			return p
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(dir, target)
		}
		raw = target
	}
}

// looksLikePath reports whether a word names a file: it holds a slash,
// starts with "." or "~", or names something in the working directory.
func (a *analyzer) looksLikePath(s string) bool {
	switch {
	case s == "":
		return false
	case strings.Contains(s, "/"), strings.HasPrefix(s, "."),
		strings.HasPrefix(s, "~"):
		return true
	case !a.cwdOK || a.opts.Remote:
		return false
	}
	return a.fs.lstat(filepath.Join(a.physical(a.cwd), s)).err == nil
}

// argPaths returns the path facts of a command's arguments (argv[1:]).
func (a *analyzer) argPaths(base string, args []arg) []PathFact {
	out := []PathFact{}
	skip := grepPattern(base, args)
	for i, x := range args {
		if x.dyn || i == skip {
			continue
		}
		out = append(out, a.wordPaths(base, x)...)
	}
	return out
}

// wordPaths returns the facts for one static word: the word itself, the
// value of an option written with it, and the matches of a glob.
func (a *analyzer) wordPaths(base string, x arg) []PathFact {
	tilde, glob := false, false
	for _, f := range x.flags {
		tilde = tilde || f == flagTilde
		glob = glob || f == flagGlob
	}
	var words []string
	v := x.val
	switch {
	case strings.HasPrefix(v, "--"):
		if _, val, ok := strings.Cut(v, "="); ok && val != "/" {
			words = append(words, val)
		}
	case strings.HasPrefix(v, "-") && len(v) > 2:
		// -fFILE, -F/etc/hostname: the value attached to a short option.
		// In a cluster (-uf/etc/x, -hf.netrc) the value starts after
		// the first letter that takes one. The tail after each option
		// letter counts when it looks like a path, up to that letter
		// where the guard knows the program's options, to the end where
		// it does not.
		values, known := clusterValueShorts[base]
		for k := 2; k < len(v) && optionLetter(v[k-1]); k++ {
			if val := v[k:]; val != "/" && (strings.Contains(val, "/") ||
				strings.HasPrefix(val, ".") || strings.HasPrefix(val, "~")) {
				words = append(words, val)
			}
			if known && strings.IndexByte(values, v[k-1]) >= 0 {
				break
			}
		}
	case !a.cwdOK && !a.opts.Remote && v != "" && v != "-":
		// Where the working directory is unknown, any operand may be a
		// file there.
		words = append(words, v)
	case a.looksLikePath(v):
		words = append(words, v)
	}
	// Many programs read the file an @FILE word names: curl -d @FILE,
	// --data=@FILE, the response files of binutils (strings @FILE) and
	// compilers. The text after the first @ counts when it looks like a
	// path.
	if i := strings.IndexByte(v, '@'); i >= 0 && i+1 < len(v) {
		if tail := v[i+1:]; tail != "/" && a.looksLikePath(tail) {
			words = append(words, tail)
		}
	}
	var out []PathFact
	for _, w := range words {
		if glob && !a.opts.Remote {
			out = append(out, a.globPaths(w, tilde)...)
		}
		out = append(out, a.pathFact(w, tilde))
	}
	if glob && len(words) == 0 && v != "" && !a.opts.Remote {
		out = append(out, a.globPaths(v, tilde)...)
	}
	return out
}

// optionLetter reports whether c can be a short option's letter.
func optionLetter(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// globPaths expands pat as bash would (no dotglob, no globstar) against
// the working directory, and returns a fact for every match. A pattern
// the guard cannot expand, or one that matches too much, gives a single
// fact with Resolved "".
func (a *analyzer) globPaths(pat string, tilde bool) []PathFact {
	raw := a.rawPath(pat, tilde)
	if raw == "" {
		return []PathFact{{Arg: pat, Glob: true}}
	}
	matches, ok := a.globFiles(raw)
	if !ok {
		return []PathFact{{Arg: pat, Glob: true}}
	}
	out := make([]PathFact, 0, len(matches))
	for _, m := range matches {
		pf := a.pathFact(m, false)
		pf.Arg, pf.Glob = pat, true
		out = append(out, pf)
	}
	return out
}

// globFiles returns the files an absolute pattern matches, and false when
// it could not be expanded within the limits.
func (a *analyzer) globFiles(abs string) ([]string, bool) {
	parts := strings.Split(abs, "/")[1:]
	matches := []string{"/"}
	reads := 0
	for i, part := range parts {
		last := i == len(parts)-1
		if part == "" || part == "." || part == ".." ||
			!pattern.HasMeta(part, 0) {
			for j, m := range matches {
				matches[j] = filepath.Join(m, part)
			}
			if part == "" || part == "." || part == ".." {
				continue
			}
			matches = a.existing(matches, !last)
			continue
		}
		match, ok := componentMatcher(part)
		if !ok {
			return nil, false
		}
		var next []string
		for _, dir := range matches {
			reads++
			if reads > maxGlobReads {
				return nil, false
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				continue
			}
			for _, e := range entries {
				if match(e.Name()) {
					next = append(next, filepath.Join(dir, e.Name()))
				}
			}
			if len(next) > maxGlobMatches {
				return nil, false
			}
		}
		matches = next
		if !last {
			matches = a.existing(matches, true)
		}
	}
	return matches, true
}

// existing keeps the paths that exist (as directories when dirs is set).
func (a *analyzer) existing(paths []string, dirs bool) []string {
	out := paths[:0]
	for _, p := range paths {
		st, err := a.fs.stat(p)
		if err == nil && (!dirs || st.IsDir()) {
			out = append(out, p)
		}
	}
	return out
}

// componentMatcher returns a matcher for one path component of a glob.
// A leading dot must be matched literally, as bash does without dotglob.
// An extended glob with !(..) matches every name, which errs large.
func componentMatcher(part string) (func(string) bool, bool) {
	mode := pattern.Filenames | pattern.EntireString | pattern.NoGlobStar |
		pattern.ExtendedOperators
	expr, err := pattern.Regexp(part, mode)
	var neg *pattern.NegExtGlobError
	switch {
	case errors.As(err, &neg):
		return func(string) bool { return true }, true
	case err != nil:
		return nil, false
	}
	rx, err := regexp.Compile(expr)
	if err != nil {
		return nil, false
	}
	return rx.MatchString, true
}

// grepValueShorts and grepValueLongs are the options of grep and rg that
// surely take the next word as their value. Missing one errs towards
// more path facts, never fewer.
var (
	grepValueShorts = map[string]string{
		"grep": "efmABCdD", "egrep": "efmABCdD", "fgrep": "efmABCdD",
		"rg": "efmABCEgjMrTtd",
	}
	grepValueLongs = []string{"--regexp", "--file", "--max-count",
		"--after-context", "--before-context", "--context", "--include",
		"--exclude", "--exclude-dir", "--exclude-from", "--label",
		"--glob", "--iglob", "--type", "--type-not", "--max-depth",
		"--replace", "--encoding"}
)

// clusterValueShorts are, for some programs, the short options that take a
// value, which may be attached to a cluster (-uf FILE as -ufFILE). Missing
// one errs towards more path facts, never fewer.
var clusterValueShorts = map[string]string{
	"grep": grepValueShorts["grep"], "egrep": grepValueShorts["egrep"],
	"fgrep": grepValueShorts["fgrep"], "rg": grepValueShorts["rg"],
	"date": "dfrsI", "file": "efFmP", "sort": "kotST", "head": "cn",
	"tail": "cnFs", "cut": "bcdf", "ls": "ITw",
}

// grepPattern returns the index in args of the pattern operand of grep,
// egrep, fgrep or rg, which is text to search for rather than a file, or
// -1 when there is none (patterns from -e or -f).
func grepPattern(base string, args []arg) int {
	shorts, ok := grepValueShorts[base]
	if !ok {
		return -1
	}
	for _, x := range args {
		if x.dyn {
			return -1
		}
		name, _, _ := strings.Cut(x.val, "=")
		if strings.HasPrefix(name, "--") && len(name) >= 3 &&
			(strings.HasPrefix("--regexp", name) || strings.HasPrefix("--file", name)) {
			return -1
		}
		if len(x.val) > 1 && x.val[0] == '-' && x.val[1] != '-' &&
			strings.ContainsAny(x.val[1:], "ef") {
			return -1
		}
	}
	for i := 0; i < len(args); i++ {
		v := args[i].val
		switch {
		case v == "--":
			if i+1 < len(args) {
				return i + 1
			}
			return -1
		case strings.HasPrefix(v, "--"):
			if !strings.Contains(v, "=") && longTakesValue(v) {
				i++
			}
		case strings.HasPrefix(v, "-") && len(v) > 1:
			if shortTakesNext(v[1:], shorts) {
				i++
			}
		default:
			return i
		}
	}
	return -1
}

// longTakesValue reports whether --name is exactly one of grepValueLongs.
// Abbreviations are not followed: not consuming a value errs towards more
// path facts.
func longTakesValue(name string) bool {
	for _, l := range grepValueLongs {
		if l == name {
			return true
		}
	}
	return false
}

// shortTakesNext reports whether the cluster's first value-taking option
// is its last letter, so that its value is the next word.
func shortTakesNext(cluster, shorts string) bool {
	i := strings.IndexAny(cluster, shorts)
	return i >= 0 && i == len(cluster)-1
}

// maxWalkEntries bounds the walk below the directories of a recursive
// reader; a larger tree gives one fact with Resolved "".
const maxWalkEntries = 20_000

// keyLikeRe matches file names that hold keys without a leading dot.
var keyLikeRe = regexp.MustCompile(`(^id_|\.(pem|key|p12|pfx|jks|keystore|kdbx)$|` +
	`^authorized_keys2?$|^credentials$)`)

// recursiveRead reports whether a command reads the contents of every
// file below its directory operands (grep -r, rg, diff -r, git grep),
// whether it
// reads hidden files, and whether it follows links met on the way.
func recursiveRead(base string, args []arg) (rec, hidden, follow bool) {
	values := grepValueShorts[base]
	if base == "diff" {
		values = "CDFILSUWXx"
	}
	// cluster reports whether a short option cluster holds one of
	// letters before any letter whose value takes the rest of the word.
	cluster := func(v, letters string) bool {
		if len(v) < 2 || v[0] != '-' || v[1] == '-' {
			return false
		}
		for _, ch := range v[1:] {
			switch {
			case strings.ContainsRune(letters, ch):
				return true
			case strings.ContainsRune(values, ch):
				return false
			}
		}
		return false
	}
	for i, x := range args {
		if x.dyn {
			continue
		}
		v := x.val
		switch base {
		case "grep", "egrep", "fgrep":
			hidden = true
			switch {
			case v == "--dereference-recursive" || cluster(v, "R"):
				rec, follow = true, true
			case v == "--recursive" || cluster(v, "r"),
				v == "--directories=recurse", v == "-drecurse",
				v == "-d" && i+1 < len(args) && args[i+1].val == "recurse":
				rec = true
			}
		case "rg":
			rec = true
			switch {
			case v == "--hidden" || v == "-." || cluster(v, "u") &&
				strings.Count(v, "u") >= 2 || v == "-u" && i > 0 && args[i-1].val == "-u",
				cluster(v, "."):
				hidden = true
			case v == "--follow" || cluster(v, "L"):
				follow = true
			}
		case "diff":
			hidden = true
			if v == "--recursive" || cluster(v, "r") {
				rec = true
			}
		case "git":
			// git grep reads every tracked file below its pathspecs (and,
			// with --no-index or --untracked, the others too); git diff
			// --no-index compares two trees of plain files; git show, git
			// diff, and git log or whatchanged with a patch print the
			// contents of tracked files, as they are or as they were,
			// named by no argument. Dot files are read like any other.
			if i == 0 && gitReadsTree(args) {
				rec, hidden = true, true
			}
		}
	}
	return rec, hidden, follow
}

// gitReadsTree reports whether git, run with args (its subcommand first),
// prints the contents of files no argument names: grep and show do, diff
// does unless only statistics or names are asked for, log, whatchanged and
// reflog do with a patch.
func gitReadsTree(args []arg) bool {
	if len(args) == 0 || args[0].dyn {
		return false
	}
	patch, summary := false, false
	for _, x := range args[1:] {
		v := x.val
		switch {
		case x.dyn:
			patch = true // unknown: count it as asking for contents
		case v == "-p", v == "-u", v == "--cc", v == "-c", v == "-m", v == "-W",
			v == "--binary", v == "--function-context", v == "--text", v == "-a",
			strings.HasPrefix(v, "-U"), strings.HasPrefix(v, "--unified"),
			strings.HasPrefix(v, "--patch"), strings.HasPrefix(v, "--word-diff"),
			strings.HasPrefix(v, "--color-words"), strings.HasPrefix(v, "--diff-merges"),
			strings.HasPrefix(v, "-G"), strings.HasPrefix(v, "-S"), strings.HasPrefix(v, "-L"):
			patch = true
		case v == "-s", v == "--no-patch", v == "--name-only", v == "--name-status",
			v == "--summary", strings.HasPrefix(v, "--stat"), v == "--numstat",
			v == "--shortstat", strings.HasPrefix(v, "--dirstat"), v == "--quiet":
			summary = true
		case len(v) > 1 && v[0] == '-' && v[1] != '-' && strings.ContainsAny(v[1:], "puUW"):
			patch = true // a cluster such as -1p
		}
	}
	switch args[0].val {
	case "grep", "show":
		// git show prints a blob named by its id whatever options ask
		// for, and nothing tells a blob's id from a commit's.
		return true
	case "diff":
		return patch || !summary
	case "log", "whatchanged", "reflog":
		return patch
	}
	return false
}

// walkPaths returns facts for what a recursive reader reaches below the
// directories among paths (the working directory when there are none)
// that a name or a link count could give away: hidden entries, key-like
// names, symbolic links it follows, and hard-linked files.
func (a *analyzer) walkPaths(base string, args []arg, paths []PathFact) []PathFact {
	rec, hidden, follow := recursiveRead(base, args)
	if !rec || a.opts.Remote {
		return nil
	}
	var roots []PathFact
	for _, p := range paths {
		if p.Resolved == "" {
			continue
		}
		if st, err := a.fs.stat(p.Resolved); err == nil && st.IsDir() {
			roots = append(roots, p)
		}
	}
	if len(roots) == 0 && a.cwdOK {
		roots = append(roots, a.pathFact(".", false))
	}
	// git reads the whole repository whatever directory it runs in (git
	// show in a subdirectory prints a commit's every file), except with
	// --no-index, which reads the paths it is given.
	if base == "git" && a.cwdOK && !slices.ContainsFunc(args, func(x arg) bool {
		return x.val == "--no-index"
	}) {
		if top := a.gitTop(); top != "" {
			roots = []PathFact{a.pathFact(top, false)}
		}
	}
	var out []PathFact
	for _, root := range roots {
		out = append(out, a.walk(root, hidden, follow)...)
	}
	return out
}

// gitTop returns the top of the git work tree holding the working
// directory (the nearest directory with a .git entry), or "".
func (a *analyzer) gitTop() string {
	dir := a.physical(a.cwd)
	for {
		if a.fs.lstat(filepath.Join(dir, ".git")).err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// walk lists the notable entries below one directory.
func (a *analyzer) walk(root PathFact, hidden, follow bool) []PathFact {
	var out []PathFact
	seen := 0
	err := filepath.WalkDir(root.Resolved, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == root.Resolved {
			return nil
		}
		if seen++; seen > maxWalkEntries {
			return filepath.SkipAll
		}
		name := d.Name()
		dot := strings.HasPrefix(name, ".")
		switch {
		case d.IsDir() && name == ".git":
			return filepath.SkipDir
		case dot && !hidden:
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		notable := dot || keyLikeRe.MatchString(name)
		switch {
		case d.Type()&os.ModeSymlink != 0:
			notable = notable || follow
		case d.Type().IsRegular():
			if info, err := d.Info(); err == nil {
				a.fs.remember(p, info) // the fact below asks again
				if sys, ok := info.Sys().(*syscall.Stat_t); ok && sys.Nlink > 1 {
					notable = true
				}
			}
		}
		if notable {
			pf := a.pathFact(p, false)
			rel, _ := filepath.Rel(root.Resolved, p)
			pf.Arg, pf.Below = filepath.Join(root.Arg, rel), true
			out = append(out, pf)
		}
		return nil
	})
	if err != nil || seen > maxWalkEntries {
		return append(out, PathFact{Arg: root.Arg, Below: true})
	}
	return out
}
