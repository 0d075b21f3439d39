package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBundledRegoTests runs the default policy's Rego tests inside go test.
func TestBundledRegoTests(t *testing.T) {
	results, err := RunTests(context.Background(), Bundled(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) < 20 {
		t.Fatalf("only %d Rego tests ran", len(results))
	}
	for _, r := range results {
		if !r.Pass {
			t.Errorf("%s.%s: %s", r.Package, r.Name, r.Error)
		}
	}
}

func TestEngineFailsClosed(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		source string
	}{
		{"undefined decision", "package mcpguard\nimport rego.v1\nx := 1\n"},
		{"wrong type", "package mcpguard\nimport rego.v1\ndecision := \"allow\"\n"},
		{"unknown outcome", "package mcpguard\nimport rego.v1\ndecision := {\"outcome\": \"maybe\", \"reasons\": []}\n"},
		{"deny without reasons", "package mcpguard\nimport rego.v1\ndecision := {\"outcome\": \"deny\", \"reasons\": []}\n"},
		{"unknown field", "package mcpguard\nimport rego.v1\ndecision := {\"outcome\": \"allow\", \"reasons\": [], \"allow_everything\": true}\n"},
		{"evaluation error", "package mcpguard\nimport rego.v1\ndecision := {\"outcome\": \"allow\", \"reasons\": [], \"limits\": {\"max_rows\": to_number(input.x)}}\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(tc.source), 0o644); err != nil {
				t.Fatal(err)
			}
			e, err := New(ctx, dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			d, err := e.Decide(ctx, map[string]any{"x": "not a number"})
			if err == nil {
				t.Fatalf("expected an error, got decision %+v", d)
			}
			if d.Outcome != OutcomeDeny {
				t.Fatalf("outcome %q, want deny", d.Outcome)
			}
		})
	}
}

func TestCompileErrorNamesFileAndLine(t *testing.T) {
	dir := t.TempDir()
	src := "package mcpguard\nimport rego.v1\n\ndecision := {\n  \"outcome\": \"allow\",,\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "broken.rego"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(context.Background(), dir, nil)
	if err == nil {
		t.Fatal("a broken policy compiled")
	}
	if !strings.Contains(err.Error(), "broken.rego:5") {
		t.Fatalf("error does not name the file and line: %v", err)
	}
}

func TestReloadKeepsLastGoodPolicy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("package mcpguard\nimport rego.v1\ndecision := {\"outcome\": \"allow\", \"reasons\": []}\n")
	e, err := New(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	v1 := e.Version()
	write("package mcpguard\nimport rego.v1\ndecision := {\"outcome\": \"deny\", \"reasons\": [\"closed\"]}\n")
	if err := e.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.Decide(ctx, map[string]any{}); d.Outcome != OutcomeDeny || e.Version() == v1 {
		t.Fatalf("reload did not take effect: %+v", d)
	}
	v2 := e.Version()
	write("package mcpguard\nimport rego.v1\ndecision := {{{\n")
	if err := e.Reload(ctx); err == nil {
		t.Fatal("a broken policy reloaded")
	}
	if d, _ := e.Decide(ctx, map[string]any{}); d.Outcome != OutcomeDeny || e.Version() != v2 {
		t.Fatalf("the last good policy was not kept: %+v", d)
	}
}

// TestDecideCancelled: a call whose context is already over gets a
// denial and the context's error, not a decision.
func TestDecideCancelled(t *testing.T) {
	e, err := New(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := map[string]any{"tool": "list_targets", "arguments": map[string]any{},
		"caller": map[string]any{"subject": "t", "issuer": "", "email": "", "groups": []any{}},
		"target": map[string]any{"name": "", "kind": "", "labels": map[string]any{}}}
	d, err := e.Decide(ctx, in)
	if !errors.Is(err, context.Canceled) || d.Outcome != OutcomeDeny {
		t.Fatalf("cancelled: %+v, %v", d, err)
	}
	if d, err := e.Decide(context.Background(), in); err != nil || d.Outcome != OutcomeAllow {
		t.Fatalf("live context: %+v, %v", d, err)
	}
}
