package policy

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// evalBoth evaluates query over the modules compiled as written and with
// constants inlined, and returns both results as JSON.
func evalBoth(t *testing.T, modules map[string]string, query string, input any) (literal, inlined string) {
	t.Helper()
	run := func(inline bool) string {
		opts := []func(*rego.Rego){rego.Query(query), rego.SetRegoVersion(ast.RegoV1), rego.Input(input)}
		if inline {
			opts = append(opts, rego.CompilerHook(func(c *ast.Compiler) {
				c.WithStageAfterID(ast.StageResolveRefs, inlineConstantsStage)
			}))
		}
		for _, name := range slices.Sorted(maps.Keys(modules)) {
			opts = append(opts, rego.Module(name, modules[name]))
		}
		rs, err := rego.New(opts...).Eval(context.Background())
		if err != nil {
			t.Fatalf("inline=%v: %v", inline, err)
		}
		b, err := json.Marshal(rs)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return run(false), run(true)
}

func TestInlineConstantsKeepsResults(t *testing.T) {
	cases := []struct {
		name    string
		modules map[string]string
		query   string
		inputs  []any
	}{
		{
			name: "set membership",
			modules: map[string]string{"p.rego": `package p
programs := {"ls", "cat"}
allow if input.name in programs`},
			query:  "data.p.allow",
			inputs: []any{map[string]any{"name": "ls"}, map[string]any{"name": "rm"}},
		},
		{
			name: "lookup into an object",
			modules: map[string]string{"p.rego": `package p
reasons := {"copy": "no COPY", "do": "no DO"}
deny contains reasons[k] if some k in input.kinds
deny contains m if { some k in input.kinds; m := reasons[k] }`},
			query:  "data.p.deny",
			inputs: []any{map[string]any{"kinds": []any{"copy", "select"}}, map[string]any{"kinds": []any{}}},
		},
		{
			name: "nested lookup and iteration",
			modules: map[string]string{"p.rego": `package p
limits := {"prod": {"rows": 10}, "dev": {"rows": 100}}
rows := limits[input.env].rows
envs contains e if some e, _ in limits`},
			query:  "data.p",
			inputs: []any{map[string]any{"env": "prod"}, map[string]any{"env": "qa"}},
		},
		{
			name: "regex pattern and head value",
			modules: map[string]string{"p.rego": `package p
pattern := "^a+$"
matched if regex.match(pattern, input.s)
spec := {"pattern": pattern, "matched": matched}`},
			query:  "data.p",
			inputs: []any{map[string]any{"s": "aaa"}, map[string]any{"s": "b"}},
		},
		{
			name: "default alone is constant; default with others is not",
			modules: map[string]string{"p.rego": `package p
default limit := 5
default allowed := false
allowed if input.ok == true
out := [limit, allowed]`},
			query:  "data.p.out",
			inputs: []any{map[string]any{"ok": true}, map[string]any{"ok": false}},
		},
		{
			name: "two definitions, else and computed values are left alone",
			modules: map[string]string{"p.rego": `package p
a := 1 if input.x == 1
a := 2 if input.x == 2
b := 3 if false
else := 4
both := {"x"} | {"y"}
out := [object.get({"a": a}, "a", 0), b, both]`},
			query:  "data.p.out",
			inputs: []any{map[string]any{"x": 1}, map[string]any{"x": 3}},
		},
		{
			name: "from another package through an import",
			modules: map[string]string{
				"lists.rego": `package lists
readonly := {"ls"}`,
				"p.rego": `package p
import data.lists
allow if input.name in lists.readonly
allow2 if input.name in data.lists.readonly`},
			query:  "data.p",
			inputs: []any{map[string]any{"name": "ls"}, map[string]any{"name": "rm"}},
		},
		{
			name: "some declarations",
			modules: map[string]string{"p.rego": `package p
prefixes := {"lo_", "pg_ls"}
kinds := {"a": 1, "b": 2}
deny contains f if { some f in input.funcs; some p in prefixes; startswith(f, p) }
pairs contains [k, v] if some k, v in kinds
nested := [f | some f in input.funcs; some p in prefixes; startswith(f, p)]
matches(fs) := {f | some f in fs; some p in prefixes; startswith(f, p)}
head := matches(input.funcs)`},
			query:  "data.p",
			inputs: []any{map[string]any{"funcs": []any{"lo_import", "now"}}, map[string]any{"funcs": []any{}}},
		},
		{
			name: "inside comprehensions and every",
			modules: map[string]string{"p.rego": `package p
bad := {"x", "y"}
found := [w | some w in input.words; w in bad]
clean if every w in input.words { not w in bad }`},
			query:  "data.p",
			inputs: []any{map[string]any{"words": []any{"a", "x"}}, map[string]any{"words": []any{"a"}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, in := range tc.inputs {
				lit, inl := evalBoth(t, tc.modules, tc.query, in)
				if lit != inl {
					t.Errorf("input %v:\nas written %s\ninlined    %s", in, lit, inl)
				}
			}
		})
	}
}

func TestConstantRulesFound(t *testing.T) {
	src := `package p
list := {"a", "b"}
obj := {"k": [1, 2]}
default lone := 7
default mixed := false
mixed if input.x
twice := 1 if input.x
twice := 2 if input.y
computed := count(list)
refers := list
with_else := 1 if input.x
else := 2
f(x) := 1 if x
partial contains "a"
mocked := {"m"}
test_mock if { mocked == {"z"} with data.p.mocked as {"z"} }`
	// A rule with a variable in its head may define a path below it, and
	// a constant too large is left as a rule.
	sub := `package p.sub
mode := "readonly"
size := 3`
	over := `package p
sub[k] := v if some k, v in input.labels`
	big := "package big\nlist := {" + strings.Repeat(`"x", `, 1) + `"0"`
	for i := 1; i <= maxInlineTerms; i++ {
		big += `, "` + strconv.Itoa(i) + `"`
	}
	big += "}\nsmall := {\"a\"}"
	mods := map[string]*ast.Module{}
	for name, text := range map[string]string{"p.rego": src, "sub.rego": sub, "over.rego": over, "big.rego": big} {
		mod, err := ast.ParseModuleWithOpts(name, text, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		mods[name] = mod
	}
	got := slices.Sorted(maps.Keys(constantRules(mods)))
	want := []string{"data.big.small", "data.p.list", "data.p.lone", "data.p.obj"}
	if !slices.Equal(got, want) {
		t.Errorf("constant rules %v, want %v", got, want)
	}
}

// TestBundledPolicyIsInlined checks that the engine really writes the
// default policy's lists into its rules: no rule of the compiled policy
// refers to a constant any more.
func TestBundledPolicyIsInlined(t *testing.T) {
	mods := map[string]*ast.Module{}
	for _, m := range policyModules(Bundled()) {
		pm, err := ast.ParseModuleWithOpts(m.Name, m.Source, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		mods[m.Name] = pm
	}
	consts := constantRules(mods)
	for _, name := range []string{"readonly_programs", "option_checked_programs", "suspect_pattern", "denied_functions"} {
		if _, ok := consts["data.mcpguard."+name]; !ok {
			t.Errorf("%s is not found constant", name)
		}
	}
	c := ast.NewCompiler().WithStageAfterID(ast.StageResolveRefs, inlineConstantsStage)
	if c.Compile(mods); c.Failed() {
		t.Fatal(c.Errors)
	}
	for _, mod := range c.Modules {
		ast.WalkRules(mod, func(r *ast.Rule) bool {
			ast.WalkRefs(r, func(ref ast.Ref) bool {
				for k := len(ref); k >= 2; k-- {
					if _, ok := consts[ref[:k].String()]; ok {
						t.Errorf("%s: rule %s still refers to %s", r.Location, r.Head.Name, ref)
					}
				}
				return false
			})
			return false
		})
	}
}

// TestMockedConstantsStayMockable runs a Rego test that mocks a constant
// with a with statement: inlining it would have hidden the mock.
func TestMockedConstantsStayMockable(t *testing.T) {
	mods := []Module{
		{Name: "p.rego", Source: `package p
programs := {"ls"}
allow if input.name in programs`},
		{Name: "p_test.rego", Source: `package p
test_mocked if {
	allow with input as {"name": "rm"} with data.p.programs as {"rm"}
}
test_unmocked if {
	not allow with input as {"name": "rm"}
}`},
	}
	results, err := RunTests(context.Background(), mods, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d results, want 2", len(results))
	}
	for _, r := range results {
		if !r.Pass {
			t.Errorf("%s: %s", r.Name, r.Error)
		}
	}
}

// TestInliningKeepsConflicts: a rule with a variable in its head ref may
// define the path of a constant in a package below it. As written, a
// label giving that key another value is a conflict, and the call is
// denied; inlining the constant would have hidden the other rule.
func TestInliningKeepsConflicts(t *testing.T) {
	dir := writePolicy(t, map[string]string{
		"main.rego": `package mcpguard

overrides[k] := v if some k, v in input.target.labels

decision := {"outcome": "allow", "reasons": []} if {
	overrides.mode == "readonly"
} else := {"outcome": "deny", "reasons": ["not read-only"]}
`,
		"overrides/defaults.rego": `package mcpguard.overrides

mode := "readonly"
`,
	})
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	inlined, err := New(ctx, dir, logger)
	if err != nil {
		t.Fatal(err)
	}
	literal, err := New(ctx, dir, logger, WithoutInlining())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		labels  map[string]any
		outcome string
	}{
		{"no label", map[string]any{}, OutcomeAllow},
		{"label agrees with the constant", map[string]any{"mode": "readonly"}, OutcomeAllow},
		{"label conflicts with the constant", map[string]any{"mode": "write"}, OutcomeDeny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := map[string]any{
				"tool":   "list_targets",
				"target": map[string]any{"name": "", "kind": "", "labels": tt.labels},
			}
			a, errA := inlined.Decide(ctx, input)
			b, errB := literal.Decide(ctx, input)
			if a.Outcome != tt.outcome || b.Outcome != tt.outcome || (errA == nil) != (errB == nil) {
				t.Errorf("inlined: %s %v (%v); as written: %s %v (%v); want %s",
					a.Outcome, a.Reasons, errA, b.Outcome, b.Reasons, errB, tt.outcome)
			}
		})
	}
}

// TestPolicyCompilesAsWrittenFirst: whether a policy compiles, and what
// its errors say, is OPA's judgement of the text as written, not of the
// inlined form (which names literals where the text names constants, and
// accepts a pattern OPA rejects).
func TestPolicyCompilesAsWrittenFirst(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"a constant in an object pattern", `c := "k"

y if {
	{data.mcpguard.c: v} := {"k": 3}
	v == 3
}`, "var v is unsafe"},
		{"a missing key of a constant", `kinds := {"a": 1}

x := kinds.b`, "data.mcpguard.kinds.b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writePolicy(t, map[string]string{"p.rego": "package mcpguard\n\n" + tt.src +
				"\n\ndecision := {\"outcome\": \"allow\", \"reasons\": []}\n"})
			_, err := New(context.Background(), dir, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v; want an error holding %q", err, tt.want)
			}
			results, err := RunTests(context.Background(), mustLoad(t, dir), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("RunTests: %v, %v; want an error holding %q", results, err, tt.want)
			}
		})
	}
}

func writePolicy(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustLoad(t *testing.T, dir string) []Module {
	t.Helper()
	mods, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return mods
}
