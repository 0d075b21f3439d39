package policy_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/mcp-guard/mcp-guard/guard"
	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/shellfacts"
)

// TestNullShellIndexesDoNotSoften: the default policy's secret-path and
// watched-name denials read input.shell.words and programs. A null list
// would read as an empty one and turn them off, so the schema refuses it
// (the guard never sends one): such an input is denied, never decided
// more leniently than with the lists.
func TestNullShellIndexesDoNotSoften(t *testing.T) {
	ctx := context.Background()
	eng, err := policy.New(ctx, "", slog.New(slog.DiscardHandler),
		policy.WithInputSchema(guard.InputSchema()))
	if err != nil {
		t.Fatal(err)
	}
	dir := nullIndexWorkdir(t)
	opts := shellfacts.Options{
		Workdir: dir, Home: dir, Path: []string{"/usr/bin", "/bin"},
	}
	rank := map[string]int{
		policy.OutcomeAllow: 0, policy.OutcomeApproval: 1, policy.OutcomeDeny: 2,
	}
	tests := []struct {
		name    string
		command string
	}{
		{"secret file read", "cat .env"},
		{"ssh directory listed", "ls sub/.ssh"},
		{"start-up file written", "echo hi > .bashrc"},
		{"process environment read", "cat /proc/self/environ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			facts, err := shellfacts.Analyze(tt.command, opts)
			if err != nil {
				t.Fatal(err)
			}
			want, err := eng.Decide(ctx, shellCallInput(tt.command, facts))
			if err != nil || want.Outcome != policy.OutcomeDeny {
				t.Fatalf("with the indexes: %s %v (%v), want deny", want.Outcome, want.Reasons, err)
			}
			nulled := *facts
			nulled.Words, nulled.Programs = nil, nil
			got, err := eng.Decide(ctx, shellCallInput(tt.command, &nulled))
			if err == nil && rank[got.Outcome] < rank[want.Outcome] {
				t.Errorf("null words and programs: %s %v; with them: %s %v",
					got.Outcome, got.Reasons, want.Outcome, want.Reasons)
			}
		})
	}
}

// nullIndexWorkdir makes a working directory holding a .env file and an
// .ssh directory.
func nullIndexWorkdir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub", ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("KEY=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// shellCallInput is the policy input the guard builds for a run_shell call on
// a shell target.
func shellCallInput(command string, facts *shellfacts.Facts) map[string]any {
	return map[string]any{
		"tool": "run_shell",
		"caller": map[string]any{
			"subject": "dev", "issuer": "", "email": "", "groups": []any{},
		},
		"arguments": map[string]any{"target": "local", "command": command},
		"target": map[string]any{
			"name": "local", "kind": "shell", "labels": map[string]any{},
		},
		"shell": facts,
	}
}

// TestDanglingLinkWriteJudgedByTarget: bash opens a redirection's target
// through a symbolic link even when the file the link names does not
// exist yet, creating it, so with notes -> .bashrc, echo x >> notes writes
// .bashrc. The write is judged as one to .bashrc (a link checked into a
// cloned repository is enough to set this up).
func TestDanglingLinkWriteJudgedByTarget(t *testing.T) {
	ctx := context.Background()
	eng, err := policy.New(ctx, "", slog.New(slog.DiscardHandler),
		policy.WithInputSchema(guard.InputSchema()))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(".bashrc", filepath.Join(dir, "notes")); err != nil {
		t.Fatal(err)
	}
	opts := shellfacts.Options{
		Workdir: dir, Home: dir, Path: []string{"/usr/bin", "/bin"},
	}
	tests := []struct {
		name    string
		command string
	}{
		{"start-up file by name", "echo x >> .bashrc"},
		{"start-up file through a dangling link", "echo x >> notes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			facts, err := shellfacts.Analyze(tt.command, opts)
			if err != nil {
				t.Fatal(err)
			}
			d, err := eng.Decide(ctx, shellCallInput(tt.command, facts))
			if err != nil || d.Outcome != policy.OutcomeDeny {
				t.Errorf("%s %v (%v), want deny", d.Outcome, d.Reasons, err)
			}
		})
	}
}
