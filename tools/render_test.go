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
