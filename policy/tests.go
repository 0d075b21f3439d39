package policy

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestResult is the outcome of one Rego test rule.
type TestResult struct {
	Package string
	Name    string
	Pass    bool
	Error   string
}

// RunTests runs the test_ rules of mods (policy and test files together).
// With a schema, the modules are type-checked against it as the engine
// does, so a rule reading a misspelled input field fails here too.
func RunTests(ctx context.Context, mods []Module, schema []byte) ([]TestResult, error) {
	parsed := map[string]*ast.Module{}
	for _, m := range mods {
		pm, err := ast.ParseModuleWithOpts(m.Name, m.Source, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, fmt.Errorf("policy: parse %s: %w", m.Name, err)
		}
		parsed[m.Name] = pm
	}
	// As in the engine, the modules must compile as written; the tests
	// then run against the form the engine evaluates, constants inlined,
	// unless that form fails to compile.
	newCompiler := func(inline bool) (*ast.Compiler, error) {
		c := ast.NewCompiler()
		if inline {
			c = c.WithStageAfterID(ast.StageResolveRefs, inlineConstantsStage)
		}
		if schema != nil {
			set, err := SchemaSet(schema)
			if err != nil {
				return nil, err
			}
			c = c.WithSchemas(set)
		}
		return c, nil
	}
	check, err := newCompiler(false)
	if err != nil {
		return nil, err
	}
	if check.Compile(copyModules(parsed)); check.Failed() {
		return nil, fmt.Errorf("policy: run tests: %w", check.Errors)
	}
	run := func(inline bool) (chan *tester.Result, error) {
		compiler, err := newCompiler(inline)
		if err != nil {
			return nil, err
		}
		return tester.NewRunner().
			SetCompiler(compiler).
			SetStore(inmem.New()).
			SetModules(copyModules(parsed)).
			CapturePrintOutput(true).
			RunTests(ctx, nil)
	}
	ch, err := run(true)
	if err != nil {
		ch, err = run(false)
	}
	if err != nil {
		return nil, fmt.Errorf("policy: run tests: %w", err)
	}
	var out []TestResult
	for r := range ch {
		tr := TestResult{
			Package: strings.TrimPrefix(r.Package, "data."),
			Name:    r.Name,
			Pass:    r.Pass(),
		}
		if r.Error != nil {
			tr.Error = r.Error.Error()
		} else if r.Fail {
			tr.Error = "test rule was false"
			if len(r.Output) > 0 {
				tr.Error += ": " + strings.TrimSpace(string(r.Output))
			}
		}
		out = append(out, tr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Package+out[i].Name < out[j].Package+out[j].Name })
	return out, nil
}

// copyModules copies parsed modules: compiling rewrites them in place.
func copyModules(mods map[string]*ast.Module) map[string]*ast.Module {
	out := make(map[string]*ast.Module, len(mods))
	for name, m := range mods {
		out[name] = m.Copy()
	}
	return out
}
