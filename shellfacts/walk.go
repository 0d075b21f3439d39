package shellfacts

import (
	"path/filepath"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// stdinKind says where a command's standard input comes from.
type stdinKind int

const (
	stdinInherit stdinKind = iota // whatever the shell was given
	stdinPipe                     // an earlier pipeline stage
	stdinFile                     // a file or a duplicated descriptor
	stdinDoc                      // a here-document or here-string
)

// ctx is the context a piece of syntax is analysed in.
type ctx struct {
	depth int
	via   string
	// src is the text the current syntax tree was parsed from.
	src string
	// direct is set when bash itself runs the command, so that builtins
	// and functions apply; argv run by an external wrapper is looked up
	// on PATH only.
	direct bool
	// noFunc is set under the command and builtin builtins.
	noFunc bool
	// noResolve is set when PATH lookup here says nothing (busybox
	// applets, commands inside chroot).
	noResolve bool
	// extraArgs is set when words unknown to the guard are appended to
	// the command (xargs).
	extraArgs bool
	stdin     stdinKind
	// doc is the here-document text when stdin is stdinDoc and docOK.
	doc   string
	docOK bool
}

// cmd is a Command under construction.
type cmd struct {
	Command
	direct, noFunc bool
}

func (c *cmd) flag(f string) { c.Flags = appendUnique(c.Flags, f) }

// analyzer holds the state of one Analyze call.
type analyzer struct {
	opts  Options
	facts Facts
	cmds  []*cmd
	cfg   *expand.Config
	// cwd is the working directory at the point being analysed; cwdOK is
	// false once it can no longer be known.
	cwd   string
	cwdOK bool
	// workdir is Options.Workdir with links followed, what PathFact.Inside
	// compares against.
	workdir string
	fields  int
	funcs   map[string]bool
	// fs holds what this analysis has read of the file system: a
	// command line names the same directories (the working directory,
	// the PATH entries) again and again, and each lookup costs a system
	// call per path component.
	fs *fsView
}

func newAnalyzer(opts Options) *analyzer {
	a := &analyzer{
		opts:  opts,
		cfg:   newExpandConfig(),
		cwd:   opts.Workdir,
		cwdOK: opts.Workdir != "",
		funcs: map[string]bool{},
		fs:    newFSView(),
		facts: Facts{
			Commands: []Command{}, Redirects: []Redirect{},
			Assignments: []string{}, DynamicReasons: []string{},
			Flags: []string{}, Functions: []string{},
			Words: []string{}, Programs: []string{},
		},
	}
	a.workdir = opts.Workdir
	if a.workdir != "" && !opts.Remote {
		a.workdir = a.physical(a.workdir)
	}
	return a
}

// dynamic records that some part is only known at run time.
func (a *analyzer) dynamic(reason string) {
	a.facts.Dynamic = true
	a.facts.DynamicReasons = appendUnique(a.facts.DynamicReasons, reason)
}

// markDynamic marks a command dynamic.
func (a *analyzer) markDynamic(c *cmd, reasons ...string) {
	c.Dynamic = true
	for _, r := range reasons {
		c.DynamicReasons = appendUnique(c.DynamicReasons, r)
		a.dynamic(r)
	}
}

// opaque marks a command as running code the guard cannot read.
func (a *analyzer) opaque(c *cmd, wrapper, reason string) {
	c.Opaque = true
	if c.Wrapper == "" {
		c.Wrapper = wrapper
	}
	c.flag(reason)
}

// assign records a variable name set by the text.
func (a *analyzer) assign(name string) {
	a.facts.Assignments = appendUnique(a.facts.Assignments, name)
	switch {
	case name == "PATH":
		a.dynamic(reasonPath)
	case codeVariables[name]:
		a.dynamic(reasonCodeVar)
	case strings.HasPrefix(name, "BASH_FUNC_"):
		a.dynamic(reasonExportedFn)
	}
}

// codeVariables are variables whose value bash or a child shell runs as
// code: start-up files and prompts (PS4 under set -x).
var codeVariables = map[string]bool{
	"BASH_ENV": true, "ENV": true, "PROMPT_COMMAND": true,
	"PS0": true, "PS1": true, "PS2": true, "PS4": true,
}

// nest enters a deeper level, labelled by via when it is a wrapper.
func (a *analyzer) nest(cx ctx, via string) (ctx, error) {
	cx.depth++
	if cx.depth > a.opts.MaxDepth {
		return cx, &LimitError{Limit: "depth", Max: a.opts.MaxDepth}
	}
	a.facts.Depth = max(a.facts.Depth, cx.depth)
	if via != "" {
		if cx.via != "" {
			cx.via += " -> " + via
		} else {
			cx.via = via
		}
	}
	cx.docOK = false
	return cx, nil
}

// keepCwd saves the working directory and returns a function restoring
// it, for parts that run in a subshell or another process.
func (a *analyzer) keepCwd() func() {
	cwd, ok := a.cwd, a.cwdOK
	return func() { a.cwd, a.cwdOK = cwd, ok }
}

// branch returns a function to call after a part that may or may not
// run: if the working directory changed inside, it is no longer known.
func (a *analyzer) branch() func() {
	cwd, ok := a.cwd, a.cwdOK
	return func() {
		if a.cwd != cwd || a.cwdOK != ok {
			a.cwdOK = false
		}
	}
}

func (a *analyzer) file(f *syntax.File, cx ctx) error {
	return a.stmts(f.Stmts, cx)
}

func (a *analyzer) stmts(list []*syntax.Stmt, cx ctx) error {
	if len(list) > 1 {
		a.facts.Lists += len(list) - 1
	}
	for i, s := range list {
		// A statement that ends without ';' or '&' before another one was
		// ended by a newline: the second command sits on a line of its own,
		// where a reader of the first line does not see it.
		if i > 0 && !list[i-1].Semicolon.IsValid() {
			a.facts.Flags = appendUnique(a.facts.Flags, "newline_list")
		}
		if err := a.stmt(s, cx); err != nil {
			return err
		}
	}
	return nil
}

func (a *analyzer) stmt(s *syntax.Stmt, cx ctx) error {
	if s.Background || s.Coprocess || s.Disown {
		a.facts.Background = true
		defer a.keepCwd()()
	}
	for _, r := range s.Redirs {
		if err := a.redirect(r, &cx); err != nil {
			return err
		}
	}
	if s.Cmd == nil {
		return nil
	}
	return a.command(s.Cmd, cx, len(s.Redirs) > 0)
}

func (a *analyzer) command(c syntax.Command, cx ctx, redirected bool) error {
	switch c := c.(type) {
	case *syntax.CallExpr:
		return a.call(c, cx, redirected)
	case *syntax.BinaryCmd:
		return a.binary(c, cx)
	case *syntax.Subshell:
		defer a.keepCwd()()
		return a.stmts(c.Stmts, cx)
	case *syntax.Block:
		return a.stmts(c.Stmts, cx)
	case *syntax.IfClause:
		defer a.branch()()
		return a.ifClause(c, cx)
	case *syntax.WhileClause:
		defer a.branch()()
		if err := a.stmts(c.Cond, cx); err != nil {
			return err
		}
		return a.stmts(c.Do, cx)
	case *syntax.ForClause:
		defer a.branch()()
		return a.forClause(c, cx)
	case *syntax.CaseClause:
		defer a.branch()()
		return a.caseClause(c, cx)
	case *syntax.FuncDecl:
		return a.funcDecl(c, cx)
	case *syntax.ArithmCmd:
		return a.arith(c.X, cx, &wordInfo{})
	case *syntax.TestClause:
		return a.test(c.X, cx)
	case *syntax.DeclClause:
		return a.decl(c, cx)
	case *syntax.LetClause:
		return a.let(c, cx)
	case *syntax.TimeClause:
		if c.Stmt == nil {
			return nil
		}
		return a.stmt(c.Stmt, cx)
	case *syntax.CoprocClause:
		a.facts.Background = true
		defer a.keepCwd()()
		return a.stmt(c.Stmt, cx)
	}
	return &ParseError{Msg: "unsupported shell construct"}
}

func (a *analyzer) binary(c *syntax.BinaryCmd, cx ctx) error {
	switch c.Op {
	case syntax.Pipe, syntax.PipeAll:
		// Each stage runs in a subshell; the right one reads the left.
		a.facts.Pipelines++
		restore := a.keepCwd()
		if err := a.stmt(c.X, cx); err != nil {
			return err
		}
		restore()
		right := cx
		right.stdin, right.docOK = stdinPipe, false
		defer restore()
		return a.stmt(c.Y, right)
	default:
		a.facts.Lists++
		if err := a.stmt(c.X, cx); err != nil {
			return err
		}
		defer a.branch()()
		return a.stmt(c.Y, cx)
	}
}

func (a *analyzer) ifClause(c *syntax.IfClause, cx ctx) error {
	for ; c != nil; c = c.Else {
		if err := a.stmts(c.Cond, cx); err != nil {
			return err
		}
		if err := a.stmts(c.Then, cx); err != nil {
			return err
		}
	}
	return nil
}

func (a *analyzer) forClause(c *syntax.ForClause, cx ctx) error {
	switch l := c.Loop.(type) {
	case *syntax.WordIter:
		a.assign(l.Name.Value)
		a.facts.ChangesEnvironment = true
		for _, w := range l.Items {
			if _, err := a.scanWord(w, cx); err != nil {
				return err
			}
		}
	case *syntax.CStyleLoop:
		for _, x := range []syntax.ArithmExpr{l.Init, l.Cond, l.Post} {
			if x == nil {
				continue
			}
			if err := a.arith(x, cx, &wordInfo{}); err != nil {
				return err
			}
		}
	}
	return a.stmts(c.Do, cx)
}

func (a *analyzer) caseClause(c *syntax.CaseClause, cx ctx) error {
	if _, err := a.scanWord(c.Word, cx); err != nil {
		return err
	}
	for _, item := range c.Items {
		for _, p := range item.Patterns {
			if _, err := a.scanWord(p, cx); err != nil {
				return err
			}
		}
		if err := a.stmts(item.Stmts, cx); err != nil {
			return err
		}
	}
	return nil
}

func (a *analyzer) funcDecl(c *syntax.FuncDecl, cx ctx) error {
	a.facts.FunctionDefs = true
	a.facts.ChangesEnvironment = true
	names := c.Names
	if c.Name != nil {
		names = append(names, c.Name)
	}
	for _, n := range names {
		a.funcs[n.Value] = true
		a.facts.Functions = appendUnique(a.facts.Functions, n.Value)
	}
	// The body runs whenever the function is called, if at all.
	defer a.branch()()
	return a.stmt(c.Body, cx)
}

// test scans a [[ ]] expression. Its arithmetic operators evaluate their
// operands as arithmetic, and -v evaluates an array subscript.
func (a *analyzer) test(x syntax.TestExpr, cx ctx) error {
	switch x := x.(type) {
	case *syntax.Word:
		_, err := a.scanWord(x, cx)
		return err
	case *syntax.BinaryTest:
		if x.Op >= syntax.TsEql && x.Op <= syntax.TsGtr {
			for _, side := range []syntax.TestExpr{x.X, x.Y} {
				if w, ok := side.(*syntax.Word); ok {
					if lit := w.Lit(); lit != "" && !numberRe.MatchString(lit) {
						a.dynamic(reasonArithmetic)
					}
				}
			}
		}
		if err := a.test(x.X, cx); err != nil {
			return err
		}
		return a.test(x.Y, cx)
	case *syntax.UnaryTest:
		if x.Op == syntax.TsVarSet || x.Op == syntax.TsRefVar {
			if w, ok := x.X.(*syntax.Word); ok && strings.Contains(w.Lit(), "[") {
				a.dynamic(reasonArithmetic)
			}
		}
		return a.test(x.X, cx)
	case *syntax.ParenTest:
		return a.test(x.X, cx)
	}
	return nil
}

// assignment handles NAME=value, NAME[i]=value and NAME=(array).
func (a *analyzer) assignment(as *syntax.Assign, cx ctx) error {
	if as.Name != nil {
		a.assign(as.Name.Value)
	}
	if as.Index != nil {
		if err := a.arith(as.Index, cx, &wordInfo{}); err != nil {
			return err
		}
	}
	if as.Value != nil {
		if _, err := a.scanWord(as.Value, cx); err != nil {
			return err
		}
	}
	if as.Array != nil {
		for _, el := range as.Array.Elems {
			if el.Index != nil {
				if err := a.arith(el.Index, cx, &wordInfo{}); err != nil {
					return err
				}
			}
			if el.Value != nil {
				if _, err := a.scanWord(el.Value, cx); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (a *analyzer) call(ce *syntax.CallExpr, cx ctx, redirected bool) error {
	env := []string{}
	for _, as := range ce.Assigns {
		if err := a.assignment(as, cx); err != nil {
			return err
		}
		if as.Name != nil {
			env = append(env, as.Name.Value)
		}
	}
	if len(ce.Args) == 0 {
		// A bare assignment persists in the shell.
		a.facts.ChangesEnvironment = true
		return nil
	}
	args, err := a.words(ce.Args, cx)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return nil
	}
	return a.run(args, cx, env, redirected)
}

// decl handles export, declare, typeset, local, readonly and nameref
// written as keywords, which the parser gives as assignments.
func (a *analyzer) decl(d *syntax.DeclClause, cx ctx) error {
	a.facts.ChangesEnvironment = true
	c, err := a.newCommand([]arg{{val: d.Variant.Value}}, cx, []string{})
	if err != nil {
		return err
	}
	for _, as := range d.Args {
		c.Args = append(c.Args, a.source(as, cx))
		if !as.Naked || as.Name != nil {
			if err := a.assignment(as, cx); err != nil {
				return err
			}
			continue
		}
		// A naked word: an option, or text that becomes an assignment or
		// a name at run time.
		wi, err := a.scanWord(as.Value, cx)
		if err != nil {
			return err
		}
		if wi.dyn {
			a.assign("*")
			a.markDynamic(c, reasonDecl)
			continue
		}
		val, err := a.literal(as.Value)
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(val, "-") || strings.HasPrefix(val, "+"):
			a.declOption(c, d.Variant.Value, val)
		default:
			name, _, _ := strings.Cut(val, "=")
			name, _, _ = strings.Cut(name, "[")
			a.assign(name)
		}
	}
	return nil
}

// let evaluates arithmetic; every assignment in it sets a variable.
func (a *analyzer) let(l *syntax.LetClause, cx ctx) error {
	a.facts.ChangesEnvironment = true
	c, err := a.newCommand([]arg{{val: "let"}}, cx, []string{})
	if err != nil {
		return err
	}
	for _, x := range l.Exprs {
		c.Args = append(c.Args, a.source(x, cx))
		wi := &wordInfo{}
		if err := a.arith(x, cx, wi); err != nil {
			return err
		}
		if wi.dyn {
			a.markDynamic(c, wi.reasons...)
		}
		syntax.Walk(x, func(n syntax.Node) bool {
			var target syntax.ArithmExpr
			switch n := n.(type) {
			case *syntax.BinaryArithm:
				if isAssignOp(n.Op) {
					target = n.X
				}
			case *syntax.UnaryArithm:
				if n.Op == syntax.Inc || n.Op == syntax.Dec {
					target = n.X
				}
			}
			if w, ok := target.(*syntax.Word); ok && w.Lit() != "" {
				a.assign(w.Lit())
			}
			return true
		})
	}
	return nil
}

func isAssignOp(op syntax.BinAritOperator) bool {
	switch op {
	case syntax.Assgn, syntax.AddAssgn, syntax.SubAssgn, syntax.MulAssgn,
		syntax.QuoAssgn, syntax.RemAssgn, syntax.AndAssgn, syntax.OrAssgn,
		syntax.XorAssgn, syntax.ShlAssgn, syntax.ShrAssgn, syntax.PowAssgn:
		return true
	}
	return false
}

// redirect records one redirection and updates where stdin comes from.
func (a *analyzer) redirect(r *syntax.Redirect, cx *ctx) error {
	rd := Redirect{Op: r.Op.String(), Paths: []PathFact{}}
	toStdin := r.N == nil || r.N.Value == "0"
	if r.N != nil {
		rd.Fd = r.N.Value
		if name, ok := strings.CutPrefix(rd.Fd, "{"); ok {
			a.assign(strings.TrimSuffix(name, "}"))
			a.facts.ChangesEnvironment = true
		}
	}

	switch r.Op {
	case syntax.Hdoc, syntax.DashHdoc:
		if err := a.hereDoc(r, cx, toStdin); err != nil {
			return err
		}
	case syntax.WordHdoc:
		wi, err := a.scanWord(r.Word, *cx)
		if err != nil {
			return err
		}
		if toStdin {
			cx.stdin, cx.doc, cx.docOK = stdinDoc, "", false
			if !wi.dyn {
				s, err := a.literal(r.Word)
				if err != nil {
					return err
				}
				cx.doc, cx.docOK = s+"\n", true
			}
		}
	default:
		if err := a.fileRedirect(r, &rd, *cx); err != nil {
			return err
		}
		if toStdin && (r.Op == syntax.RdrIn || r.Op == syntax.RdrInOut ||
			r.Op == syntax.DplIn) {
			cx.stdin, cx.docOK = stdinFile, false
		}
	}
	a.facts.Redirects = append(a.facts.Redirects, rd)
	return nil
}

func (a *analyzer) hereDoc(r *syntax.Redirect, cx *ctx, toStdin bool) error {
	if toStdin {
		cx.stdin, cx.doc, cx.docOK = stdinDoc, "", true
	}
	if r.Hdoc == nil {
		return nil
	}
	wi := wordInfo{}
	if err := a.scanParts(r.Hdoc.Parts, true, *cx, &wi); err != nil {
		return err
	}
	if !toStdin {
		return nil
	}
	if wi.dyn {
		cx.docOK = false
		return nil
	}
	body, err := expand.Document(a.cfg, r.Hdoc)
	if err != nil {
		cx.docOK = false
		return nil
	}
	cx.doc = body
	return nil
}

// fileRedirect fills rd for redirections whose word names a file or a
// descriptor.
func (a *analyzer) fileRedirect(r *syntax.Redirect, rd *Redirect, cx ctx) error {
	wi, err := a.scanWord(r.Word, cx)
	if err != nil {
		return err
	}
	if wi.dyn {
		rd.Dynamic = true
		a.dynamic(reasonRedirect)
		rd.Writes = r.Op != syntax.RdrIn && r.Op != syntax.DplIn
		return nil
	}
	fields, err := a.expandWord(r.Word)
	if err != nil {
		return err
	}
	if len(fields) != 1 {
		rd.Dynamic = true
		a.dynamic(reasonAmbiguous)
		return nil
	}
	target := fields[0]
	if (r.Op == syntax.DplIn || r.Op == syntax.DplOut) && isDescriptor(target) {
		rd.Target = target
		return nil
	}
	rd.Target = target
	if strings.HasPrefix(target, "/dev/tcp/") || strings.HasPrefix(target, "/dev/udp/") {
		// bash opens a network connection itself.
		a.facts.Flags = appendUnique(a.facts.Flags, "network_redirect")
	}
	switch r.Op {
	case syntax.RdrIn, syntax.DplIn:
	default:
		rd.Writes = !harmlessSink(target)
	}
	tilde, glob := false, false
	for _, f := range wi.flags {
		tilde = tilde || f == flagTilde
		glob = glob || f == flagGlob
	}
	rd.ResolvedTarget = a.resolvePath(target, tilde)
	if glob && !a.opts.Remote {
		// bash opens the one match of a glob target.
		rd.Paths = append(rd.Paths, a.globPaths(target, tilde)...)
	}
	rd.Paths = append(rd.Paths, a.pathFact(target, tilde))
	return nil
}

// isDescriptor reports whether a >& or <& word names a descriptor (1, 1-,
// -) rather than a file.
func isDescriptor(s string) bool {
	s = strings.TrimSuffix(s, "-")
	if s == "" {
		return true
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// harmlessSink reports whether writing to path stores nothing.
func harmlessSink(path string) bool {
	switch path {
	case "/dev/null", "/dev/stdout", "/dev/stderr":
		return true
	}
	return false
}

// resolvePath makes p absolute against the working directory, or against
// Options.Home when it starts with an expanded ~. It returns "" when the
// base is unknown.
func (a *analyzer) resolvePath(p string, tilde bool) string {
	if tilde && (p == "~" || strings.HasPrefix(p, "~/")) {
		if a.opts.Home == "" {
			return ""
		}
		return filepath.Join(a.opts.Home, p[1:])
	}
	if tilde && strings.HasPrefix(p, "~") {
		return "" // another user's home
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	if !a.cwdOK {
		return ""
	}
	return filepath.Join(a.cwd, p)
}

// finish copies the commands into the facts.
func (a *analyzer) finish() *Facts {
	for _, c := range a.cmds {
		if c.direct && !c.noFunc && !c.Dynamic && a.funcs[c.Name] &&
			!strings.Contains(c.Name, "/") {
			c.Function, c.Builtin = true, false
			c.Resolved, c.ResolvedBase = "", ""
		}
		a.facts.Opaque = a.facts.Opaque || c.Opaque
		for _, f := range c.Flags {
			a.facts.Flags = appendUnique(a.facts.Flags, f)
		}
		a.facts.Commands = append(a.facts.Commands, c.Command)
	}
	a.facts.Index()
	return &a.facts
}

// Index sets Words and Programs from Commands and Redirects. Analyze
// calls it; a reader of facts recorded before the two lists existed calls
// it to add them.
func (f *Facts) Index() {
	f.Words, f.Programs = []string{}, []string{}
	seen := map[string]bool{}
	add := func(list *[]string, s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			*list = append(*list, s)
		}
	}
	for _, c := range f.Commands {
		for _, w := range c.Args {
			add(&f.Words, w)
		}
		for _, p := range c.Paths {
			if !p.Below {
				add(&f.Words, p.Arg)
				add(&f.Words, p.Resolved)
			}
		}
	}
	for _, r := range f.Redirects {
		add(&f.Words, r.Target)
		add(&f.Words, r.ResolvedTarget)
		for _, p := range r.Paths {
			add(&f.Words, p.Arg)
			add(&f.Words, p.Resolved)
		}
	}
	clear(seen)
	for _, c := range f.Commands {
		add(&f.Programs, c.Name)
		add(&f.Programs, c.Base)
		add(&f.Programs, c.ResolvedBase)
	}
}
