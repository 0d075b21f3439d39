package guard

import (
	"testing"

	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/sqlfacts"
	"github.com/mcp-guard/mcp-guard/tools"
)

// TestCoverageOfColumnsTheParserCannotPlace checks result columns the SQL
// facts do not account for: they are masked whole when a table the
// statement reads has a masked column, and left alone otherwise.
func TestCoverageOfColumnsTheParserCannotPlace(t *testing.T) {
	rules := []policy.MaskRule{{Table: "*", Column: "token", Strategy: "redact"}}
	catalogue := map[string][]string{
		"sessions": {"id", "staff_login", "token"},
		"orders":   {"id", "status"},
	}
	cv := coverage{rules: rules, columns: func(table string) ([]string, bool) {
		cols, ok := catalogue[table]
		return cols, ok
	}}
	unresolved := sqlfacts.OutputColumn{Name: "*", Star: true, Sources: []sqlfacts.ColumnRef{}}
	plain := sqlfacts.OutputColumn{Name: "n", Sources: []sqlfacts.ColumnRef{}}
	tests := []struct {
		name  string
		outs  []sqlfacts.OutputColumn
		read  []string
		i, n  int
		whole bool // want the column masked whole
	}{
		{"unresolved star over a masked table", []sqlfacts.OutputColumn{unresolved},
			[]string{"sessions"}, 1, 3, true},
		{"unresolved star over other tables", []sqlfacts.OutputColumn{unresolved},
			[]string{"orders"}, 1, 3, false},
		{"more columns than the parser saw", []sqlfacts.OutputColumn{plain},
			[]string{"public.sessions"}, 1, 2, true},
		{"unknown table", []sqlfacts.OutputColumn{unresolved},
			[]string{"no_such_table"}, 0, 1, true},
		{"a constant beside a masked table", []sqlfacts.OutputColumn{plain},
			[]string{"sessions"}, 0, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sf := &sqlfacts.Facts{OutputColumns: tc.outs, TablesRead: tc.read}
			r, whole, err := cv.columnRule(sf, tc.i, tc.n, tools.Column{Name: "x"})
			if err != nil {
				t.Fatal(err)
			}
			if got := r != nil && whole; got != tc.whole {
				t.Errorf("masked whole %v, want %v (rule %v)", got, tc.whole, r)
			}
		})
	}
}

// TestCandidatesAroundStars checks how result columns map to the parser's
// output columns when a star hides how many columns it expands to.
func TestCandidatesAroundStars(t *testing.T) {
	col := func(name string, star bool) sqlfacts.OutputColumn {
		return sqlfacts.OutputColumn{Name: name, Star: star}
	}
	outs := []sqlfacts.OutputColumn{col("a", false), col("*", true), col("b", false),
		col("*", true), col("c", false)}
	tests := []struct {
		i, n int
		want string // names of the candidates
	}{
		{0, 9, "a"},
		{1, 9, "*b*"},
		{7, 9, "*b*"},
		{8, 9, "c"},
	}
	for _, tc := range tests {
		got, known := candidates(outs, tc.i, tc.n)
		names := ""
		for _, c := range got {
			names += c.Name
		}
		if names != tc.want || !known {
			t.Errorf("candidates(%d of %d) = %q %v, want %q", tc.i, tc.n, names, known, tc.want)
		}
	}
}
