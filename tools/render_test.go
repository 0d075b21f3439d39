package tools

import (
	"strings"
	"testing"
)

func TestRenderRowsCells(t *testing.T) {
	long := strings.Repeat("é", maxCellWidth+5)
	s := map[string]any{
		"columns": []any{map[string]any{"name": "v"}},
		"rows": []any{
			[]any{"a\nb\tc\rd"},
			[]any{nil},
			[]any{42},
			[]any{long},
		},
	}
	got := Render(QueryDatabase, s)
	for _, want := range []string{
		`a\nb\tc\rd`,
		"NULL",
		"42",
		strings.Repeat("é", maxCellWidth-1) + "…",
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("rendered table lacks line ending in %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "\n") != 7 {
		t.Errorf("want header, rule, 4 rows and the count, got:\n%s", got)
	}
}

// BenchmarkRenderRows renders a 1,000-row result like the benchmark
// table's (integer, text, numeric, timestamp).
func BenchmarkRenderRows(b *testing.B) {
	rows := make([]any, 1000)
	for i := range rows {
		rows[i] = []any{i, "Item 42", "12.99", "2026-01-01T00:00:00Z"}
	}
	s := map[string]any{"columns": []any{
		map[string]any{"name": "id"}, map[string]any{"name": "name"},
		map[string]any{"name": "price"}, map[string]any{"name": "created_at"},
	}, "rows": rows}
	b.ReportAllocs()
	for b.Loop() {
		Render(QueryDatabase, s)
	}
}

func TestRenderCountsRowsAsPsql(t *testing.T) {
	cols := []any{map[string]any{"name": "id"}}
	tests := []struct {
		name   string
		result map[string]any
		want   string
	}{
		{"one row", map[string]any{"columns": cols, "rows": []any{[]any{1}}}, "(1 row)"},
		{"two rows", map[string]any{"columns": cols, "rows": []any{[]any{1}, []any{2}}}, "(2 rows)"},
		{"no rows", map[string]any{"columns": cols, "rows": []any{}}, "(0 rows)"},
		{"one row changed", map[string]any{"command": "UPDATE 1", "rows_affected": 1}, "UPDATE 1 (1 row affected)"},
		{"three rows changed", map[string]any{"command": "DELETE 3", "rows_affected": 3}, "DELETE 3 (3 rows affected)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := renderRows(tt.result); !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want it to hold %q", got, tt.want)
			}
		})
	}
}
