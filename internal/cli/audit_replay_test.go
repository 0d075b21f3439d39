package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/shellfacts"
)

// TestReplayAddsShellIndexes: shell facts recorded before words and
// programs existed lack them; replay derives them again, so a policy that
// reads them decides an old record as the guard decided it then.
func TestReplayAddsShellIndexes(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, ".env"), []byte("K=1\n"), 0o600))
	must(t, os.MkdirAll(filepath.Join(dir, "sub", ".ssh"), 0o700))
	ctx := context.Background()
	eng, err := policy.New(ctx, "", slog.New(slog.DiscardHandler))
	must(t, err)
	opts := shellfacts.Options{Workdir: dir, Home: dir, Path: []string{"/usr/bin", "/bin"}}
	tests := []struct {
		name, command string
		drop          []string
	}{
		{"a secret read, recorded without the indexes", "cat .env", []string{"words", "programs"}},
		{"a listing of .ssh, recorded without the indexes", "ls sub/.ssh", []string{"words", "programs"}},
		{"a nested shell, recorded without the indexes", "sh -c 'id'", []string{"words", "programs"}},
		{"a secret read, recorded with them", "cat .env", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := shellfacts.Analyze(tt.command, opts)
			must(t, err)
			raw, err := json.Marshal(f)
			must(t, err)
			var m map[string]any
			must(t, json.Unmarshal(raw, &m))
			for _, k := range tt.drop {
				delete(m, k)
			}
			recorded, err := json.Marshal(m)
			must(t, err)
			args, err := json.Marshal(map[string]any{"target": "local", "command": tt.command})
			must(t, err)
			iv := intentView{Tool: "run_shell", Target: "local", TargetKind: "shell",
				Arguments: args, Facts: recorded}
			in, ok, err := replayInput(iv, nil)
			if err != nil || !ok {
				t.Fatalf("replayInput: %v, %v", ok, err)
			}
			d, err := eng.Decide(ctx, in)
			if err != nil || d.Outcome != policy.OutcomeDeny {
				t.Errorf("replayed: %s %v (%v), want deny", d.Outcome, d.Reasons, err)
			}
		})
	}
}
