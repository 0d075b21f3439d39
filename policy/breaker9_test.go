package policy

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestBreaker9InliningKeepsConflicts holds the engine's compiled policy
// (constants written into the rules) to the decision of the policy as
// written when a rule with a variable in its head ref also defines the
// path of a constant in a package below it. As written, a label that
// gives the same key another value is an evaluation conflict, so the call
// is denied; the inlined policy reads the constant straight away and
// never sees the other rule.
//
// It fails today: the inliner takes the constant for the only rule of its
// path, and the call is allowed.
func TestBreaker9InliningKeepsConflicts(t *testing.T) {
	files := map[string]string{
		"main.rego": `package mcpguard

# Per-target overrides come from the target's labels.
overrides[k] := v if some k, v in input.target.labels

decision := {"outcome": "allow", "reasons": []} if {
	overrides.mode == "readonly"
} else := {"outcome": "deny", "reasons": ["not read-only"]}
`,
		"overrides/defaults.rego": `package mcpguard.overrides

mode := "readonly"
`,
	}
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
		name   string
		labels map[string]any
	}{
		{name: "no label", labels: map[string]any{}},
		{name: "label agrees with the constant", labels: map[string]any{"mode": "readonly"}},
		{name: "label conflicts with the constant", labels: map[string]any{"mode": "write"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := map[string]any{
				"tool":   "list_targets",
				"target": map[string]any{"name": "", "kind": "", "labels": tt.labels},
			}
			a, errA := inlined.Decide(ctx, input)
			b, errB := literal.Decide(ctx, input)
			if a.Outcome != b.Outcome || (errA == nil) != (errB == nil) {
				t.Errorf("inlined: %s %v (%v); as written: %s %v (%v)",
					a.Outcome, a.Reasons, errA, b.Outcome, b.Reasons, errB)
			}
		})
	}
}
