package guard_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/guard"
	"github.com/mcp-guard/mcp-guard/identity"
	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/recorder"
	"github.com/mcp-guard/mcp-guard/tools"
)

// failingRecorder refuses every record of the kinds in fail.
type failingRecorder struct{ fail map[string]bool }

func (r failingRecorder) Append(_ context.Context, kind, _, _ string, _ any) error {
	if r.fail[kind] {
		return errors.New("disk full")
	}
	return nil
}

// TestRecordingFailureAnswers checks what a caller is told when the
// transcript cannot be written: a call whose intent was not recorded did
// not run and is answered so, and a result whose completion was not
// recorded is withheld, saying that the call ran.
func TestRecordingFailureAnswers(t *testing.T) {
	const canary = "canary-7f3a9c"
	tests := []struct {
		name string
		fail []string
		want string
	}{
		{"intent not recorded", []string{recorder.KindCallIntent, recorder.KindCallCompletion},
			"could not be recorded, so it was not run"},
		{"completion not recorded", []string{recorder.KindCallCompletion},
			"the call ran, but its result could not be recorded, so it is withheld"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fail := map[string]bool{}
			for _, k := range tc.fail {
				fail[k] = true
			}
			g := recordingGuard(t, failingRecorder{fail: fail}, canary)
			req := mcp.CallToolRequest{}
			req.Params.Name = tools.ReadFile
			req.Params.Arguments = map[string]any{"target": "docs", "path": "q3.txt"}
			ctx := identity.WithCaller(context.Background(), identity.Caller{Subject: "t"})
			res, err := g.Handle(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			text := res.Content[0].(mcp.TextContent).Text
			if !res.IsError || !strings.Contains(text, tc.want) {
				t.Errorf("answer %q (error %v), want it to say %q", text, res.IsError, tc.want)
			}
			if strings.Contains(text, canary) {
				t.Errorf("the file's content came back: %q", text)
			}
		})
	}
}

func recordingGuard(t *testing.T, rec guard.Recorder, content string) *guard.Guard {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "q3.txt"), []byte(content+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(strings.NewReader(`targets:
  - {name: docs, kind: files, roots: ["`+root+`"]}
`), dir)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := policy.New(context.Background(), "", slog.New(slog.DiscardHandler),
		policy.WithInputSchema(guard.InputSchema()))
	if err != nil {
		t.Fatal(err)
	}
	g, err := guard.New(guard.Options{
		Config: cfg, Engine: eng, Recorder: rec, Masker: nopMasker{},
		Tools: []tools.Tool{tools.Files{}}, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}
