package guard

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcp-guard/mcp-guard/policy"
)

// TestBundledPolicyMatchesInputSchema compiles the bundled policy against
// the input schema and runs its Rego tests type-checked: a rule that reads
// a field the guard does not produce fails here.
func TestBundledPolicyMatchesInputSchema(t *testing.T) {
	ctx := context.Background()
	if _, err := policy.New(ctx, "", nil, policy.WithInputSchema(InputSchema())); err != nil {
		t.Fatalf("the bundled policy does not type-check against the input schema: %v", err)
	}
	results, err := policy.RunTests(ctx, policy.Bundled(), InputSchema())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) == 0 {
		t.Fatal("no Rego tests ran")
	}
	for _, r := range results {
		if !r.Pass {
			t.Errorf("%s: %s", r.Name, r.Error)
		}
	}
}

// TestMisspelledFieldFailsToCompile: a policy that refers to a field that
// does not exist fails to compile instead of silently never firing.
func TestMisspelledFieldFailsToCompile(t *testing.T) {
	cases := []struct{ name, rule string }{
		{"sql fact", `deny contains "x" if input.sql.read_onyl`},
		{"shell fact", `deny contains "x" if { some c in input.shell.commands; c.bsae == "rm" }`},
		{"file fact", `deny contains "x" if input.file.resolvd == "/x"`},
		{"top level", `deny contains "x" if input.calller.subject == "x"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := "package mcpguard\nimport rego.v1\n" + tc.rule +
				"\ndecision := {\"outcome\": \"allow\", \"reasons\": []}\n"
			if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := policy.New(context.Background(), dir, nil, policy.WithInputSchema(InputSchema()))
			if err == nil || !strings.Contains(err.Error(), "undefined ref") {
				t.Fatalf("want an undefined ref error, got %v", err)
			}
		})
	}
}

// TestInputSchemaDocIsCurrent keeps docs/policy-input.schema.json in step
// with the code; run with UPDATE_SCHEMA=1 to rewrite it.
func TestInputSchemaDocIsCurrent(t *testing.T) {
	path := filepath.Join("..", "docs", "policy-input.schema.json")
	want := string(InputSchema()) + "\n"
	if os.Getenv("UPDATE_SCHEMA") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("docs/policy-input.schema.json is out of date; run UPDATE_SCHEMA=1 go test ./guard")
	}
}

// TestInputMissingAFieldIsDenied: the schema requires every field the
// guard always sends, so a policy can rely on them; an input without one
// is denied before the policy sees it.
func TestInputMissingAFieldIsDenied(t *testing.T) {
	ctx := context.Background()
	eng, err := policy.New(ctx, "", nil, policy.WithInputSchema(InputSchema()))
	if err != nil {
		t.Fatal(err)
	}
	command := func(drop string) map[string]any {
		c := map[string]any{
			"name": "ls", "base": "ls", "resolved": "/usr/bin/ls", "resolved_base": "ls",
			"in_path": true, "args": []any{}, "paths": []any{}, "env": []any{},
			"builtin": false, "function": false, "dynamic": false, "dynamic_reasons": []any{},
			"flags": []any{}, "inner_parsed": false, "opaque": false, "privileged": false,
			"stdin_from_pipe": false,
		}
		delete(c, drop)
		return c
	}
	input := func(c map[string]any) map[string]any {
		return map[string]any{
			"tool":      "run_shell",
			"target":    map[string]any{"name": "local", "kind": "shell", "labels": map[string]any{}},
			"caller":    map[string]any{"subject": "a", "issuer": "", "email": "", "groups": []any{}},
			"arguments": map[string]any{"target": "local", "command": "ls"},
			"shell": map[string]any{
				"commands": []any{c}, "redirects": []any{}, "pipelines": 0, "lists": 0,
				"background": false, "substitutions": false, "assignments": []any{},
				"changes_environment": false, "dynamic": false, "dynamic_reasons": []any{},
				"opaque": false, "flags": []any{}, "function_defs": false, "functions": []any{},
				"depth": 0, "words": []any{}, "programs": []any{"ls"},
			},
		}
	}
	if d, err := eng.Decide(ctx, input(command(""))); err != nil || d.Outcome != policy.OutcomeAllow {
		t.Fatalf("the complete input: %+v, %v", d, err)
	}
	for _, field := range []string{"resolved_base", "in_path", "base", "args"} {
		d, err := eng.Decide(ctx, input(command(field)))
		if err == nil || d.Outcome != policy.OutcomeDeny || !strings.Contains(err.Error(), field) {
			t.Errorf("without %s: %+v, %v; want a denial naming the field", field, d, err)
		}
	}
}
