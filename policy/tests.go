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
	// Tests run against the policy as the engine compiles it.
	compiler := ast.NewCompiler().WithStageAfterID(ast.StageResolveRefs, inlineConstantsStage)
	if schema != nil {
		set, err := SchemaSet(schema)
		if err != nil {
			return nil, err
		}
		compiler = compiler.WithSchemas(set)
	}
	ch, err := tester.NewRunner().
		SetCompiler(compiler).
		SetStore(inmem.New()).
		SetModules(parsed).
		CapturePrintOutput(true).
		RunTests(ctx, nil)
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
