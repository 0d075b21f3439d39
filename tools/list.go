package tools

import (
	"context"
	"encoding/json"

	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/policy"
)

// Lister implements list_targets: names, kinds, descriptions and labels of
// the configured targets, never a DSN, key or path to one.
type Lister struct {
	Targets []config.Target
}

// Spec implements Tool.
func (l *Lister) Spec() Spec {
	return Spec{
		Name:  ListTargets,
		Title: "List targets",
		Description: "Lists the systems this guard can reach: each target's name, kind " +
			"(postgres, files, shell, ssh), description and labels. Use a target's name in " +
			"query_database, run_shell or read_file." + notice,
		Input: json.RawMessage(`{"type": "object", "properties": {}, "additionalProperties": false}`),
		Output: outputSchema(`"targets": {"type": "array", "items": {"type": "object", "properties": {
			"name": {"type": "string"}, "kind": {"type": "string"},
			"description": {"type": "string"},
			"labels": {"type": "object", "additionalProperties": {"type": "string"}},
			"tools": {"type": "array", "items": {"type": "string"}}}}}`),
		ReadOnly: true,
	}
}

// Facts implements Tool.
func (l *Lister) Facts(context.Context, *Call) (string, any, error) { return "", nil, nil }

// Display implements Tool.
func (l *Lister) Display(*Call) string { return "" }

// Run implements Tool.
func (l *Lister) Run(context.Context, *Call, policy.Decision, Limits) (*Result, error) {
	var items []any
	for _, t := range l.Targets {
		labels := map[string]any{}
		for k, v := range t.Labels {
			labels[k] = v
		}
		items = append(items, map[string]any{
			"name":        t.Name,
			"kind":        t.Kind,
			"description": t.Description,
			"labels":      labels,
			"tools":       []any{toolFor(t.Kind)},
		})
	}
	if items == nil {
		items = []any{}
	}
	return &Result{Structured: map[string]any{"targets": items}}, nil
}

func toolFor(kind string) string {
	switch kind {
	case config.KindPostgres:
		return QueryDatabase
	case config.KindFiles:
		return ReadFile
	default:
		return RunShell
	}
}
