package shellfacts

import (
	"path"
	"strings"
)

// Wrapper labels, the values of Command.Wrapper and the parts of Via.
const (
	wrapShellC      = "sh -c"
	wrapShellStdin  = "sh stdin"
	wrapShellScript = "sh script"
	wrapFindExec    = "find -exec"
)

// Flags set on wrappers.
const (
	flagPrivileged  = "privileged"
	flagDynWrapArgs = "dynamic_wrapper_args"
)

// wrapHandler analyses what an external program runs.
type wrapHandler func(a *analyzer, c *cmd, args []arg, cx ctx) error

var wrappers map[string]wrapHandler

func init() {
	bashLike := shellHandler(true)
	other := shellHandler(false)
	wrappers = map[string]wrapHandler{
		"env":   envWrapper,
		"xargs": xargsWrapper,
		"find":  findWrapper,

		"sudo": sudoWrapper, "sudoedit": sudoeditWrapper, "doas": doasWrapper,
		"su": suWrapper, "runuser": runuserWrapper, "pkexec": pkexecWrapper,

		"busybox": busyboxWrapper, "toybox": busyboxWrapper,
		"git":  gitWrapper,
		"less": pagerWrapper, "more": pagerWrapper, "most": pagerWrapper,
		"man": manWrapper,
		"sed": sedWrapper, "gsed": sedWrapper,
		"awk": awkWrapper, "gawk": awkWrapper, "mawk": awkWrapper,
		"nawk": awkWrapper, "original-awk": awkWrapper,
		"ssh": sshWrapper,
		"scp": remoteCopyWrapper, "sftp": remoteCopyWrapper,
		"rsync": remoteCopyWrapper,
		"watch": watchWrapper,
		"flock": flockWrapper,
		"parallel": func(a *analyzer, c *cmd, args []arg, _ ctx) error {
			if !versionOnly(args) {
				a.opaque(c, "parallel", "parallel_commands")
			}
			return nil
		},
	}
	for _, n := range []string{"sh", "bash", "dash", "ash", "ksh", "mksh",
		"rbash", "posh", "yash", "lksh", "pdksh", "ksh93"} {
		wrappers[n] = bashLike
	}
	for _, n := range []string{"zsh", "fish", "csh", "tcsh", "rc", "es",
		"xonsh", "nu", "elvish"} {
		wrappers[n] = other
	}
	for name, p := range prefixWrappers {
		wrappers[name] = prefixWrapper(name, p)
	}
	for _, n := range unparsedWrappers {
		wrappers[n] = unparsedWrapper(false)
	}
	for _, n := range unparsedPrivileged {
		wrappers[n] = unparsedWrapper(true)
	}
}

// wrapperHandler returns the handler for a program's base name.
func wrapperHandler(base string) wrapHandler {
	if h := wrappers[base]; h != nil {
		return h
	}
	if fam := interpreterFamily(base); fam != "" {
		return interpreterWrapper(fam)
	}
	if editors[base] {
		return editorWrapper
	}
	return nil
}

// versionOnly reports whether args ask only for a version or help text.
func versionOnly(args []arg) bool {
	if len(args) < 2 {
		return false
	}
	for _, x := range args[1:] {
		switch x.val {
		case "--version", "-V", "-v", "--help", "-h", "-version", "-help":
		default:
			return false
		}
		if x.dyn {
			return false
		}
	}
	return true
}

// shellHandler handles sh, bash and the other shells. bashLike shells get
// their -c code parsed; the others (zsh, fish, csh...) have a grammar of
// their own and are opaque.
func shellHandler(bashLike bool) wrapHandler {
	return func(a *analyzer, c *cmd, args []arg, cx ctx) error {
		s, ok := scanShellArgs(args)
		if !ok {
			a.opaque(c, wrapShellC, flagDynWrapArgs)
			return nil
		}
		if s.version && !s.cmode {
			return nil
		}
		label := wrapShellStdin
		switch {
		case s.cmode:
			label = wrapShellC
		case s.next < len(args) && !s.stdin:
			label = wrapShellScript
		}
		if s.interactive {
			c.flag("interactive")
		}
		switch {
		case !bashLike:
			a.opaque(c, label, "non_bash_shell")
			return nil
		case s.rcfile:
			a.opaque(c, label, "rcfile")
			return nil
		case hasName(c.Env, "BASH_ENV") || hasName(c.Env, "ENV"):
			a.opaque(c, label, "bash_env")
			return nil
		}
		return a.shellBody(c, label, s, args, cx)
	}
}

// shellArgs is what a shell's command line asks for.
type shellArgs struct {
	cmode, stdin, rcfile, version, interactive bool
	next                                       int // first operand
}

func scanShellArgs(args []arg) (shellArgs, bool) {
	var s shellArgs
	i := 1
scan:
	for i < len(args) {
		x := args[i]
		if x.dyn {
			if x.split {
				return s, false
			}
			break
		}
		v := x.val
		switch {
		case v == "--" || v == "-":
			i++
			break scan
		case strings.HasPrefix(v, "--"):
			name, _, hasVal := strings.Cut(v, "=")
			switch name {
			case "--rcfile", "--init-file":
				s.rcfile = true
				if !hasVal {
					i++
				}
			case "--version", "--help":
				s.version = true
			}
			i++
		case len(v) >= 2 && (v[0] == '-' || v[0] == '+'):
			skip := 0
			for _, ch := range v[1:] {
				switch ch {
				case 'c':
					s.cmode = s.cmode || v[0] == '-'
				case 's':
					s.stdin = true
				case 'i':
					s.interactive = true
				case 'o', 'O':
					skip++ // the option name follows
				}
			}
			i += 1 + skip
		default:
			break scan
		}
	}
	s.next = i
	return s, true
}

// shellBody analyses the code a bash-like shell runs: the -c string, a
// here-document on stdin, or nothing it can see.
func (a *analyzer) shellBody(c *cmd, label string, s shellArgs, args []arg, cx ctx) error {
	switch label {
	case wrapShellC:
		if s.next >= len(args) {
			if cx.extraArgs {
				a.opaque(c, label, "script_from_input")
			}
			return nil // bash: -c needs an argument
		}
		code := args[s.next]
		if code.dyn {
			a.opaque(c, label, reasonDynamicExec)
			return nil
		}
		return a.code(c, label, code.val, cx, true)
	case wrapShellScript:
		a.opaque(c, label, "script_file")
		return nil
	}
	if cx.extraArgs {
		a.opaque(c, wrapShellScript, "script_from_input")
		return nil
	}
	if cx.stdin == stdinDoc && cx.docOK {
		return a.code(c, label, cx.doc, cx, true)
	}
	a.opaque(c, label, stdinReason(cx))
	return nil
}

func hasName(list []string, name string) bool {
	for _, n := range list {
		if n == name {
			return true
		}
	}
	return false
}

// envWrapper: env [-i] [-u NAME] [-C DIR] [NAME=VALUE]... [COMMAND [ARG]...].
func envWrapper(a *analyzer, c *cmd, args []arg, cx ctx) error {
	opts, i, splitDyn := parseOptions(args, 1, optSpec{
		withArg: "uCSa",
		long:    []string{"unset", "chdir", "split-string", "argv0"},
	})
	if splitDyn {
		a.opaque(c, "env", flagDynWrapArgs)
		return nil
	}
	if _, ok := optValue(opts, "-S", "--split-string"); ok {
		a.opaque(c, "env", "env_split_string")
		return nil
	}
	if i < len(args) && !args[i].dyn && args[i].val == "-" {
		opts = append(opts, option{name: "-i"})
		i++
	}
	if hasOpt(opts, "-i", "--ignore-environment") {
		c.flag("clear_env")
	}
	env := []string{}
	for _, o := range opts {
		if o.name == "-u" || strings.HasPrefix("--unset", o.name) && len(o.name) > 3 {
			a.assign(o.val)
			env = append(env, o.val)
		}
	}
	for ; i < len(args); i++ {
		x := args[i]
		if x.dyn && x.split {
			a.opaque(c, "env", flagDynWrapArgs)
			return nil
		}
		name, _, ok := strings.Cut(x.val, "=")
		if x.dyn || !ok || name == "" {
			break
		}
		a.assign(name)
		env = append(env, name)
	}
	if i >= len(args) && !cx.extraArgs {
		if len(env) > 0 {
			c.Wrapper = "env"
		}
		return nil // prints the environment
	}
	if o, ok := optValue(opts, "-C", "--chdir"); ok {
		defer a.keepCwd()()
		if o.dyn {
			a.cwdOK = false
		} else {
			p := a.resolvePath(o.val, false)
			a.cwd, a.cwdOK = p, p != ""
		}
	}
	return a.inner(c, "env", args[i:], cx, true, env)
}

// xargsWrapper: the command runs with words read from input appended, or,
// with -I, substituted for the replacement string.
func xargsWrapper(a *analyzer, c *cmd, args []arg, cx ctx) error {
	opts, i, splitDyn := parseOptions(args, 1, optSpec{
		withArg:  "aEdILnPs",
		optional: "eil",
		long: []string{"arg-file", "delimiter", "max-args", "max-procs",
			"max-chars", "process-slot-var"},
	})
	if splitDyn {
		a.opaque(c, "xargs", flagDynWrapArgs)
		return nil
	}
	replace := ""
	if o, ok := optValue(opts, "-I"); ok {
		replace = o.val
	} else if o, ok := optValue(opts, "-i", "--replace"); ok {
		replace = "{}"
		if o.has {
			replace = o.val
		}
	}
	inner := args[i:]
	if len(inner) == 0 {
		inner = []arg{{val: "echo"}}
	}
	cx.extraArgs = replace == ""
	if replace != "" {
		c.flag("xargs_replace")
		inner = markPlaceholder(inner, replace, reasonXargsInput)
	}
	return a.inner(c, "xargs", inner, cx, true, nil)
}

// markPlaceholder marks the words holding a placeholder (find's {},
// xargs -I) as dynamic.
func markPlaceholder(args []arg, ph, reason string) []arg {
	out := make([]arg, len(args))
	copy(out, args)
	for i, x := range out {
		if !x.dyn && ph != "" && strings.Contains(x.val, ph) {
			out[i].dyn = true
			out[i].reasons = []string{reason}
		}
	}
	return out
}

// findWrapper: -exec, -execdir, -ok and -okdir run a command per file, up
// to ";" or "{} +".
func findWrapper(a *analyzer, c *cmd, args []arg, cx ctx) error {
	for i := 1; i < len(args); i++ {
		x := args[i]
		if x.dyn {
			if x.split {
				a.opaque(c, wrapFindExec, flagDynWrapArgs)
			}
			continue
		}
		switch x.val {
		case "-delete":
			c.flag("find_delete")
		case "-fprint", "-fprint0", "-fprintf", "-fls":
			c.flag("find_writes")
		case "-exec", "-execdir", "-ok", "-okdir":
			end := i + 1
			for end < len(args) && !findExecEnd(args, end) {
				end++
			}
			inner := markPlaceholder(args[i+1:end], "{}", reasonFindPlace)
			c.flag("find_exec")
			if err := a.inner(c, wrapFindExec, inner, cx, false, nil); err != nil {
				return err
			}
			i = end
		}
	}
	return nil
}

func findExecEnd(args []arg, i int) bool {
	x := args[i]
	if x.dyn {
		return false
	}
	return x.val == ";" || x.val == "+" && i > 0 && args[i-1].val == "{}"
}

// envAssignments reads NAME=VALUE words at args[i:], as sudo accepts
// before the command.
func (a *analyzer) envAssignments(args []arg, i int) ([]string, int) {
	env := []string{}
	for ; i < len(args); i++ {
		x := args[i]
		name, _, ok := strings.Cut(x.val, "=")
		if x.dyn || !ok || name == "" || strings.Contains(name, "/") {
			break
		}
		a.assign(name)
		env = append(env, name)
	}
	return env, i
}

func privileged(c *cmd) {
	c.Privileged = true
	c.flag(flagPrivileged)
}

func sudoWrapper(a *analyzer, c *cmd, args []arg, cx ctx) error {
	privileged(c)
	opts, i, splitDyn := parseOptions(args, 1, optSpec{
		withArg: "aCcDgpRrTtUu", optional: "h",
		long: []string{"auth-type", "chdir", "chroot", "close-from",
			"command-timeout", "group", "host", "login-class", "other-user",
			"prompt", "role", "type", "user"},
	})
	if splitDyn {
		a.opaque(c, "sudo", flagDynWrapArgs)
		return nil
	}
	if hasOpt(opts, "-e", "--edit") {
		c.Wrapper = "sudo"
		c.flag("sudoedit")
		return nil
	}
	if hasOpt(opts, "-l", "--list", "-v", "--validate", "-K",
		"--remove-timestamp", "-V", "--version", "--help") {
		return nil
	}
	if o, ok := optValue(opts, "-h"); ok && !o.has {
		return nil
	}
	if hasOpt(opts, "-b", "--background") {
		a.facts.Background = true
	}
	if hasOpt(opts, "-E", "--preserve-env") {
		c.flag("preserve_env")
	}
	env, i := a.envAssignments(args, i)
	shell := hasOpt(opts, "-s", "--shell", "-i", "--login")
	if i >= len(args) && shell && !cx.extraArgs {
		a.opaque(c, "sudo", "script_from_stdin")
		return nil
	}
	if hasOpt(opts, "-R", "--chroot") {
		cx.noResolve = true
	}
	if hasOpt(opts, "-D", "--chdir") {
		defer a.keepCwd()()
		a.cwdOK = false
	}
	return a.inner(c, "sudo", args[i:], cx, true, env)
}

func sudoeditWrapper(_ *analyzer, c *cmd, _ []arg, _ ctx) error {
	privileged(c)
	c.flag("sudoedit")
	return nil
}

func doasWrapper(a *analyzer, c *cmd, args []arg, cx ctx) error {
	privileged(c)
	opts, i, splitDyn := parseOptions(args, 1, optSpec{withArg: "aCu"})
	switch {
	case splitDyn:
		a.opaque(c, "doas", flagDynWrapArgs)
		return nil
	case hasOpt(opts, "-C"):
		return nil
	case i >= len(args) && hasOpt(opts, "-s") && !cx.extraArgs:
		a.opaque(c, "doas", "script_from_stdin")
		return nil
	}
	return a.inner(c, "doas", args[i:], cx, true, nil)
}

func pkexecWrapper(a *analyzer, c *cmd, args []arg, cx ctx) error {
	privileged(c)
	opts, i, splitDyn := parseOptions(args, 1, optSpec{long: []string{"user"}})
	switch {
	case splitDyn:
		a.opaque(c, "pkexec", flagDynWrapArgs)
		return nil
	case hasOpt(opts, "--version", "--help"):
		return nil
	case i >= len(args) && !cx.extraArgs:
		a.opaque(c, "pkexec", "script_from_stdin") // runs the user's shell
		return nil
	}
	return a.inner(c, "pkexec", args[i:], cx, true, nil)
}

// runuserWrapper: with -u the command follows as argv, as with sudo;
// otherwise runuser takes su's options.
func runuserWrapper(a *analyzer, c *cmd, args []arg, cx ctx) error {
	opts, i, splitDyn := parseOptions(args, 1, optSpec{
		withArg: "ugGw", long: []string{"user", "group", "supp-group",
			"whitelist-environment"},
	})
	if !splitDyn && hasOpt(opts, "-u", "--user") {
		privileged(c)
		return a.inner(c, "runuser", args[i:], cx, true, nil)
	}
	return suWrapper(a, c, args, cx)
}

// suWrapper: su [options] [-] [user [argument...]]. Options may appear
// anywhere; -c gives shell code, otherwise the shell is interactive.
func suWrapper(a *analyzer, c *cmd, args []arg, cx ctx) error {
	privileged(c)
	label := c.Base
	var code *arg
	shell := ""
	for i := 1; i < len(args); i++ {
		x := args[i]
		if x.dyn {
			if x.split {
				a.opaque(c, label, flagDynWrapArgs)
				return nil
			}
			continue
		}
		val := func() *arg {
			if i+1 < len(args) {
				i++
				return &args[i]
			}
			return nil
		}
		v := x.val
		name, attached, hasEq := strings.Cut(v, "=")
		switch {
		case v == "--":
			i = len(args)
		case name == "--command" || name == "--session-command":
			if hasEq {
				code = &arg{val: attached}
			} else {
				code = val()
			}
		case name == "--shell":
			if hasEq {
				shell = attached
			} else if s := val(); s != nil {
				shell = s.val
			}
		case name == "--group" || name == "--supp-group" ||
			name == "--whitelist-environment":
			if !hasEq {
				val()
			}
		case strings.HasPrefix(v, "-") && !strings.HasPrefix(v, "--") && len(v) > 1:
			for j := 1; j < len(v); j++ {
				if !strings.ContainsRune("csgGw", rune(v[j])) {
					continue
				}
				var got *arg
				if j+1 < len(v) {
					got = &arg{val: v[j+1:]}
				} else {
					got = val()
				}
				switch v[j] {
				case 'c':
					code = got
				case 's':
					if got != nil {
						shell = got.val
					}
				}
				break
			}
		}
	}
	switch {
	case code == nil:
		a.opaque(c, label, "script_from_stdin") // an interactive shell
		return nil
	case shell != "" && wrappers[path.Base(shell)] == nil:
		a.opaque(c, label+" -c", "non_bash_shell")
		return nil
	case code.dyn:
		a.opaque(c, label+" -c", reasonDynamicExec)
		return nil
	}
	return a.code(c, label+" -c", code.val, cx, true)
}

// busyboxWrapper: busybox APPLET args runs a built-in applet, not a file
// on PATH.
func busyboxWrapper(a *analyzer, c *cmd, args []arg, cx ctx) error {
	if len(args) < 2 || !args[1].dyn && strings.HasPrefix(args[1].val, "-") {
		return nil
	}
	cx.noResolve = true
	return a.inner(c, c.Base, args[1:], cx, true, nil)
}

// prefixSpec describes a wrapper that runs the rest of its argv after
// options and a fixed number of operands.
type prefixSpec struct {
	opts optSpec
	// operands before the command (timeout's duration, chroot's root).
	operands int
	// noCommand lists options after which no command runs (ionice -p).
	noCommand []string
	// shellIfNone is set when no command means an interactive shell.
	shellIfNone bool
	privileged  bool
	noResolve   bool
	// writes lists options whose value is a file written (time -o).
	writes []string
}

var prefixWrappers = map[string]prefixSpec{
	"nohup":  {},
	"setsid": {},
	"nice": {opts: optSpec{withArg: "n", long: []string{"adjustment"},
		numeric: true}},
	"ionice": {opts: optSpec{withArg: "cnPpu", long: []string{"class",
		"classdata", "pgid", "pid", "uid"}},
		noCommand: []string{"-p", "-P", "-u", "--pid", "--pgid", "--uid"}},
	"stdbuf": {opts: optSpec{withArg: "ioe", long: []string{"input",
		"output", "error"}}},
	"timeout": {opts: optSpec{withArg: "sk", long: []string{"signal",
		"kill-after"}}, operands: 1},
	"taskset": {opts: optSpec{}, operands: 1,
		noCommand: []string{"-p", "--pid"}},
	"chrt": {opts: optSpec{withArg: "TPD", long: []string{"sched-runtime",
		"sched-period", "sched-deadline"}}, operands: 1,
		noCommand: []string{"-p", "--pid", "-m", "--max"}},
	"time": {opts: optSpec{withArg: "fo", long: []string{"format",
		"output"}}, writes: []string{"-o", "--output"}},
	"strace": {opts: optSpec{withArg: "abeEIoOpPsSuUX", long: []string{
		"output", "attach", "user", "expr", "string-limit"}},
		noCommand: []string{"-p", "--attach"}, writes: []string{"-o", "--output"}},
	"ltrace": {opts: optSpec{withArg: "aAeEFlnopsuwxDX"},
		noCommand: []string{"-p"}, writes: []string{"-o"}},
	"unbuffer": {opts: optSpec{}},
	"chroot": {opts: optSpec{long: []string{"userspec", "groups"}},
		operands: 1, shellIfNone: true, privileged: true, noResolve: true},
}

func prefixWrapper(name string, p prefixSpec) wrapHandler {
	return func(a *analyzer, c *cmd, args []arg, cx ctx) error {
		if p.privileged {
			privileged(c)
		}
		opts, i, splitDyn := parseOptions(args, 1, p.opts)
		for n := 0; n < p.operands && i < len(args) && !splitDyn; n++ {
			splitDyn = args[i].dyn && args[i].split
			i++
		}
		switch {
		case splitDyn:
			a.opaque(c, name, flagDynWrapArgs)
			return nil
		case hasOpt(opts, "--help", "--version") || hasOpt(opts, p.noCommand...):
			return nil
		case i >= len(args) && p.shellIfNone && !cx.extraArgs:
			a.opaque(c, name, "script_from_stdin")
			return nil
		}
		if hasOpt(opts, p.writes...) {
			c.flag("writes_file")
		}
		cx.noResolve = cx.noResolve || p.noResolve
		return a.inner(c, name, args[i:], cx, true, nil)
	}
}

// unparsedWrappers run a command given on their line with option syntax
// the guard does not model; they are opaque when given anything to run.
var unparsedWrappers = []string{
	"ssh-agent", "dbus-run-session", "xvfb-run", "script", "screen", "tmux",
	"proxychains", "proxychains4", "torsocks", "faketime", "catchsegv",
	"valgrind", "perf", "at", "batch", "fakeroot", "fakechroot", "envdir",
	"softlimit", "daemonize", "start-stop-daemon", "entr",
}

// unparsedPrivileged also switch user, namespace or capabilities.
var unparsedPrivileged = []string{
	"unshare", "nsenter", "setpriv", "capsh", "systemd-run", "machinectl",
	"firejail", "bwrap", "sg", "newgrp", "chpst", "setuidgid",
}

func unparsedWrapper(priv bool) wrapHandler {
	return func(a *analyzer, c *cmd, args []arg, _ ctx) error {
		if priv {
			privileged(c)
		}
		if len(args) > 1 && !versionOnly(args) {
			a.opaque(c, c.Base, "unparsed_wrapper")
		}
		return nil
	}
}
