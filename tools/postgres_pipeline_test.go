package tools

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mcp-guard/mcp-guard/policy"
)

// TestPostgresReadOnlyEndsInTheBatch checks that a read-only call leaves
// its pooled connection idle and reusable, whether the statement worked,
// failed as it started or failed halfway through its rows: the ROLLBACK
// travels in the batch, and after an error a separate one ends the
// aborted transaction. A connection left inside a transaction would be
// destroyed on release, so every call would open a new one.
func TestPostgresReadOnlyEndsInTheBatch(t *testing.T) {
	p, target, _ := pgTool(t)
	ctx := context.Background()
	lim := Limits{MaxRows: 100, TimeoutSeconds: 10}
	calls := []struct {
		name   string
		sql    string
		failed bool
	}{
		{"reads", "SELECT id FROM customers ORDER BY id LIMIT 3", false},
		{"fails to start", "SELECT no_such_column FROM customers", true},
		{"fails halfway", "SELECT 1 / (3 - g) FROM generate_series(1, 5) g", true},
		{"reads after failures", "SELECT count(*) FROM orders", false},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			c := &Call{Tool: QueryDatabase, Target: target,
				Args: map[string]any{"target": "appdb", "sql": tc.sql}}
			res, err := p.Run(ctx, c, policy.Decision{}, lim)
			if err != nil {
				t.Fatal(err)
			}
			if res.Failed != tc.failed {
				t.Fatalf("failed = %v, want %v: %v", res.Failed, tc.failed, res.Structured)
			}
			pool := p.pools["appdb"]
			conn, err := pool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Release()
			if st := conn.Conn().PgConn().TxStatus(); st != 'I' {
				t.Errorf("connection transaction status %q after the call, want idle", st)
			}
			if n := pool.Stat().NewConnsCount(); n != 1 {
				t.Errorf("%d connections opened so far, want 1 reused", n)
			}
		})
	}
}

// countingConn counts the writes to the server.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// TestPostgresReadOnlyIsOneRoundTrip checks that a read-only call whose
// statements are already prepared costs one write to the server: BEGIN,
// the timeout, the statement and the ROLLBACK in one batch.
func TestPostgresReadOnlyIsOneRoundTrip(t *testing.T) {
	p, target, db := pgTool(t)
	cfg, err := pgxpool.ParseConfig(db.DSN())
	if err != nil {
		t.Fatal(err)
	}
	var writes atomic.Int64
	var d net.Dialer
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, writes: &writes}, nil
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.pools["appdb"].Close()
	p.pools["appdb"] = pool

	c := &Call{Tool: QueryDatabase, Target: target,
		Args: map[string]any{"target": "appdb", "sql": "SELECT id, company FROM customers WHERE id = 1"}}
	lim := Limits{MaxRows: 100, TimeoutSeconds: 10}
	for i := range 3 {
		before := writes.Load()
		res, err := p.Run(context.Background(), c, policy.Decision{}, lim)
		if err != nil || res.Failed {
			t.Fatalf("call %d: %v %v", i, err, res)
		}
		// The first call connects, prepares and looks up column sources.
		if n := writes.Load() - before; i > 0 && n != 1 {
			t.Errorf("call %d wrote to the server %d times, want 1", i, n)
		}
	}
}
