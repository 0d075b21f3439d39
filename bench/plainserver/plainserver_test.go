package plainserver

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-guard/mcp-guard/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestQueryDatabase checks the baseline does the work it is compared for:
// the rows of a real query, as structured content and as text, over MCP.
func TestQueryDatabase(t *testing.T) {
	db := pgtest.AppDB(t)
	ctx := context.Background()
	pool, err := Connect(ctx, db.DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	c, err := client.NewInProcessClient(New(pool))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		sql     string
		rows    int
		isError bool
	}{
		{"rows", "SELECT g, g * 2 AS twice FROM generate_series(1, 5) g", 5, false},
		{"no rows", "SELECT 1 WHERE false", 0, false},
		{"error", "SELECT no_such_column FROM customers", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := mcp.CallToolRequest{}
			req.Params.Name = "query_database"
			req.Params.Arguments = map[string]any{"target": "any", "sql": tc.sql}
			res, err := c.CallTool(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if res.IsError != tc.isError {
				t.Fatalf("isError = %v, want %v: %+v", res.IsError, tc.isError, res.Content)
			}
			if tc.isError {
				return
			}
			raw, _ := json.Marshal(res.StructuredContent)
			var got struct {
				Columns  []string `json:"columns"`
				Rows     [][]int  `json:"rows"`
				RowCount int      `json:"row_count"`
			}
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("structured content %s: %v", raw, err)
			}
			if got.RowCount != tc.rows || len(got.Rows) != tc.rows {
				t.Errorf("row_count %d and %d rows, want %d", got.RowCount, len(got.Rows), tc.rows)
			}
			if tc.rows > 0 && (got.Rows[tc.rows-1][1] != 2*tc.rows || len(got.Columns) != 2) {
				t.Errorf("last row %v, columns %v", got.Rows[tc.rows-1], got.Columns)
			}
			text, ok := mcp.AsTextContent(res.Content[0])
			if !ok || text.Text == "" {
				t.Errorf("no text content: %+v", res.Content)
			}
		})
	}
}
