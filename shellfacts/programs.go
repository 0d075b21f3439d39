package shellfacts

import (
	"regexp"
	"strings"
)

// gitWrapper: git runs programs named in its configuration, so -c and
// --config-env are opaque, as are the subcommands and options that take a
// command.
func gitWrapper(a *analyzer, c *cmd, args []arg, cx ctx) error {
	i := 1
	for i < len(args) {
		x := args[i]
		if x.dyn {
			if x.split {
				a.opaque(c, "git", flagDynWrapArgs)
				return nil
			}
			break
		}
		v := x.val
		if !strings.HasPrefix(v, "-") {
			break
		}
		name, _, hasEq := strings.Cut(v, "=")
		switch {
		case v == "-c":
			a.opaque(c, "git -c", "git_config")
			i++
		case name == "--config-env":
			a.opaque(c, "git -c", "git_config")
			if !hasEq {
				i++
			}
		case name == "--exec-path" && hasEq:
			a.opaque(c, "git", "git_exec_path")
		case v == "-C":
			c.flag("git_dir")
			i++
		case name == "--git-dir" || name == "--work-tree":
			c.flag("git_dir")
			if !hasEq {
				i++
			}
		case name == "--namespace" || name == "--super-prefix" ||
			name == "--attr-source" || name == "--list-cmds":
			if !hasEq {
				i++
			}
		}
		i++
	}
	if i >= len(args) || args[i].dyn {
		return nil
	}
	if reason := gitRunsCommand(args[i].val, args[i+1:]); reason != "" {
		label := "git"
		if reason == "git_config" {
			label = "git -c"
		}
		a.opaque(c, label, reason)
	}
	return nil
}

// gitRunsCommand returns why a git subcommand runs a program given on
// its line, or "".
func gitRunsCommand(sub string, rest []arg) string {
	has := func(match func(string) bool) bool {
		for _, x := range rest {
			if !x.dyn && match(x.val) {
				return true
			}
		}
		return false
	}
	// git accepts any unambiguous prefix of a long option
	// (--open-files-i for --open-files-in-pager), and short options with
	// their value attached (-Oless).
	prefixed := func(names ...string) func(string) bool {
		return func(v string) bool {
			name, _, _ := strings.Cut(v, "=")
			for _, n := range names {
				long := strings.HasPrefix(n, "--")
				switch {
				case v == n:
					return true
				case long && len(name) >= 3 && strings.HasPrefix(n, name):
					return true
				case !long && strings.HasPrefix(n, "-") && strings.HasPrefix(v, n):
					return true
				}
			}
			return false
		}
	}
	if has(func(v string) bool { return strings.Contains(v, "ext::") }) {
		return "git_runs_command"
	}
	found := false
	switch sub {
	case "submodule":
		found = has(prefixed("foreach"))
	case "bisect":
		found = has(prefixed("run"))
	case "rebase":
		found = has(prefixed("-x", "--exec"))
	case "filter-branch":
		found = true
	case "difftool", "mergetool":
		found = has(prefixed("-x", "--extcmd", "--tool", "-t"))
	case "grep":
		found = has(prefixed("-O", "--open-files-in-pager")) ||
			has(func(v string) bool {
				// -O in a cluster (-nOless) takes the rest as its value.
				return len(v) > 2 && v[0] == '-' && v[1] != '-' &&
					strings.Contains(v, "O")
			})
	case "clone", "fetch", "pull", "ls-remote", "push", "archive":
		found = has(prefixed("--upload-pack", "--receive-pack", "--exec")) ||
			sub == "clone" && has(prefixed("-u"))
	case "config":
		if gitConfigSetsCode(rest) {
			return "git_config"
		}
	}
	if found {
		return "git_runs_command"
	}
	return ""
}

// gitConfigSetsCode reports whether `git config ...` sets a key whose
// value git later runs.
func gitConfigSetsCode(rest []arg) bool {
	var ops []string
	for i := 0; i < len(rest); i++ {
		x := rest[i]
		switch {
		case x.dyn:
			return true
		case x.val == "-f" || x.val == "--file" || x.val == "--blob" ||
			x.val == "--type" || x.val == "--default" || x.val == "--comment":
			i++
		case strings.HasPrefix(x.val, "-"):
		default:
			ops = append(ops, x.val)
		}
	}
	if len(ops) > 0 {
		switch ops[0] {
		case "set", "get", "unset", "list", "edit", "rename-section",
			"remove-section":
			ops = ops[1:]
		}
	}
	return len(ops) >= 2 && gitKeyRunsCode(ops[0])
}

// gitKeyRunsCode reports whether git runs the value of a config key as a
// program, or reads more configuration from it.
func gitKeyRunsCode(key string) bool {
	k := strings.ToLower(key)
	for _, p := range []string{"alias.", "pager.", "filter.", "include",
		"credential", "difftool.", "mergetool.", "instaweb.", "sendemail."} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	for _, s := range []string{"command", "cmd", ".driver", ".textconv",
		".program", ".helper", ".tool", "hookspath", ".uploadpack",
		".receivepack", "proxy", ".allow"} {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	switch k {
	case "core.pager", "core.editor", "core.fsmonitor", "core.askpass",
		"diff.external", "sequence.editor", "web.browser",
		"uploadpack.packobjectshook", "core.sshcommand":
		return true
	}
	return false
}

// pagerWrapper: less +cmd runs less commands at start, and those include
// ! (a shell command) and | (pipe to a command).
func pagerWrapper(a *analyzer, c *cmd, args []arg, _ ctx) error {
	for _, x := range args[1:] {
		switch {
		case x.dyn && x.split:
			a.opaque(c, c.Base+" +", flagDynWrapArgs)
		case !x.dyn && strings.HasPrefix(x.val, "+"):
			a.opaque(c, c.Base+" +", "pager_command")
		case !x.dyn && (strings.HasPrefix(x.val, "-o") ||
			strings.HasPrefix(x.val, "-O") || strings.HasPrefix(x.val, "--log-file")):
			c.flag("writes_file")
		}
	}
	return nil
}

// manWrapper: -P and --pager choose the program that shows the page.
func manWrapper(a *analyzer, c *cmd, args []arg, _ ctx) error {
	for _, x := range args[1:] {
		if x.dyn {
			continue
		}
		if strings.HasPrefix(x.val, "-P") || strings.HasPrefix(x.val, "--pager") ||
			strings.HasPrefix(x.val, "-H") || strings.HasPrefix(x.val, "--html") {
			a.opaque(c, "man -P", "pager_command")
		}
	}
	return nil
}

// sedWrapper finds GNU sed's e command and e flag (run a command) and its
// w and W commands and flag (write a file).
func sedWrapper(a *analyzer, c *cmd, args []arg, _ ctx) error {
	var scripts []arg
	var operands []arg
	sandbox, fromFile := false, false
	for i := 1; i < len(args); i++ {
		x := args[i]
		if x.dyn {
			if x.split {
				a.opaque(c, "sed e", flagDynWrapArgs)
				return nil
			}
			operands = append(operands, x)
			continue
		}
		next := func() arg {
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return arg{}
		}
		v := x.val
		name, val, hasEq := strings.Cut(v, "=")
		switch {
		case v == "--":
			operands = append(operands, args[i+1:]...)
			i = len(args)
		case name == "--expression":
			if hasEq {
				scripts = append(scripts, arg{val: val})
			} else {
				scripts = append(scripts, next())
			}
		case name == "--file":
			fromFile = true
			if !hasEq {
				next()
			}
		case name == "--line-length":
			if !hasEq {
				next()
			}
		case name == "--in-place":
			c.flag("sed_in_place")
		case v == "--sandbox":
			sandbox = true
		case strings.HasPrefix(v, "--"):
		case strings.HasPrefix(v, "-") && len(v) > 1:
			for j := 1; j < len(v); j++ {
				switch v[j] {
				case 'e', 'f', 'l':
					got := arg{val: v[j+1:]}
					if j+1 == len(v) {
						got = next()
					}
					switch v[j] {
					case 'e':
						scripts = append(scripts, got)
					case 'f':
						fromFile = true
					}
					j = len(v)
				case 'i':
					c.flag("sed_in_place")
					j = len(v)
				}
			}
		default:
			operands = append(operands, x)
		}
	}
	if len(scripts) == 0 && !fromFile && len(operands) > 0 {
		scripts = operands[:1]
	}
	if fromFile && !sandbox {
		a.opaque(c, "sed e", "sed_script_file")
	}
	for _, s := range scripts {
		if s.dyn {
			a.opaque(c, "sed e", reasonDynamicExec)
			continue
		}
		exec, write, ok := scanSed(s.val)
		switch {
		case sandbox:
		case !ok:
			a.opaque(c, "sed e", "sed_unparsed")
		case exec:
			a.opaque(c, "sed e", "sed_exec")
		}
		if write && !sandbox {
			c.flag("sed_write")
		}
	}
	return nil
}

var awkRunsRe = regexp.MustCompile(`system\s*\(|\|`)

// awkWrapper: system() and pipes to or from commands run programs.
func awkWrapper(a *analyzer, c *cmd, args []arg, _ ctx) error {
	opts, i, splitDyn := parseOptions(args, 1, optSpec{
		withArg: "FvfeEilW",
		long: []string{"field-separator", "assign", "file", "source",
			"include", "load", "exec"},
	})
	if splitDyn {
		a.opaque(c, "awk system", flagDynWrapArgs)
		return nil
	}
	if hasOpt(opts, "-f", "--file", "-i", "--include", "-l", "--load",
		"-E", "--exec", "-W") {
		a.opaque(c, "awk system", "awk_script_file")
	}
	var programs []option
	for _, o := range opts {
		if o.name == "-e" || o.name == "--source" {
			programs = append(programs, o)
		}
	}
	if len(programs) == 0 && !c.Opaque && i < len(args) {
		programs = append(programs, option{val: args[i].val, dyn: args[i].dyn})
	}
	for _, p := range programs {
		switch {
		case p.dyn:
			a.opaque(c, "awk system", reasonDynamicExec)
		case awkRunsRe.MatchString(p.val):
			a.opaque(c, "awk system", "awk_exec")
		case strings.Contains(p.val, ">"):
			c.flag("awk_may_write")
		}
	}
	return nil
}

// sshWrapper: whatever ssh runs happens on another host, and its options
// (ProxyCommand, LocalCommand) can run local programs.
func sshWrapper(a *analyzer, c *cmd, args []arg, _ ctx) error {
	if versionOnly(args) {
		return nil
	}
	a.opaque(c, "ssh", "remote_command")
	return nil
}

var sshCommandOptRe = regexp.MustCompile(`(?i)(proxycommand|localcommand|` +
	`knownhostscommand|proxyjump|permitlocalcommand)`)

// remoteCopyWrapper: scp, sftp and rsync start ssh, or a program named by
// -S, -e or --rsh, and pass -o options on to it.
func remoteCopyWrapper(a *analyzer, c *cmd, args []arg, _ ctx) error {
	for i, x := range args[1:] {
		v := x.val
		switch {
		case x.dyn && x.split:
			a.opaque(c, c.Base, flagDynWrapArgs)
		case x.dyn:
		case strings.HasPrefix(v, "-S") && c.Base != "rsync",
			c.Base == "rsync" && (strings.HasPrefix(v, "-e") ||
				strings.HasPrefix(v, "--rsh") || strings.HasPrefix(v, "--rsync-path")):
			a.opaque(c, c.Base, "remote_shell_program")
		case sshCommandOptRe.MatchString(v) && (strings.HasPrefix(v, "-o") ||
			i > 0 && args[i].val == "-o"):
			a.opaque(c, c.Base, "ssh_command_option")
		}
	}
	return nil
}

// watchWrapper runs its operands through sh -c, joined by spaces, unless
// -x passes them as argv.
func watchWrapper(a *analyzer, c *cmd, args []arg, cx ctx) error {
	opts, i, splitDyn := parseOptions(args, 1, optSpec{
		withArg: "n", optional: "d", long: []string{"interval"},
	})
	switch {
	case splitDyn:
		a.opaque(c, "watch", flagDynWrapArgs)
		return nil
	case i >= len(args):
		return nil
	case hasOpt(opts, "-x", "--exec"):
		return a.inner(c, "watch", args[i:], cx, true, nil)
	}
	vals, ok := staticVals(args[i:])
	if !ok {
		a.opaque(c, "watch", reasonDynamicExec)
		return nil
	}
	return a.code(c, "watch", strings.Join(vals, " "), cx, true)
}

// flockWrapper: flock [options] FILE COMMAND [ARG...], or FILE -c CODE.
func flockWrapper(a *analyzer, c *cmd, args []arg, cx ctx) error {
	_, i, splitDyn := parseOptions(args, 1, optSpec{
		withArg: "wE", long: []string{"timeout", "conflict-exit-code"},
	})
	if splitDyn {
		a.opaque(c, "flock", flagDynWrapArgs)
		return nil
	}
	i++ // the lock file, or a descriptor with no command
	if i >= len(args) {
		return nil
	}
	if x := args[i]; !x.dyn && (x.val == "-c" || x.val == "--command") {
		if i+1 >= len(args) {
			return nil
		}
		if args[i+1].dyn {
			a.opaque(c, "flock -c", reasonDynamicExec)
			return nil
		}
		return a.code(c, "flock -c", args[i+1].val, cx, true)
	}
	return a.inner(c, "flock", args[i:], cx, true, nil)
}

var interpreterRe = regexp.MustCompile(`^(python|pypy|perl|ruby|irb|jruby|php|` +
	`lua|luajit|tclsh|wish|expect|node|nodejs|deno|bun|tsx|ts-node|zx|` +
	`Rscript|R|julia|osascript|pwsh|powershell|groovy|scala|jshell|guile|` +
	`racket|sbcl|clisp|ocaml|ghci|runghc|swift|erl|escript|elixir|iex|` +
	`crystal|kotlin|dart)(-?[0-9][0-9.]*)?$`)

// interpreterFamily returns the language a program name runs, or "".
func interpreterFamily(base string) string {
	m := interpreterRe.FindStringSubmatch(base)
	if m == nil {
		return ""
	}
	switch m[1] {
	case "pypy":
		return "python"
	case "irb", "jruby":
		return "ruby"
	case "nodejs", "deno", "bun", "tsx", "ts-node", "zx":
		return "node"
	case "luajit":
		return "lua"
	case "wish", "tclsh", "expect":
		return "tcl"
	case "pwsh":
		return "powershell"
	case "Rscript":
		return "R"
	}
	return m[1]
}

// inlineFlags are the options that give a family's program on the line.
var inlineFlags = map[string][]string{
	"python":     {"-c"},
	"perl":       {"-e", "-E"},
	"ruby":       {"-e"},
	"node":       {"-e", "--eval", "-p", "--print", "eval"},
	"php":        {"-r", "-B", "-R", "-E"},
	"lua":        {"-e"},
	"tcl":        {"-c"},
	"powershell": {"-c", "-command", "-encodedcommand", "-ec", "-e"},
	"R":          {"-e"},
	"julia":      {"-e", "-E", "--eval", "--print"},
}

// interpreterWrapper: another language's program is code the guard
// cannot read, whether given inline, on stdin or as a script file.
// Only python -m (an installed module) and version queries are not
// opaque.
func interpreterWrapper(fam string) wrapHandler {
	return func(a *analyzer, c *cmd, args []arg, cx ctx) error {
		if versionOnly(args) {
			return nil
		}
		flags := inlineFlags[fam]
		if flags == nil {
			flags = []string{"-e", "-c"}
		}
		operand := false
		for _, x := range args[1:] {
			if x.dyn {
				a.opaque(c, fam+" -c", reasonDynamicExec)
				return nil
			}
			v := x.val
			if inlineFlag(fam, flags, v) {
				a.opaque(c, fam+" "+strings.ToLower(flags[0]), "inline_code")
				return nil
			}
			if fam == "python" && (v == "-m" || strings.HasPrefix(v, "-m")) {
				c.flag("module")
				return nil
			}
			if !strings.HasPrefix(v, "-") || v == "-" {
				operand = v != "-"
				break
			}
		}
		if operand {
			a.opaque(c, fam+" script", "script_file")
			return nil
		}
		a.opaque(c, fam+" stdin", stdinReason(cx))
		return nil
	}
}

func inlineFlag(fam string, flags []string, v string) bool {
	for _, f := range flags {
		if strings.EqualFold(v, f) || strings.HasPrefix(v, f+"=") {
			return true
		}
	}
	// perl and ruby take clustered switches: -ne, -lane, -pe.
	if (fam == "perl" || fam == "ruby") && len(v) > 1 && v[0] == '-' && v[1] != '-' {
		return strings.ContainsAny(v[1:], "eE") && !strings.ContainsAny(v[1:2], "IMmx")
	}
	return false
}

// editors run commands given with -c, +cmd, --eval or from their stdin.
var editors = map[string]bool{
	"vi": true, "vim": true, "nvim": true, "view": true, "vimdiff": true,
	"ex": true, "rvim": true, "emacs": true, "emacsclient": true,
	"gdb": true, "lldb": true, "ed": true,
}

func editorWrapper(a *analyzer, c *cmd, args []arg, _ ctx) error {
	if !versionOnly(args) {
		a.opaque(c, c.Base, "editor_commands")
	}
	return nil
}
