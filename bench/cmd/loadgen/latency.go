package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-guard/mcp-guard/bench/plainserver"
)

// Paths a query can take.
const (
	pathDirect     = "pgx direct"
	pathPlainStdio = "plain MCP, stdio"
	pathPlainHTTP  = "plain MCP, HTTP"
	pathGuardStdio = "mcp-guard, stdio"
	pathGuardHTTP  = "mcp-guard, HTTP"
	pathBaseStdio  = "mcp-guard baseline, stdio"
	pathBaseHTTP   = "mcp-guard baseline, HTTP"
)

// LatencyRow is the latency of one query over one path, one client
// calling after another.
type LatencyRow struct {
	Query string `json:"query"`
	Path  string `json:"path"`
	// ResponseBytes is the size of one answer as JSON (0 for pgx).
	ResponseBytes int `json:"response_bytes"`
	Summary
}

// latencyQueries are the statements of the latency comparison.
var latencyQueries = []struct {
	name string
	sql  string
	rows int
}{
	{"1 row", sqlOneRow, 1},
	{"1,000 rows", sqlThousand, 1000},
}

// latency measures every query over every path. The (query, path) cells
// run in blocks of a few calls, in a fresh random order each round, so
// that a slow spell of a shared machine lands on all of them alike.
func (r *runner) latency(ctx context.Context, s *servers) error {
	type cell struct {
		query, path string
		call        func() error
		lat         []time.Duration
	}
	paths := []struct {
		name string
		c    *client.Client
	}{
		{pathDirect, nil},
		{pathPlainStdio, s.plainStdio.client},
		{pathPlainHTTP, s.plainHTTPClient},
		{pathGuardStdio, s.guardStdio.client},
		{pathGuardHTTP, s.guardHTTPClient},
	}
	if s.baseHTTPClient != nil {
		paths = append(paths, []struct {
			name string
			c    *client.Client
		}{
			{pathBaseStdio, s.baseStdio.client},
			{pathBaseHTTP, s.baseHTTPClient},
		}...)
	}
	var cells []*cell
	for _, q := range latencyQueries {
		for _, p := range paths {
			c := &cell{query: q.name, path: p.name}
			if p.c == nil {
				c.call = func() error { return directQuery(ctx, r.pool, q.sql, q.rows) }
			} else {
				c.call = func() error { return queryCall(ctx, p.c, q.sql, q.rows) }
			}
			cells = append(cells, c)
		}
	}

	r.logf("latency: warming up")
	for _, c := range cells {
		for range r.opts.warmCalls {
			if err := c.call(); err != nil {
				return fmt.Errorf("%s over %s: %w", c.query, c.path, err)
			}
		}
	}
	r.logf("latency: %d rounds of %d calls per cell", r.opts.rounds, r.opts.block)
	for round := range r.opts.rounds {
		rand.Shuffle(len(cells), func(i, j int) { cells[i], cells[j] = cells[j], cells[i] })
		for _, c := range cells {
			for range r.opts.block {
				start := time.Now()
				err := c.call()
				d := time.Since(start)
				if err != nil {
					return fmt.Errorf("round %d, %s over %s: %w", round, c.query, c.path, err)
				}
				c.lat = append(c.lat, d)
			}
		}
	}

	for _, q := range latencyQueries {
		for _, p := range paths {
			for _, c := range cells {
				if c.query != q.name || c.path != p.name {
					continue
				}
				row := LatencyRow{Query: c.query, Path: c.path, Summary: summarize(c.lat)}
				if p.c != nil {
					res, err := callTool(ctx, p.c, "query_database",
						map[string]any{"target": "appdb", "sql": q.sql})
					if err != nil {
						return err
					}
					row.ResponseBytes = resultBytes(res)
				}
				r.res.Latency = append(r.res.Latency, row)
			}
		}
	}
	return nil
}

// directQuery runs sql with pgx, without MCP, and checks the row count.
func directQuery(ctx context.Context, pool *pgxpool.Pool, sql string, wantRows int) error {
	res, err := plainserver.Query(ctx, pool, sql)
	if err != nil {
		return err
	}
	if len(res.Rows) != wantRows {
		return fmt.Errorf("pgx returned %d rows, want %d", len(res.Rows), wantRows)
	}
	return nil
}
