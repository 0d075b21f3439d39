package tools

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/mcp-guard/mcp-guard/policy"
)

// TestPostgresHugeValue checks that one value far over the output cap is
// refused before it is read: the call ends with a "too large" tool error,
// the process does not allocate the value, and the pool keeps working.
func TestPostgresHugeValue(t *testing.T) {
	p, target, _ := pgTool(t)
	run := func(t *testing.T, sql string, lim Limits) *Result {
		t.Helper()
		c := &Call{Tool: QueryDatabase, Target: target,
			Args: map[string]any{"target": "appdb", "sql": sql}}
		res, err := p.Run(context.Background(), c, policy.Decision{}, lim)
		if err != nil {
			t.Fatalf("run %q: internal error %v", sql, err)
		}
		return res
	}
	lim := Limits{MaxRows: 1000, MaxOutputBytes: 64 << 10, TimeoutSeconds: 20}

	tests := []struct {
		name      string
		sql       string
		tooLarge  bool   // a tool error naming the size
		truncated string // else: truncated_at
		rows      int
	}{
		{"one value of 60 MB", "SELECT repeat('x', 60000000) AS r", true, "", 0},
		{"a huge value after small rows",
			"SELECT CASE WHEN g < 3 THEN 'small' ELSE repeat('y', 30000000) END FROM generate_series(1, 3) g",
			true, "", 0},
		{"one value just over the cap", "SELECT repeat('x', 70000) AS r", false, "max_output_bytes", 0},
		{"rows that add up past the cap",
			"SELECT repeat('x', 30000) FROM generate_series(1, 10)", false, "max_output_bytes", 2},
		{"under the cap", "SELECT repeat('x', 1000) AS r", false, "", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			res := run(t, tc.sql, lim)
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
				t.Errorf("the call allocated %d MiB under a cap of 64 KiB", grew>>20)
			}

			msg, _ := res.Structured["error"].(string)
			if tc.tooLarge {
				if !res.Failed || !strings.Contains(msg, "too large") || !strings.Contains(msg, "65536") {
					t.Fatalf("want a too-large error naming the cap, got failed=%v %q", res.Failed, msg)
				}
			} else {
				if res.Failed {
					t.Fatalf("unexpected error: %q", msg)
				}
				at, _ := res.Structured["truncated_at"].(string)
				if at != tc.truncated {
					t.Errorf("truncated_at %q, want %q", at, tc.truncated)
				}
				if n, _ := res.Structured["row_count"].(int); n != tc.rows {
					t.Errorf("row_count %d, want %d", n, tc.rows)
				}
			}

			// The pool must still answer; a refused connection is gone.
			again := run(t, "SELECT 41 + 1 AS n", lim)
			if again.Failed || again.Structured["row_count"] != 1 {
				t.Errorf("the next call failed: %v", again.Structured)
			}
		})
	}
}
