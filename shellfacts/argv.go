package shellfacts

import (
	"path"
	"path/filepath"
	"strings"
)

// bashBuiltins are the names bash runs itself (bash 5.2, `enable -a`).
var bashBuiltins = map[string]bool{
	".": true, ":": true, "[": true, "alias": true, "bg": true, "bind": true,
	"break": true, "builtin": true, "caller": true, "cd": true,
	"command": true, "compgen": true, "complete": true, "compopt": true,
	"continue": true, "declare": true, "dirs": true, "disown": true,
	"echo": true, "enable": true, "eval": true, "exec": true, "exit": true,
	"export": true, "false": true, "fc": true, "fg": true, "getopts": true,
	"hash": true, "help": true, "history": true, "jobs": true, "kill": true,
	"let": true, "local": true, "logout": true, "mapfile": true,
	"popd": true, "printf": true, "pushd": true, "pwd": true, "read": true,
	"readarray": true, "readonly": true, "return": true, "set": true,
	"shift": true, "shopt": true, "source": true, "suspend": true,
	"test": true, "times": true, "trap": true, "true": true, "type": true,
	"typeset": true, "ulimit": true, "umask": true, "unalias": true,
	"unset": true, "wait": true,
}

// run records the command args and analyses what it runs.
func (a *analyzer) run(args []arg, cx ctx, env []string, redirected bool) error {
	c, err := a.newCommand(args, cx, env)
	if err != nil {
		return err
	}
	if args[0].dyn {
		return nil // nothing more can be known of a dynamic name
	}
	if c.Builtin {
		if h := builtinHandlers[c.Name]; h != nil {
			return h(a, c, args, cx, redirected)
		}
		return nil
	}
	if h := wrapperHandler(c.Base); h != nil {
		return h(a, c, args, cx)
	}
	return nil
}

// newCommand records a simple command.
func (a *analyzer) newCommand(args []arg, cx ctx, env []string) (*cmd, error) {
	if len(a.cmds) >= a.opts.MaxCommands {
		return nil, &LimitError{Limit: "commands", Max: a.opts.MaxCommands}
	}
	c := &cmd{direct: cx.direct, noFunc: cx.noFunc}
	a.cmds = append(a.cmds, c)
	c.Via = cx.via
	c.StdinFromPipe = cx.stdin == stdinPipe
	c.Env = env
	c.Args, c.Flags, c.DynamicReasons = []string{}, []string{}, []string{}
	c.Paths = []PathFact{}

	name := args[0]
	c.Name = name.val
	switch {
	case name.dyn:
		a.markDynamic(c, name.reasons...)
	case name.val != "":
		c.Base = path.Base(name.val)
	}
	if !name.dyn {
		if name.brace {
			a.markDynamic(c, reasonBraceName)
		}
		for _, f := range name.flags {
			if f == flagGlob {
				a.markDynamic(c, reasonGlobName)
			}
		}
	}
	if cx.extraArgs {
		a.markDynamic(c, reasonXargsInput)
	}
	for i, x := range args {
		if i > 0 {
			c.Args = append(c.Args, x.val)
			if x.dyn {
				a.markDynamic(c, x.reasons...)
			}
		}
		for _, f := range x.flags {
			c.flag(f)
		}
	}

	if !name.dyn {
		c.Paths = a.argPaths(c.Base, args[1:])
		c.Paths = append(c.Paths, a.walkPaths(c.Base, args[1:], c.Paths)...)
	}

	c.Builtin = cx.direct && bashBuiltins[c.Name]
	if !c.Builtin && !name.dyn && !name.brace && !cx.noResolve {
		a.resolve(c)
	}
	return c, nil
}

// resolve finds the file a program name runs, as bash's PATH search
// does, and follows symbolic links.
func (a *analyzer) resolve(c *cmd) {
	name := c.Name
	if name == "" || len(a.opts.Path) == 0 {
		return
	}
	found := ""
	// viaPath is set when found came from an absolute PATH entry: its
	// directory is then one of them by construction, and the lookups
	// inPathDir makes would only confirm it.
	viaPath := false
	if strings.Contains(name, "/") {
		if p := a.resolvePath(name, false); p != "" && a.isExecutable(p) {
			found = p
		}
	} else {
		for _, dir := range a.opts.Path {
			if dir == "" {
				dir = "."
			}
			abs := filepath.IsAbs(dir)
			if !abs {
				if !a.cwdOK {
					continue
				}
				dir = filepath.Join(a.cwd, dir)
			}
			if p := filepath.Join(dir, name); a.isExecutable(p) {
				found, viaPath = p, abs
				break
			}
		}
	}
	if found == "" {
		return
	}
	inPath := viaPath
	if !inPath {
		inPath = a.inPathDir(a.physical(filepath.Dir(found)))
	}
	if real, err := a.evalSymlinks(found); err == nil {
		found = real
	}
	c.Resolved, c.ResolvedBase = found, filepath.Base(found)
	c.InPath = inPath && !within(found, a.workdir)
}

// inPathDir reports whether dir (links followed) is one of the absolute
// directories of Options.Path. Relative entries (".", "") name the
// working directory, which is never a place for trusted programs.
func (a *analyzer) inPathDir(dir string) bool {
	for _, d := range a.opts.Path {
		if filepath.IsAbs(d) && a.physical(d) == dir {
			return true
		}
	}
	return false
}

// isExecutable reports whether p is a regular file (links followed) with
// an execute bit set.
func (a *analyzer) isExecutable(p string) bool {
	st, err := a.fs.stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// inner analyses the argv a wrapper runs. tail is set when inner is the
// end of the wrapper's own argv, so words appended by xargs reach it too.
func (a *analyzer) inner(c *cmd, wrapper string, inner []arg, cx ctx,
	tail bool, env []string) error {
	if c.Wrapper == "" {
		c.Wrapper = wrapper
	}
	nx, err := a.nest(cx, wrapper)
	if err != nil {
		return err
	}
	nx.direct, nx.noFunc = false, false
	nx.extraArgs = tail && cx.extraArgs
	if len(inner) == 0 {
		if nx.extraArgs {
			// The program itself comes from xargs' input.
			c.InnerParsed = true
			return a.run([]arg{{val: "", dyn: true, reasons: []string{reasonXargsInput}}},
				nx, env, false)
		}
		return nil
	}
	c.InnerParsed = true
	if env == nil {
		env = []string{}
	}
	return a.run(inner, nx, env, false)
}

// code analyses text a wrapper runs as shell code. newProcess is set when
// the code runs in another process, whose cd does not reach the caller.
func (a *analyzer) code(c *cmd, via, text string, cx ctx, newProcess bool) error {
	if c.Wrapper == "" {
		c.Wrapper = via
	}
	if !cleanText(text) {
		a.opaque(c, via, "invalid_inner_text")
		return nil
	}
	if len(text) > a.opts.MaxBytes {
		return &LimitError{Limit: "bytes", Max: a.opts.MaxBytes}
	}
	f, err := parse(text)
	if err != nil {
		a.opaque(c, via, "inner_parse_error")
		return nil
	}
	nx, err := a.nest(cx, via)
	if err != nil {
		return err
	}
	nx.src, nx.direct, nx.noFunc, nx.extraArgs = text, true, false, false
	if newProcess {
		defer a.keepCwd()()
	}
	c.InnerParsed = true
	return a.file(f, nx)
}

// stdinReason names where a shell or interpreter reading its program from
// standard input gets it.
func stdinReason(cx ctx) string {
	switch cx.stdin {
	case stdinPipe:
		return "script_from_pipe"
	case stdinFile:
		return "script_from_file"
	case stdinDoc:
		return "script_from_heredoc"
	}
	return "script_from_stdin"
}

// staticVals returns the values of args, and false if any is dynamic.
func staticVals(args []arg) ([]string, bool) {
	out := make([]string, 0, len(args))
	for _, x := range args {
		if x.dyn {
			return nil, false
		}
		out = append(out, x.val)
	}
	return out, true
}
