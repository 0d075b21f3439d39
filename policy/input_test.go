package policy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mcp-guard/mcp-guard/guard"
	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/shellfacts"
	"github.com/mcp-guard/mcp-guard/sqlfacts"
	"github.com/mcp-guard/mcp-guard/tools"
)

// sameValue fails unless the input walk gives for v exactly the value OPA
// makes of v's JSON round trip, or both fail.
func sameValue(t *testing.T, v any) {
	t.Helper()
	got, err := policy.ConvertInput(v)
	var want ast.Value
	generic, werr := policy.RoundTrip(v)
	if werr == nil {
		want, werr = ast.InterfaceToValue(generic)
	}
	if (err != nil) != (werr != nil) {
		t.Fatalf("errors differ: walk %v, JSON %v", err, werr)
	}
	if err == nil && got.Compare(want) != 0 {
		t.Fatalf("the walk differs from the JSON round trip:\n got %v\nwant %v", got, want)
	}
}

// TestInputValueMatchesJSON runs the conversion cases (plainCases) through the
// walk that builds OPA's value directly.
func TestInputValueMatchesJSON(t *testing.T) {
	for _, tc := range plainCases() {
		t.Run(tc.name, func(t *testing.T) { sameValue(t, tc.v) })
	}
	more := []struct {
		name string
		v    any
	}{
		{"big unsigned", map[string]any{"u": uint64(1) << 63}},
		{"float32 spelling", []any{float32(1e-7), float32(3.4e38)}},
		{"large exponent", []any{1e300, -1e-300}},
		{"empty number", json.Number("")},
		{"bad number", json.Number("1.")},
		{"number with exponent", json.Number("12e3")},
		{"nested nil", map[string]any{"a": []any{nil, map[string]any(nil), []string(nil)}}},
	}
	for _, tc := range more {
		t.Run(tc.name, func(t *testing.T) { sameValue(t, tc.v) })
	}
}

// guardInputs returns the policy inputs of every shell and SQL fuzz seed
// and a file call, built as the guard builds them.
func guardInputs(t *testing.T) []map[string]any {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("K=v\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wrap := func(tool, key string, facts any, args map[string]any) map[string]any {
		return map[string]any{
			"tool": tool, "arguments": args,
			"caller": map[string]any{"subject": "s", "issuer": "i", "email": "e@x",
				"groups": []any{"developers", "ops"}},
			"target": map[string]any{"name": "t", "kind": "shell",
				"labels": map[string]any{"env": "prod"}},
			key: facts,
		}
	}
	opts := shellfacts.Options{Path: filepath.SplitList(os.Getenv("PATH")), Workdir: dir, Home: dir}
	var out []map[string]any
	for _, s := range seeds(t, "../shellfacts/testdata/fuzz/FuzzAnalyze") {
		if f, err := shellfacts.Analyze(s, opts); err == nil {
			out = append(out, wrap("run_shell", "shell", f,
				map[string]any{"command": s, "timeout": 30.0, "target": "local"}))
		}
	}
	for _, s := range seeds(t, "../sqlfacts/testdata/fuzz/FuzzAnalyze") {
		if f, err := sqlfacts.Analyze(s); err == nil {
			out = append(out, wrap("query_database", "sql", f,
				map[string]any{"sql": s, "max_rows": 1.5}))
		}
	}
	out = append(out, wrap("read_file", "file", &tools.FileFacts{
		Requested: "a/../b\xff", Resolved: "/w/b", Links: []string{"/w/c"}, HardLinks: 2},
		map[string]any{"path": "b"}))
	if len(out) < 50 {
		t.Fatalf("only %d inputs; the seed corpus did not load", len(out))
	}
	return out
}

// TestInputValueOnGuardInputs: on the guard's real inputs, the walk with
// the guard's schema gives the JSON round trip's value and accepts them.
func TestInputValueOnGuardInputs(t *testing.T) {
	walk, err := policy.CheckedInput(string(guard.InputSchema()))
	if err != nil {
		t.Fatalf("the guard's schema does not compile for the walk: %v", err)
	}
	for _, in := range guardInputs(t) {
		sameValue(t, in)
		got, err := walk(in)
		if err != nil {
			t.Fatalf("a guard input does not match the guard's schema: %v", err)
		}
		want, _ := policy.ConvertInput(in)
		if got.Compare(want) != 0 {
			t.Fatal("checking the schema changed the value")
		}
	}
}

// compileLibrary compiles schema with the JSON Schema library the walk
// stands in for.
func compileLibrary(t *testing.T, schema string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("mem://s.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("mem://s.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// agree fails unless the walk and the library both accept v or both
// refuse it, and the walk's refusal is an InputError.
func agree(t *testing.T, lib *jsonschema.Schema, walk func(any) (ast.Value, error),
	v any, what string) {
	t.Helper()
	generic, err := policy.RoundTrip(v)
	if err != nil {
		t.Fatal(err)
	}
	libErr := lib.Validate(generic)
	_, walkErr := walk(v)
	if (libErr == nil) != (walkErr == nil) {
		t.Fatalf("%s: the library says %v, the walk says %v", what, libErr, walkErr)
	}
	var ie *policy.InputError
	if walkErr != nil && !errors.As(walkErr, &ie) {
		t.Fatalf("%s: the walk's refusal is not an InputError: %v", what, walkErr)
	}
}

// mutants returns copies of a decoded JSON value, each with one value
// replaced by one of another type, or one object given an unknown member.
func mutants(v any) []any {
	replacements := []any{nil, true, json.Number("1.5"), json.Number("2"), "s",
		[]any{}, map[string]any{}, []any{json.Number("3")}}
	var out []any
	n := 0
	var walk func(v any, set func(any) any)
	walk = func(v any, set func(any) any) {
		r := replacements[n%len(replacements)]
		n++
		out = append(out, set(r))
		switch x := v.(type) {
		case map[string]any:
			out = append(out, set(with(x, "zz_unknown", "x")))
			for _, k := range slices.Sorted(maps.Keys(x)) {
				walk(x[k], func(r any) any { return set(with(x, k, r)) })
			}
		case []any:
			for i := range x {
				walk(x[i], func(r any) any {
					c := slices.Clone(x)
					c[i] = r
					return set(c)
				})
			}
		}
	}
	walk(v, func(r any) any { return r })
	return out
}

func with(m map[string]any, k string, v any) map[string]any {
	c := make(map[string]any, len(m)+1)
	for key, val := range m {
		c[key] = val
	}
	c[k] = v
	return c
}

// TestInputCheckAgreesWithTheLibrary checks the guard's inputs, and
// every one-value mutation of a sample of them, against the guard's
// schema with both the walk and the JSON Schema library.
func TestInputCheckAgreesWithTheLibrary(t *testing.T) {
	schema := string(guard.InputSchema())
	lib := compileLibrary(t, schema)
	walk, err := policy.CheckedInput(schema)
	if err != nil {
		t.Fatal(err)
	}
	refused, checked := 0, 0
	for i, in := range guardInputs(t) {
		agree(t, lib, walk, in, "guard input")
		if i%4 != 0 {
			continue // a sample keeps the test short
		}
		generic, err := policy.RoundTrip(in)
		if err != nil {
			t.Fatal(err)
		}
		for j, m := range mutants(generic) {
			agree(t, lib, walk, m, fmt.Sprintf("input %d mutant %d", i, j))
			if _, err := walk(m); err != nil {
				refused++
			}
			checked++
		}
	}
	t.Logf("%d mutants, %d refused", checked, refused)
	if checked < 1000 || refused < checked/4 || refused == checked {
		t.Fatalf("%d mutants, %d refused: the mutations do not exercise the schema", checked, refused)
	}
}

// typed is a Go struct checked against hand-written schemas.
type typed struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Tags  []string `json:"tags,omitempty"`
	Next  *typed   `json:"next"`
	Extra string   `json:"extra,omitempty"`
}

// TestInputCheckOnStructs compares the walk with the library on Go
// structs (the guard's facts are structs) against schemas that use every
// keyword the walk handles.
func TestInputCheckOnStructs(t *testing.T) {
	const schema = `{
	  "$schema": "https://json-schema.org/draft/2020-12/schema",
	  "type": "object", "title": "t", "description": "d", "$comment": "c",
	  "required": ["name", "count"],
	  "additionalProperties": false,
	  "properties": {
	    "name": {"type": "string"},
	    "count": {"type": "integer"},
	    "tags": {"type": ["array", "null"], "items": {"type": "string"}},
	    "next": {"type": ["object", "null"],
	      "additionalProperties": {"type": ["string", "integer", "array", "null"]}},
	    "ratio": {"type": "number"},
	    "any": true,
	    "none": false
	  }
	}`
	lib := compileLibrary(t, schema)
	walk, err := policy.CheckedInput(schema)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		v     any
		valid bool
	}{
		{"struct that fits", typed{Name: "a", Count: 1, Tags: []string{"x"}}, true},
		{"omitted field is not extra", typed{Name: "a"}, true},
		{"extra field present", typed{Name: "a", Extra: "e"}, false},
		{"nested struct under additionalProperties", typed{Next: &typed{Name: "b", Count: 2}}, true},
		{"nested extra field of the wrong type", map[string]any{"name": "a", "count": 1,
			"next": map[string]any{"x": true}}, false},
		{"missing required", map[string]any{"name": "a"}, false},
		{"integer as a float", map[string]any{"name": "a", "count": 2.0}, true},
		{"fraction for an integer", map[string]any{"name": "a", "count": 2.5}, false},
		{"integer for a number", map[string]any{"name": "a", "count": 1, "ratio": 3}, true},
		{"string for a number", map[string]any{"name": "a", "count": 1, "ratio": "3"}, false},
		{"true schema", map[string]any{"name": "a", "count": 1, "any": []any{1, "x"}}, true},
		{"false schema", map[string]any{"name": "a", "count": 1, "none": nil}, false},
		{"wrong item", map[string]any{"name": "a", "count": 1, "tags": []any{"x", 1}}, false},
		{"null for a nullable array", map[string]any{"name": "a", "count": 1, "tags": nil}, true},
		{"null for a string", map[string]any{"name": nil, "count": 1}, false},
		{"array for an object", []any{}, false},
		{"pointer to a struct", &typed{Name: "p", Count: 3}, true},
		{"nil pointer", (*typed)(nil), false},
		{"typed map", map[string]int{"name": 1}, false},
		{"typed map that fits", map[string]any{"name": "n", "count": uint8(4)}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			agree(t, lib, walk, tc.v, tc.name)
			_, err := walk(tc.v)
			if (err == nil) != tc.valid {
				t.Fatalf("valid = %v, want %v (%v)", err == nil, tc.valid, err)
			}
		})
	}
}

// TestUnsupportedSchemaKeywords: a schema with a keyword the walk does
// not check is not compiled for it, so the library checks it instead.
func TestUnsupportedSchemaKeywords(t *testing.T) {
	for _, schema := range []string{
		`{"type": "object", "properties": {"a": {"type": "string", "minLength": 2}}}`,
		`{"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"}`,
		`{"items": [{"type": "string"}]}`,
		`{"$ref": "#/$defs/x", "$defs": {"x": {}}}`,
		`{"type": "object", "patternProperties": {"^a": {}}}`,
		`{"type": []}`,
	} {
		if _, err := policy.CheckedInput(schema); !errors.Is(err, policy.ErrSchemaUnsupported) {
			t.Errorf("%s: %v, want the schema refused for the walk", schema, err)
		}
	}
}

// TestMalformedInputIsDenied: Decide validates every input against the
// schema and denies one that does not match, naming where; with a schema
// the walk cannot check, the library does, with the same outcome.
func TestMalformedInputIsDenied(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := "package mcpguard\nimport rego.v1\ndecision := {\"outcome\": \"allow\", \"reasons\": []}\n"
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	const caller = `{"type": "object", "properties": {"caller": {"type": "object",
		"additionalProperties": false, "properties": {"groups": {"type": "array",
		"items": {"type": "string"} %s}}}}}`
	schemas := map[string]string{
		"checked in the walk":    fmt.Sprintf(caller, ""),
		"checked by the library": fmt.Sprintf(caller, `, "maxItems": 5`),
	}
	for name, schema := range schemas {
		t.Run(name, func(t *testing.T) {
			e, err := policy.New(ctx, dir, nil, policy.WithInputSchema([]byte(schema)))
			if err != nil {
				t.Fatal(err)
			}
			good := map[string]any{"caller": map[string]any{"groups": []string{"a"}}}
			if d, err := e.Decide(ctx, good); err != nil || d.Outcome != policy.OutcomeAllow {
				t.Fatalf("a valid input: %+v, %v", d, err)
			}
			for _, bad := range []map[string]any{
				{"caller": map[string]any{"groups": []any{"a", 7}}},
				{"caller": map[string]any{"groups": []string{"a"}, "role": "admin"}},
				{"caller": "root"},
			} {
				d, err := e.Decide(ctx, bad)
				if err == nil || d.Outcome != policy.OutcomeDeny {
					t.Fatalf("%v: %+v, %v; want a denial", bad, d, err)
				}
				if !strings.Contains(err.Error(), "does not match its schema") ||
					!strings.Contains(err.Error(), "/caller") {
					t.Errorf("the error does not say where the input is wrong: %v", err)
				}
				if !slices.Equal(d.Reasons, []string{"the policy input does not match its schema"}) {
					t.Errorf("reasons = %q", d.Reasons)
				}
			}
		})
	}
}
