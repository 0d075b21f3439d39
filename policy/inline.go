package policy

import (
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// inlineConstants is a compiler stage that replaces every reference to a
// constant rule with the rule's value.
//
// OPA's evaluator looks a rule up and consults its cache each time a body
// refers to it, even when the rule is a literal list; on this machine that
// costs about a microsecond per reference, and the bundled policy names
// such lists (the read-only programs, the secret-path pattern) once per
// command or per path. Writing the literals out by hand would cost the
// policy its readability, so the engine does it when it compiles.
//
// A rule is constant when no other rule in any module may define a value
// at its path, above it or below it (see constantRules), and it takes no
// arguments, is complete (not a partial set or object), has no else
// branch, a body that is just "true" (x := value), and a value of at most
// maxInlineTerms terms with no references, variables, calls or
// comprehensions in it. A default rule with no other rule of its name
// counts too. A constant that some with statement replaces (with
// data.pkg.name as ...) is left alone, so that tests mocking it see their
// mock. The rules themselves stay: a query for one still finds it.
//
// The stage runs right after references are resolved, so that every
// reference to a rule is a full data ref by then. The engine compiles a
// policy as written before it compiles it with this stage, so that what
// compiles, and what its errors say, is OPA's judgement of the text.
var inlineConstantsStage = ast.CompilerStageDefinition{
	Name:       "InlineConstants",
	MetricName: "compile_stage_inline_constants",
	Stage:      inlineConstants,
}

func inlineConstants(c *ast.Compiler) *ast.Error {
	consts := constantRules(c.Modules)
	if len(consts) == 0 {
		return nil
	}
	replace := func(r ast.Ref) (ast.Value, error) {
		if len(r) < 2 || !ast.DefaultRootDocument.Equal(r[0]) {
			return r, nil
		}
		for n := len(r); n >= 2; n-- {
			v, ok := consts.lookup(r[:n])
			if !ok {
				continue
			}
			term := ast.NewTerm(v).SetLocation(r[0].Location)
			if n == len(r) {
				return term.Value, nil
			}
			// A lookup into the constant (kinds[k]) becomes a lookup
			// into the literal.
			out := make(ast.Ref, 0, len(r)-n+1)
			out = append(out, term)
			return append(out, r[n:]...), nil
		}
		return r, nil
	}
	for _, name := range sortedModuleNames(c.Modules) {
		ast.WalkRules(c.Modules[name], func(rule *ast.Rule) bool {
			for r := rule; r != nil; r = r.Else {
				r.Head.Value = transformTerm(r.Head.Value, replace)
				r.Head.Key = transformTerm(r.Head.Key, replace)
				if v, err := ast.TransformRefs(r.Body, replace); err == nil {
					r.Body = v.(ast.Body)
				}
				// Transform does not look inside some declarations
				// (some x in list), so they are done here, at any depth,
				// comprehensions in the head included.
				ast.WalkExprs(r, func(e *ast.Expr) bool {
					if decl, ok := e.Terms.(*ast.SomeDecl); ok {
						for i, sym := range decl.Symbols {
							decl.Symbols[i] = transformTerm(sym, replace)
						}
					}
					return false
				})
			}
			return false
		})
	}
	return nil
}

// transformTerm replaces the references under t; Transform hands back a
// bare value when t's own value was replaced.
func transformTerm(t *ast.Term, f func(ast.Ref) (ast.Value, error)) *ast.Term {
	if t == nil {
		return nil
	}
	v, err := ast.TransformRefs(t, f)
	if err != nil {
		return t
	}
	switch x := v.(type) {
	case *ast.Term:
		return x
	case ast.Value:
		t.Value = x
	}
	return t
}

// constants maps the full path of each constant rule to its value.
type constants map[string]ast.Value

func (cs constants) lookup(r ast.Ref) (ast.Value, bool) {
	if !r.IsGround() {
		return nil, false
	}
	v, ok := cs[r.String()]
	return v, ok
}

// maxInlineTerms bounds the size of a constant written into the rules:
// each reference gets its own copy, and OPA indexes a literal list after
// in by every element, so a long allowlist named in many rules would cost
// compile time and memory out of proportion. A larger constant is left
// as a rule. The default policy's longest list has under 100 entries.
const maxInlineTerms = 512

// constantRules finds the constant rules of mods (see inlineConstants).
func constantRules(mods map[string]*ast.Module) constants {
	type headed struct {
		rule *ast.Rule
		path ast.Ref
	}
	var all []headed
	mocked := map[string]bool{}
	for _, name := range sortedModuleNames(mods) {
		mod := mods[name]
		for _, rule := range mod.Rules {
			all = append(all, headed{rule, mod.Package.Path.Concat(headRef(rule))})
		}
		ast.WalkExprs(mod, func(e *ast.Expr) bool {
			for _, w := range e.With {
				if r, ok := w.Target.Value.(ast.Ref); ok {
					// A mock of a whole package, or of a prefix, covers
					// every rule below it.
					mocked[r.String()] = true
				}
			}
			return false
		})
	}
	out := constants{}
	for i, c := range all {
		if !c.path.IsGround() || isMocked(c.path.String(), mocked) {
			continue
		}
		v, ok := constantValue(c.rule)
		if !ok {
			continue
		}
		// Another rule that may define a value at, above or below this
		// path (overrides[k] := v above mode := "x", or a second rule of
		// the same name) makes the path's value depend on evaluation,
		// conflicts included.
		shared := false
		for j, o := range all {
			if j != i && overlaps(o.path, c.path) {
				shared = true
				break
			}
		}
		if !shared {
			out[c.path.String()] = v
		}
	}
	return out
}

// overlaps reports whether head refs a and b may name the same document or
// one inside the other: they agree wherever both are ground, a variable
// standing for anything.
func overlaps(a, b ast.Ref) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		if _, ok := x.Value.(ast.Var); ok && i > 0 {
			continue
		}
		if _, ok := y.Value.(ast.Var); ok && i > 0 {
			continue
		}
		if !x.Equal(y) {
			return false
		}
	}
	return true
}

// headRef is the rule's name as a ref of strings, as other rules' refs
// spell it once resolved (data.pkg.name, not data.pkg[name]).
func headRef(rule *ast.Rule) ast.Ref {
	ref := rule.Head.Ref().Copy()
	if v, ok := ref[0].Value.(ast.Var); ok {
		ref[0] = ast.StringTerm(string(v))
	}
	return ref
}

func isMocked(path string, mocked map[string]bool) bool {
	for m := range mocked {
		if m == path || len(path) > len(m) && path[:len(m)] == m && (path[len(m)] == '.' || path[len(m)] == '[') {
			return true
		}
	}
	return false
}

// constantValue returns the value of rule when it is constant.
func constantValue(rule *ast.Rule) (ast.Value, bool) {
	h := rule.Head
	if len(h.Args) > 0 || h.Key != nil || h.Value == nil || rule.Else != nil ||
		h.RuleKind() != ast.SingleValue || len(h.Ref()) != 1 {
		return nil, false
	}
	if len(rule.Body) != 1 || !isTrue(rule.Body[0]) || !plainValue(h.Value) ||
		termCount(h.Value) > maxInlineTerms {
		return nil, false
	}
	return h.Value.Value, true
}

func isTrue(e *ast.Expr) bool {
	if e.Negated || len(e.With) > 0 {
		return false
	}
	t, ok := e.Terms.(*ast.Term)
	return ok && ast.Boolean(true).Equal(t.Value)
}

// plainValue reports whether t holds only scalars, arrays, sets and
// objects.
func plainValue(t *ast.Term) bool {
	plain := true
	ast.WalkTerms(t, func(x *ast.Term) bool {
		switch x.Value.(type) {
		case ast.Null, ast.Boolean, ast.Number, ast.String, *ast.Array, ast.Set, ast.Object:
			return false
		default:
			plain = false
			return true
		}
	})
	return plain
}

// termCount is the number of terms in t, t included.
func termCount(t *ast.Term) int {
	n := 0
	ast.WalkTerms(t, func(*ast.Term) bool {
		n++
		return false
	})
	return n
}

func sortedModuleNames(mods map[string]*ast.Module) []string {
	names := make([]string, 0, len(mods))
	for n := range mods {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
