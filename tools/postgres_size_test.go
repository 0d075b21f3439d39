package tools

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mcp-guard/mcp-guard/policy"
)

// TestPostgresSizeCap checks that max_output_bytes bounds what a query
// keeps however high the row cap is, and names the limit that cut it.
func TestPostgresSizeCap(t *testing.T) {
	p, target, _ := pgTool(t)
	const sql = "SELECT g, md5(g::text) FROM generate_series(1, 200000) g"
	tests := []struct {
		name      string
		lim       Limits
		rows      int // exact when > 0
		truncated string
		maxJSON   int // most bytes the rows may take as JSON, when > 0
		note      string
	}{
		{"size cap cuts", Limits{MaxRows: 1000000, MaxOutputBytes: 64 << 10, TimeoutSeconds: 10},
			0, "max_output_bytes", 64 << 10, "truncated at the size limit"},
		{"row cap cuts first", Limits{MaxRows: 10, MaxOutputBytes: 64 << 10, TimeoutSeconds: 10},
			10, "max_rows", 0, "truncated at the row limit"},
		{"everything fits", Limits{MaxRows: 1000000, MaxOutputBytes: 64 << 20, TimeoutSeconds: 30},
			200000, "", 0, "(200000 rows)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Call{Tool: QueryDatabase, Target: target,
				Args: map[string]any{"target": "appdb", "sql": sql}}
			res, err := p.Run(context.Background(), c, policy.Decision{}, tc.lim)
			if err != nil || res.Failed {
				t.Fatalf("run: %v %v", err, res)
			}
			s := res.Structured
			n, _ := s["row_count"].(int)
			if tc.rows > 0 && n != tc.rows {
				t.Errorf("row_count %d, want %d", n, tc.rows)
			}
			if n == 0 {
				t.Errorf("no rows kept")
			}
			if at, _ := s["truncated_at"].(string); at != tc.truncated {
				t.Errorf("truncated_at %q, want %q", at, tc.truncated)
			}
			if tr, _ := s["truncated"].(bool); tr != (tc.truncated != "") {
				t.Errorf("truncated %v", tr)
			}
			raw, _ := json.Marshal(s["rows"])
			if tc.maxJSON > 0 && len(raw) > tc.maxJSON {
				t.Errorf("rows take %d bytes as JSON, cap %d", len(raw), tc.maxJSON)
			}
			if tc.maxJSON > 0 && len(raw) < tc.maxJSON/2 {
				t.Errorf("rows take only %d bytes as JSON under a cap of %d", len(raw), tc.maxJSON)
			}
			if text := Render(QueryDatabase, s); !strings.Contains(text, tc.note) {
				t.Errorf("rendered text lacks %q: ...%s", tc.note, text[max(0, len(text)-80):])
			}
		})
	}
}
