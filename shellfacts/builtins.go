package shellfacts

import (
	"strings"
)

// builtinHandler analyses what a bash builtin does beyond being listed.
type builtinHandler func(a *analyzer, c *cmd, args []arg, cx ctx, redirected bool) error

var builtinHandlers map[string]builtinHandler

func init() {
	declare := func(a *analyzer, c *cmd, args []arg, _ ctx, _ bool) error {
		a.declArgs(c, args[1:])
		return nil
	}
	changes := func(a *analyzer, _ *cmd, args []arg, _ ctx, _ bool) error {
		if len(args) > 1 {
			a.facts.ChangesEnvironment = true
		}
		return nil
	}
	builtinHandlers = map[string]builtinHandler{
		"cd": cdBuiltin, "pushd": cdBuiltin, "popd": cdBuiltin,
		"export": declare, "declare": declare, "typeset": declare,
		"readonly": declare, "local": declare,
		"unset":   unsetBuiltin,
		"set":     setBuiltin,
		"shopt":   shoptBuiltin,
		"alias":   aliasBuiltin,
		"unalias": changes,
		"umask":   changes,
		"ulimit":  changes,
		"eval":    evalBuiltin,
		"source":  sourceBuiltin,
		".":       sourceBuiltin,
		"exec":    execBuiltin,
		"command": commandBuiltin,
		"builtin": builtinBuiltin,
		"trap":    trapBuiltin,
		"hash":    hashBuiltin,
		"enable":  enableBuiltin,
		"read":    readBuiltin,
		"mapfile": mapfileBuiltin, "readarray": mapfileBuiltin,
		"printf":  printfBuiltin,
		"getopts": getoptsBuiltin,
		"let":     letBuiltin,
		"fc":      opaqueBuiltin("fc", "history_edit"),
		"compgen": completeBuiltin, "complete": completeBuiltin,
		"bind": bindBuiltin,
	}
}

// cdBuiltin follows the working directory.
func cdBuiltin(a *analyzer, c *cmd, args []arg, _ ctx, _ bool) error {
	if c.Name == "popd" {
		a.cwdOK = false
		return nil
	}
	_, i, splitDyn := parseOptions(args, 1, optSpec{})
	ops := args[i:]
	switch {
	case splitDyn || len(ops) > 1:
		a.cwdOK = false
	case len(ops) == 0:
		if c.Name == "pushd" || a.opts.Home == "" {
			a.cwdOK = false
			return nil
		}
		a.cwd, a.cwdOK = a.opts.Home, true
	case ops[0].dyn || ops[0].val == "-" || strings.HasPrefix(ops[0].val, "+"):
		a.cwdOK = false
	default:
		tilde, glob := false, false
		for _, f := range ops[0].flags {
			tilde = tilde || f == flagTilde
			glob = glob || f == flagGlob
		}
		if glob {
			a.cdGlob(ops[0].val, tilde)
			return nil
		}
		p := a.resolvePath(ops[0].val, tilde)
		a.cwd, a.cwdOK = p, p != ""
	}
	return nil
}

// cdGlob follows cd to a glob: bash changes to the one match; with no
// match or several, the working directory is no longer known.
func (a *analyzer) cdGlob(pat string, tilde bool) {
	raw := a.rawPath(pat, tilde)
	a.cwdOK = false
	if raw == "" || a.opts.Remote {
		return
	}
	matches, ok := a.globFiles(raw)
	if !ok || len(matches) != 1 {
		return
	}
	if st, err := a.fs.stat(matches[0]); err == nil && st.IsDir() {
		a.cwd, a.cwdOK = matches[0], true
	}
}

// declArgs records the names export, declare and friends set when called
// as plain commands (builtin export, command declare).
func (a *analyzer) declArgs(c *cmd, args []arg) {
	a.facts.ChangesEnvironment = true
	for _, x := range args {
		switch {
		case x.dyn:
			a.assign("*")
			a.markDynamic(c, reasonDecl)
		case strings.HasPrefix(x.val, "-") || strings.HasPrefix(x.val, "+"):
			a.declOption(c, c.Name, x.val)
		default:
			name, _, _ := strings.Cut(x.val, "=")
			name, _, _ = strings.Cut(name, "[")
			a.assign(name)
		}
	}
}

// declOption notes the declare options that make later assignments act
// at a distance: -n (a name reference to another variable) and -i
// (values evaluated as arithmetic). For export, -n only unexports.
func (a *analyzer) declOption(c *cmd, variant, opt string) {
	if variant == "export" || variant == "readonly" {
		return
	}
	if strings.Contains(opt[1:], "n") {
		a.markDynamic(c, reasonNameref)
	}
	if strings.Contains(opt[1:], "i") {
		a.markDynamic(c, reasonArithmetic)
	}
}

func unsetBuiltin(a *analyzer, c *cmd, args []arg, _ ctx, _ bool) error {
	a.facts.ChangesEnvironment = true
	_, i, splitDyn := parseOptions(args, 1, optSpec{})
	if splitDyn {
		a.assign("*")
	}
	for _, x := range args[i:] {
		if x.dyn {
			a.assign("*")
			a.markDynamic(c, reasonDecl)
			continue
		}
		name, _, _ := strings.Cut(x.val, "[")
		a.assign(name)
	}
	return nil
}

func setBuiltin(a *analyzer, _ *cmd, args []arg, _ ctx, _ bool) error {
	if len(args) > 1 {
		a.facts.ChangesEnvironment = true
	}
	return nil
}

// shoptBuiltin: extglob and expand_aliases change how bash parses the
// lines after it, which the guard parsed with its own fixed settings.
func shoptBuiltin(a *analyzer, c *cmd, args []arg, _ ctx, _ bool) error {
	if len(args) == 1 {
		return nil
	}
	a.facts.ChangesEnvironment = true
	for _, x := range args[1:] {
		if x.dyn || x.val == "extglob" || x.val == "expand_aliases" {
			a.markDynamic(c, reasonParserOpt)
		}
	}
	return nil
}

// aliasBuiltin: an alias is expanded where its name is later used, which
// the guard does not follow, so the definition makes the text dynamic.
// Its value is still analysed as code.
func aliasBuiltin(a *analyzer, c *cmd, args []arg, cx ctx, _ bool) error {
	for _, x := range args[1:] {
		if x.dyn {
			a.markDynamic(c, reasonAlias)
			a.opaque(c, "alias", reasonDynamicExec)
			continue
		}
		_, value, ok := strings.Cut(x.val, "=")
		if !ok {
			continue // prints an alias
		}
		a.facts.ChangesEnvironment = true
		a.markDynamic(c, reasonAlias)
		if err := a.code(c, "alias", value, cx, false); err != nil {
			return err
		}
	}
	return nil
}

// evalBuiltin parses the joined words when they are all known.
func evalBuiltin(a *analyzer, c *cmd, args []arg, cx ctx, _ bool) error {
	_, i, _ := parseOptions(args, 1, optSpec{})
	if i >= len(args) {
		return nil
	}
	vals, ok := staticVals(args[i:])
	if !ok {
		a.assign("*")
		a.facts.ChangesEnvironment = true
		a.opaque(c, "eval", reasonDynamicExec)
		return nil
	}
	return a.code(c, "eval", strings.Join(vals, " "), cx, false)
}

// sourceBuiltin runs a file in the current shell: its code and its effect
// on variables are unknown.
func sourceBuiltin(a *analyzer, c *cmd, args []arg, _ ctx, _ bool) error {
	a.assign("*")
	a.facts.ChangesEnvironment = true
	a.opaque(c, "source", "script_file")
	return nil
}

// execBuiltin replaces the shell with a program found on PATH, or with no
// program makes its redirections permanent.
func execBuiltin(a *analyzer, c *cmd, args []arg, cx ctx, redirected bool) error {
	_, i, splitDyn := parseOptions(args, 1, optSpec{withArg: "a"})
	if splitDyn {
		a.opaque(c, "exec", "dynamic_wrapper_args")
		return nil
	}
	if i >= len(args) {
		if redirected {
			a.facts.ChangesEnvironment = true
		}
		return nil
	}
	return a.inner(c, "exec", args[i:], cx, true, nil)
}

// commandBuiltin runs a builtin or program, skipping functions; -v and -V
// only describe.
func commandBuiltin(a *analyzer, c *cmd, args []arg, cx ctx, _ bool) error {
	opts, i, splitDyn := parseOptions(args, 1, optSpec{})
	if splitDyn {
		a.opaque(c, "command", "dynamic_wrapper_args")
		return nil
	}
	if hasOpt(opts, "-v", "-V") || i >= len(args) {
		return nil
	}
	return a.direct(c, "command", args[i:], cx)
}

func builtinBuiltin(a *analyzer, c *cmd, args []arg, cx ctx, _ bool) error {
	if len(args) < 2 {
		return nil
	}
	return a.direct(c, "builtin", args[1:], cx)
}

// direct analyses argv that bash itself runs (command, builtin): builtins
// apply, functions do not.
func (a *analyzer) direct(c *cmd, via string, inner []arg, cx ctx) error {
	c.Wrapper = via
	nx, err := a.nest(cx, via)
	if err != nil {
		return err
	}
	nx.direct, nx.noFunc = true, true
	c.InnerParsed = true
	return a.run(inner, nx, []string{}, false)
}

// trapBuiltin: the first operand is code run on a signal or at exit.
func trapBuiltin(a *analyzer, c *cmd, args []arg, cx ctx, _ bool) error {
	opts, i, splitDyn := parseOptions(args, 1, optSpec{})
	if hasOpt(opts, "-l", "-p") && i >= len(args) {
		return nil
	}
	a.facts.ChangesEnvironment = true
	if splitDyn {
		a.opaque(c, "trap", "dynamic_wrapper_args")
		return nil
	}
	ops := args[i:]
	if len(ops) < 2 {
		return nil // prints or resets
	}
	if ops[0].dyn {
		a.opaque(c, "trap", reasonDynamicExec)
		return nil
	}
	if ops[0].val == "-" || ops[0].val == "" {
		return nil
	}
	return a.code(c, "trap", ops[0].val, cx, false)
}

// hashBuiltin: hash -p binds a name to any file.
func hashBuiltin(a *analyzer, c *cmd, args []arg, _ ctx, _ bool) error {
	opts, _, splitDyn := parseOptions(args, 1, optSpec{withArg: "pd"})
	if len(args) > 1 {
		a.facts.ChangesEnvironment = true
	}
	if splitDyn || hasOpt(opts, "-p") {
		a.markDynamic(c, reasonHash)
	}
	return nil
}

// enableBuiltin: -f loads a builtin from a shared object; -n turns a
// builtin off so that a program of that name runs instead.
func enableBuiltin(a *analyzer, c *cmd, args []arg, _ ctx, _ bool) error {
	opts, i, splitDyn := parseOptions(args, 1, optSpec{withArg: "f"})
	if hasOpt(opts, "-f") || splitDyn {
		a.opaque(c, "enable", "loads_builtin")
	}
	if i < len(args) || hasOpt(opts, "-d") {
		a.facts.ChangesEnvironment = true
		a.markDynamic(c, reasonBuiltinSet)
	}
	return nil
}

// assignOperands records the names a builtin sets from its operands, or
// fallback when there are none.
func (a *analyzer) assignOperands(c *cmd, ops []arg, fallback string) {
	a.facts.ChangesEnvironment = true
	if len(ops) == 0 {
		a.assign(fallback)
		return
	}
	for _, x := range ops {
		if x.dyn {
			a.assign("*")
			a.markDynamic(c, reasonDecl)
			continue
		}
		a.assign(x.val)
	}
}

func readBuiltin(a *analyzer, c *cmd, args []arg, _ ctx, _ bool) error {
	opts, i, _ := parseOptions(args, 1, optSpec{withArg: "adinNptu"})
	if o, ok := optValue(opts, "-a"); ok {
		a.assignOperands(c, []arg{{val: o.val, dyn: o.dyn}}, "")
		return nil
	}
	a.assignOperands(c, args[i:], "REPLY")
	return nil
}

func mapfileBuiltin(a *analyzer, c *cmd, args []arg, cx ctx, _ bool) error {
	opts, i, _ := parseOptions(args, 1, optSpec{withArg: "dnOsuCc"})
	a.assignOperands(c, args[i:], "MAPFILE")
	if o, ok := optValue(opts, "-C"); ok {
		// The callback is evaluated with an index and a line appended.
		if o.dyn {
			a.opaque(c, "mapfile -C", reasonDynamicExec)
			return nil
		}
		return a.code(c, "mapfile -C", o.val+" 0 line", cx, false)
	}
	return nil
}

func printfBuiltin(a *analyzer, c *cmd, args []arg, _ ctx, _ bool) error {
	if len(args) > 2 && args[1].val == "-v" && !args[1].dyn {
		a.assignOperands(c, args[2:3], "")
	} else if len(args) > 1 && strings.HasPrefix(args[1].val, "-v") && !args[1].dyn {
		a.assignOperands(c, []arg{{val: args[1].val[2:]}}, "")
	}
	return nil
}

func getoptsBuiltin(a *analyzer, c *cmd, args []arg, _ ctx, _ bool) error {
	if len(args) > 2 {
		a.assignOperands(c, args[2:3], "")
		a.assign("OPTIND")
		a.assign("OPTARG")
	}
	return nil
}

// letBuiltin is let written as a plain command ("let" or builtin let).
func letBuiltin(a *analyzer, c *cmd, args []arg, _ ctx, _ bool) error {
	a.facts.ChangesEnvironment = true
	for _, x := range args[1:] {
		if x.dyn || strings.IndexFunc(x.val, isNameRune) >= 0 {
			a.markDynamic(c, reasonArithmetic)
		}
	}
	return nil
}

func isNameRune(r rune) bool {
	return r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// completeBuiltin: compgen -C runs a command to produce completions.
func completeBuiltin(a *analyzer, c *cmd, args []arg, cx ctx, _ bool) error {
	opts, _, _ := parseOptions(args, 1,
		optSpec{withArg: "AGWCFXPSo"})
	if o, ok := optValue(opts, "-C"); ok {
		if o.dyn {
			a.opaque(c, "compgen -C", reasonDynamicExec)
			return nil
		}
		return a.code(c, "compgen -C", o.val, cx, false)
	}
	return nil
}

// bindBuiltin: bind -x binds a key to a shell command.
func bindBuiltin(a *analyzer, c *cmd, args []arg, _ ctx, _ bool) error {
	opts, _, _ := parseOptions(args, 1, optSpec{withArg: "mqufrx"})
	if hasOpt(opts, "-x") {
		a.opaque(c, "bind -x", "key_binding")
	}
	return nil
}

func opaqueBuiltin(wrapper, reason string) builtinHandler {
	return func(a *analyzer, c *cmd, _ []arg, _ ctx, _ bool) error {
		a.opaque(c, wrapper, reason)
		return nil
	}
}
