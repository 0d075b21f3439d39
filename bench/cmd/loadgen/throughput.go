package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// ThroughputRow is a closed-loop load of one tool over HTTP: Clients
// clients, each calling again as soon as its answer arrives.
type ThroughputRow struct {
	Server  string  `json:"server"`
	Tool    string  `json:"tool"`
	Clients int     `json:"clients"`
	Calls   int     `json:"calls"`
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"calls_per_second"`
	Summary
}

// load is one tool call of the throughput runs and its check.
type load struct {
	tool  string
	args  map[string]any
	check func(*mcp.CallToolResult) error
}

func throughputLoads() []load {
	return []load{
		{"query_database", map[string]any{"target": "appdb", "sql": sqlOneRow}, wantRows(1)},
		{"run_shell", map[string]any{"target": "local", "command": shellCommand}, wantStdout("hi\n")},
		{"read_file", map[string]any{"target": "workspace", "path": benchFile}, wantContent},
	}
}

func wantRows(n int) func(*mcp.CallToolResult) error {
	return func(res *mcp.CallToolResult) error {
		if got := rowCount(res); got != n {
			return fmt.Errorf("%d rows, want %d", got, n)
		}
		return nil
	}
}

func wantStdout(s string) func(*mcp.CallToolResult) error {
	return func(res *mcp.CallToolResult) error {
		m, _ := res.StructuredContent.(map[string]any)
		if got, _ := m["stdout"].(string); got != s {
			return fmt.Errorf("stdout %q, want %q", got, s)
		}
		return nil
	}
}

func wantContent(res *mcp.CallToolResult) error {
	m, _ := res.StructuredContent.(map[string]any)
	if c, _ := m["content"].(string); c == "" {
		return fmt.Errorf("no content: %s", clip(resultText(res), 200))
	}
	return nil
}

// throughput runs every load against the guard at each concurrency, and
// query_database against the plain server as the reference.
func (r *runner) throughput(ctx context.Context, s *servers) error {
	for _, l := range throughputLoads() {
		for _, n := range r.opts.concurrency {
			row, err := r.closedLoop(ctx, "mcp-guard", s.guardHTTP.base, l, n)
			if err != nil {
				return err
			}
			r.res.Throughput = append(r.res.Throughput, row)
			if l.tool != "query_database" {
				continue
			}
			row, err = r.closedLoop(ctx, "plain MCP", s.plainHTTP.base, l, n)
			if err != nil {
				return err
			}
			r.res.Throughput = append(r.res.Throughput, row)
		}
	}
	return nil
}

// closedLoop runs n clients calling l for the warm-up and then the
// measured duration. Calls that start after the warm-up are counted; any
// failed call fails the run, since its numbers would mean nothing.
func (r *runner) closedLoop(ctx context.Context, server, base string, l load,
	n int) (ThroughputRow, error) {
	r.logf("throughput: %s %s, %d clients", server, l.tool, n)
	clients := make([]*client.Client, n)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range clients {
		c, err := connectHTTP(ctx, base, r.hc)
		if err != nil {
			return ThroughputRow{}, err
		}
		clients[i] = c
	}

	begin := time.Now()
	measureFrom := begin.Add(r.opts.warmup)
	end := measureFrom.Add(r.opts.duration)
	var (
		mu      sync.Mutex
		lat     []time.Duration
		last    time.Time
		firstEr error
		wg      sync.WaitGroup
	)
	for _, c := range clients {
		wg.Go(func() {
			var mine []time.Duration
			for {
				start := time.Now()
				if start.After(end) {
					break
				}
				res, err := callTool(ctx, c, l.tool, l.args)
				if err == nil {
					err = l.check(res)
				}
				d := time.Since(start)
				if err != nil {
					mu.Lock()
					if firstEr == nil {
						firstEr = fmt.Errorf("%s %s with %d clients: %w", server, l.tool, n, err)
					}
					mu.Unlock()
					return
				}
				if !start.Before(measureFrom) {
					mine = append(mine, d)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			if now := time.Now(); now.After(last) {
				last = now
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if firstEr != nil {
		return ThroughputRow{}, firstEr
	}
	secs := last.Sub(measureFrom).Seconds()
	return ThroughputRow{
		Server: server, Tool: l.tool, Clients: n, Calls: len(lat), Seconds: secs,
		PerSec: ratio(float64(len(lat)), secs), Summary: summarize(lat),
	}, nil
}
