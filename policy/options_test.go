package policy

import (
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestOptionCheckedProgramsAreComplete keeps the shell policy's prefilter
// honest: every program that a rule about options names (c.base == "x" or
// c.base in {...} in unsafe_flag, program_options and reads_unseen_names) must be in
// option_checked_programs, or its rule would never be reached.
func TestOptionCheckedProgramsAreComplete(t *testing.T) {
	var src string
	for _, m := range Bundled() {
		if m.Name == "default/shell.rego" {
			src = m.Source
		}
	}
	if src == "" {
		t.Fatal("default/shell.rego is not bundled")
	}
	mod, err := ast.ParseModuleWithOpts("shell.rego", src, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	named := map[string]bool{}
	for _, r := range mod.Rules {
		switch r.Head.Name.String() {
		case "option_checked_programs":
			set, ok := r.Head.Value.Value.(ast.Set)
			if !ok {
				t.Fatalf("option_checked_programs is %T, want a set literal", r.Head.Value.Value)
			}
			set.Foreach(func(x *ast.Term) { listed = append(listed, string(x.Value.(ast.String))) })
		case "unsafe_flag", "program_options", "reads_unseen_names":
			for _, name := range baseNames(r.Body) {
				named[name] = true
			}
		}
	}
	if len(listed) == 0 || len(named) < 10 {
		t.Fatalf("parsed %d listed and %d named programs; the rules changed shape", len(listed), len(named))
	}
	for name := range named {
		if !slices.Contains(listed, name) {
			t.Errorf("%s has an option rule but is not in option_checked_programs", name)
		}
	}
}

// baseNames returns the strings a body compares c.base with.
func baseNames(body ast.Body) []string {
	var out []string
	isBase := func(t *ast.Term) bool {
		ref, ok := t.Value.(ast.Ref)
		return ok && len(ref) == 2 && ref[1].Equal(ast.StringTerm("base"))
	}
	for _, e := range body {
		if !e.IsCall() {
			continue
		}
		ops := e.Operands()
		if len(ops) != 2 {
			continue
		}
		switch {
		case e.Operator().Equal(ast.Equal.Ref()) || e.Operator().Equal(ast.Equality.Ref()):
			for i, o := range ops {
				if s, ok := o.Value.(ast.String); ok && isBase(ops[1-i]) {
					out = append(out, string(s))
				}
			}
		case e.Operator().Equal(ast.Member.Ref()) && isBase(ops[0]):
			if set, ok := ops[1].Value.(ast.Set); ok {
				set.Foreach(func(x *ast.Term) {
					if s, ok := x.Value.(ast.String); ok {
						out = append(out, string(s))
					}
				})
			}
		}
	}
	return out
}
