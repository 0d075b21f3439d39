// Package plainserver is the unguarded baseline of the benchmarks: an MCP
// server built with the same library as mcp-guard, offering one
// query_database tool that runs the SQL it is given with pgx and returns
// the rows. It checks nothing, records nothing and masks nothing, so the
// difference between it and mcp-guard is what the guard costs.
//
// It exists only to be measured against. Never serve it to a model: it
// runs any SQL on the database it is given.
package plainserver

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Result is what a query returned: the column names and the rows, each
// value as pgx decoded it.
type Result struct {
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
}

// Query runs sql on pool and reads every row. The direct baseline of the
// benchmarks calls it without MCP; the plain server calls it per request.
func Query(ctx context.Context, pool *pgxpool.Pool, sql string) (*Result, error) {
	rows, err := pool.Query(ctx, sql)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	res := &Result{Columns: make([]string, len(fields)), Rows: [][]any{}}
	for i, f := range fields {
		res.Columns[i] = f.Name
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, fmt.Errorf("read row: %w", err)
		}
		res.Rows = append(res.Rows, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read rows: %w", err)
	}
	return res, nil
}

// New returns an MCP server whose query_database tool runs its sql
// argument on pool. The target argument is accepted, so that the same
// call goes to the guard and to this server, and ignored.
func New(pool *pgxpool.Pool) *server.MCPServer {
	s := server.NewMCPServer("plain-postgres", "bench",
		server.WithToolCapabilities(false),
		server.WithRecovery(),
	)
	tool := mcp.NewTool("query_database",
		mcp.WithDescription("Runs one SQL statement and returns the rows."),
		mcp.WithString("target", mcp.Description("Ignored.")),
		mcp.WithString("sql", mcp.Required(), mcp.Description("The SQL to run.")),
	)
	s.AddTool(tool, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		sql, err := req.RequireString("sql")
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		res, err := Query(ctx, pool, sql)
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		text, err := json.Marshal(res.Rows)
		if err != nil {
			return mcp.NewToolResultError("encode rows: " + err.Error()), nil
		}
		structured := map[string]any{
			"columns": res.Columns, "rows": res.Rows, "row_count": len(res.Rows),
		}
		return mcp.NewToolResultStructured(structured, string(text)), nil
	})
	return s
}

// Connect opens a pool on dsn and checks that the database answers.
func Connect(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse dsn: the value does not parse as a connection string")
	}
	cfg.MaxConns = 8
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping: %w", err)
	}
	return pool, nil
}
