package shellfacts

import (
	"errors"
	"io"
	"regexp"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// Reasons a part is dynamic.
const (
	reasonParam       = "parameter_expansion"
	reasonCmdSubst    = "command_substitution"
	reasonProcSubst   = "process_substitution"
	reasonArithmetic  = "arithmetic"
	reasonLocale      = "locale_quoting"
	reasonGlobName    = "glob_in_name"
	reasonBraceName   = "brace_in_name"
	reasonRedirect    = "dynamic_redirect"
	reasonAmbiguous   = "ambiguous_redirect"
	reasonPath        = "path_assignment"
	reasonCodeVar     = "code_variable"
	reasonExportedFn  = "exported_function"
	reasonDecl        = "dynamic_declaration"
	reasonNameref     = "nameref"
	reasonAlias       = "alias"
	reasonHash        = "hash"
	reasonBuiltinSet  = "builtin_set_changed"
	reasonParserOpt   = "parser_option"
	reasonXargsInput  = "xargs_input"
	reasonFindPlace   = "find_placeholder"
	reasonUnexpanded  = "unexpandable"
	reasonDynamicExec = "dynamic_code"
)

// Flags on arguments and commands.
const (
	flagTilde   = "tilde"
	flagGlob    = "glob"
	flagANSIC   = "ansi_c_quoting"
	flagExtGlob = "extglob"
)

// arg is one word of a command after expansion.
type arg struct {
	// val is the value after quote removal, or the word's source text
	// when dyn is set.
	val string
	// dyn is set when the value is only known at run time.
	dyn bool
	// split is set for a dynamic value that may become zero or several
	// words ($x unquoted, "$@").
	split   bool
	brace   bool
	reasons []string
	flags   []string
}

// wordInfo collects what scanning one word found.
type wordInfo struct {
	dyn, split, glob, brace bool
	reasons                 []string
	flags                   []string
}

func (w *wordInfo) reason(r string) {
	w.dyn = true
	w.reasons = appendUnique(w.reasons, r)
}

func (w *wordInfo) flag(f string) { w.flags = appendUnique(w.flags, f) }

// errNoSubst stops the expander at substitutions; words holding them are
// reported as dynamic before expansion is tried.
var errNoSubst = errors.New("substitution not expanded")

// newExpandConfig returns a configuration with an empty environment and
// no way to run code. HOME and other users' homes map to themselves, so
// that ~ and ~user stay literal instead of becoming this machine's
// directories.
func newExpandConfig() *expand.Config {
	return &expand.Config{
		Env: expand.FuncEnviron(func(name string) string {
			if name == "HOME" {
				return "~"
			}
			if user, ok := strings.CutPrefix(name, "HOME "); ok {
				return "~" + user
			}
			return ""
		}),
		CmdSubst:  func(io.Writer, *syntax.CmdSubst) error { return errNoSubst },
		ProcSubst: func(*syntax.ProcSubst) (string, error) { return "", errNoSubst },
		ExtGlob:   true,
	}
}

// scanWord finds the dynamic parts of w and analyses the commands inside
// its substitutions.
func (a *analyzer) scanWord(w *syntax.Word, cx ctx) (wordInfo, error) {
	var wi wordInfo
	if w == nil || len(w.Parts) == 0 {
		return wi, nil
	}
	if err := a.scanParts(w.Parts, false, cx, &wi); err != nil {
		return wi, err
	}
	if lit, ok := w.Parts[0].(*syntax.Lit); ok && tildeRe.MatchString(lit.Value) {
		wi.flag(flagTilde)
	}
	if wi.brace {
		cp := *w
		wi.brace = syntax.SplitBraces(&cp)
	}
	return wi, nil
}

func (a *analyzer) scanParts(parts []syntax.WordPart, quoted bool, cx ctx, wi *wordInfo) error {
	for _, p := range parts {
		if err := a.scanPart(p, quoted, cx, wi); err != nil {
			return err
		}
	}
	return nil
}

func (a *analyzer) scanPart(p syntax.WordPart, quoted bool, cx ctx, wi *wordInfo) error {
	switch p := p.(type) {
	case *syntax.Lit:
		if !quoted {
			a.scanLit(p.Value, wi)
		}
	case *syntax.SglQuoted:
		if p.Dollar {
			wi.flag(flagANSIC)
		}
	case *syntax.DblQuoted:
		if p.Dollar {
			wi.reason(reasonLocale)
			a.dynamic(reasonLocale)
		}
		return a.scanParts(p.Parts, true, cx, wi)
	case *syntax.ParamExp:
		wi.reason(reasonParam)
		a.dynamic(reasonParam)
		if !quoted || listParam(p) {
			wi.split = true
		}
		return a.scanParam(p, cx, wi)
	case *syntax.CmdSubst:
		a.facts.Substitutions = true
		wi.reason(reasonCmdSubst)
		a.dynamic(reasonCmdSubst)
		if !quoted {
			wi.split = true
		}
		return a.substitution(p.Stmts, cx, false)
	case *syntax.ProcSubst:
		a.facts.Substitutions = true
		wi.reason(reasonProcSubst)
		a.dynamic(reasonProcSubst)
		return a.substitution(p.Stmts, cx, p.Op == syntax.CmdOut)
	case *syntax.ArithmExp:
		return a.arith(p.X, cx, wi)
	case *syntax.ExtGlob:
		wi.glob = true
		wi.flag(flagGlob)
		wi.flag(flagExtGlob)
	default:
		// Parts of other shell dialects; never produced in bash mode.
		wi.reason(reasonUnexpanded)
		a.dynamic(reasonUnexpanded)
	}
	return nil
}

// scanLit notes unquoted glob and brace characters in a literal.
func (a *analyzer) scanLit(s string, wi *wordInfo) {
	open := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '*', '?':
			wi.glob = true
		case '[':
			open = true
		case ']':
			if open {
				wi.glob = true
			}
		case '{':
			wi.brace = true
		}
	}
	if wi.glob {
		wi.flag(flagGlob)
	}
}

// listParam reports whether a quoted parameter expansion still yields a
// list of words: "$@", "${a[@]}", "${!prefix@}".
func listParam(p *syntax.ParamExp) bool {
	if p.Param != nil && p.Param.Value == "@" {
		return true
	}
	if p.Names == syntax.NamesPrefixWords {
		return true
	}
	if w, ok := p.Index.(*syntax.Word); ok && w.Lit() == "@" {
		return true
	}
	return false
}

// scanParam looks into the words and arithmetic nested in a parameter
// expansion, which may hold substitutions of their own.
func (a *analyzer) scanParam(p *syntax.ParamExp, cx ctx, wi *wordInfo) error {
	if p.NestedParam != nil {
		if err := a.scanPart(p.NestedParam, true, cx, wi); err != nil {
			return err
		}
	}
	var ariths []syntax.ArithmExpr
	if p.Index != nil {
		ariths = append(ariths, p.Index)
	}
	if p.Slice != nil {
		ariths = append(ariths, p.Slice.Offset, p.Slice.Length)
	}
	for _, x := range ariths {
		if x == nil {
			continue
		}
		if err := a.arith(x, cx, wi); err != nil {
			return err
		}
	}
	var words []*syntax.Word
	if p.Repl != nil {
		words = append(words, p.Repl.Orig, p.Repl.With)
	}
	if p.Exp != nil {
		words = append(words, p.Exp.Word)
	}
	for _, w := range words {
		if w == nil {
			continue
		}
		if err := a.scanParts(w.Parts, true, cx, wi); err != nil {
			return err
		}
	}
	return nil
}

// tildeRe matches a literal bash expands ~ in: at the start of a word, or
// after the = of a word shaped like an assignment (a=~/x), as bash does
// outside POSIX mode.
var tildeRe = regexp.MustCompile(`^(~|[A-Za-z_][A-Za-z0-9_]*=~)`)

var numberRe = regexp.MustCompile(`^([0-9]+|0[xX][0-9a-fA-F]+|[0-9]+#[0-9a-zA-Z@_]+)$`)

// arith scans an arithmetic expression. Bash evaluates a variable's value
// as arithmetic again, and an array subscript in it runs command
// substitutions, so any name makes the expression dynamic.
func (a *analyzer) arith(x syntax.ArithmExpr, cx ctx, wi *wordInfo) error {
	switch x := x.(type) {
	case *syntax.Word:
		if lit := x.Lit(); lit != "" {
			if !numberRe.MatchString(lit) {
				wi.reason(reasonArithmetic)
				a.dynamic(reasonArithmetic)
			}
			return nil
		}
		return a.scanParts(x.Parts, false, cx, wi)
	case *syntax.BinaryArithm:
		if err := a.arith(x.X, cx, wi); err != nil {
			return err
		}
		return a.arith(x.Y, cx, wi)
	case *syntax.UnaryArithm:
		return a.arith(x.X, cx, wi)
	case *syntax.ParenArithm:
		return a.arith(x.X, cx, wi)
	case *syntax.FlagsArithm:
		if x.X != nil {
			return a.arith(x.X, cx, wi)
		}
	case nil:
	default:
		wi.reason(reasonArithmetic)
		a.dynamic(reasonArithmetic)
	}
	return nil
}

// substitution analyses the statements of $(..), `..`, <(..) or >(..);
// they run in a subshell one level deeper. Those of >(..) read a pipe.
func (a *analyzer) substitution(stmts []*syntax.Stmt, cx ctx, readsPipe bool) error {
	nx, err := a.nest(cx, "")
	if err != nil {
		return err
	}
	if readsPipe {
		nx.stdin = stdinPipe
	}
	defer a.keepCwd()()
	return a.stmts(stmts, nx)
}

// words expands command words into arguments.
func (a *analyzer) words(ws []*syntax.Word, cx ctx) ([]arg, error) {
	args := make([]arg, 0, len(ws))
	for _, w := range ws {
		wi, err := a.scanWord(w, cx)
		if err != nil {
			return nil, err
		}
		if wi.dyn {
			args = append(args, arg{
				val: a.source(w, cx), dyn: true, split: wi.split,
				reasons: wi.reasons, flags: wi.flags,
			})
			continue
		}
		fields, err := a.expandWord(w)
		if err != nil {
			return nil, err
		}
		for _, f := range fields {
			args = append(args, arg{val: f, brace: wi.brace, flags: wi.flags})
		}
	}
	return args, nil
}

// expandWord removes quotes and expands braces in a word known to hold no
// dynamic part.
func (a *analyzer) expandWord(w *syntax.Word) ([]string, error) {
	var out []string
	for f, err := range expand.FieldsSeq(a.cfg, w) {
		if err != nil {
			if strings.Contains(err.Error(), "brace expansion") {
				return nil, &LimitError{Limit: "fields", Max: maxFields}
			}
			return nil, &ParseError{Msg: "cannot expand a word", err: err}
		}
		a.fields++
		if a.fields > maxFields {
			return nil, &LimitError{Limit: "fields", Max: maxFields}
		}
		out = append(out, f)
	}
	return out, nil
}

// literal expands a static word as bash does for redirect targets and
// here-strings: no field splitting, but brace expansion for targets.
func (a *analyzer) literal(w *syntax.Word) (string, error) {
	s, err := expand.Literal(a.cfg, w)
	if err != nil {
		return "", &ParseError{Msg: "cannot expand a word", err: err}
	}
	return s, nil
}

// source returns the text of a node as written.
func (a *analyzer) source(n syntax.Node, cx ctx) string {
	start, end := n.Pos().Offset(), n.End().Offset()
	if start < end && end <= uint(len(cx.src)) {
		return cx.src[start:end]
	}
	var b strings.Builder
	if err := syntax.NewPrinter().Print(&b, n); err != nil {
		return "?"
	}
	return b.String()
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
