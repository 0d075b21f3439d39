package tools

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/internal/pgtest"
	"github.com/mcp-guard/mcp-guard/policy"
)

func pgTool(t *testing.T) (*Postgres, *config.Target, *pgtest.DB) {
	t.Helper()
	db := pgtest.AppDB(t)
	target := config.Target{Name: "appdb", Kind: config.KindPostgres, DSNEnv: "DSN"}
	p, err := NewPostgres([]config.Target{target}, func(string) string { return db.DSN() }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, &target, db
}

func query(t *testing.T, p *Postgres, target *config.Target, sql string, d policy.Decision, l Limits) *Result {
	t.Helper()
	c := &Call{Tool: QueryDatabase, Target: target, Args: map[string]any{"target": "appdb", "sql": sql}}
	res, err := p.Run(context.Background(), c, d, l)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

var pgLimits = Limits{MaxRows: 100, TimeoutSeconds: 10}

func TestPostgresTypesAsJSON(t *testing.T) {
	p, target, _ := pgTool(t)
	res := query(t, p, target, `SELECT
		'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u,
		12345678901234567890.123456789::numeric AS n,
		interval '1 year 2 months 3 days 04:05:06.5' AS i,
		'10.0.0.1'::inet AS ip, '10.0.0.0/8'::cidr AS net,
		'\xdeadbeef'::bytea AS b,
		ARRAY['a','b'] AS arr, '{"k": [1, 2]}'::jsonb AS j,
		date '2024-02-29' AS d, timestamptz '2024-02-29 12:00:00+00' AS ts,
		NULL::text AS nothing, 'NaN'::float8 AS nan`, policy.Decision{}, pgLimits)
	if res.Failed {
		t.Fatalf("query failed: %v", res.Structured)
	}
	raw, _ := json.Marshal(res.Structured["rows"])
	want := `[["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",12345678901234567890.123456789,"1 year 2 mons 3 days 04:05:06.5","10.0.0.1","10.0.0.0/8","\\xdeadbeef",["a","b"],{"k":[1,2]},"2024-02-29","2024-02-29T12:00:00Z",null,"NaN"]]`
	if string(raw) != want {
		t.Fatalf("rows\n got %s\nwant %s", raw, want)
	}
}

func TestPostgresReadOnlyUnlessDecided(t *testing.T) {
	p, target, db := pgTool(t)
	res := query(t, p, target, "UPDATE orders SET status = 'x' WHERE id = 1", policy.Decision{}, pgLimits)
	if !res.Failed || res.Structured["sqlstate"] != "25006" {
		t.Fatalf("a write ran outside the read-only transaction: %+v", res.Structured)
	}
	res = query(t, p, target, "UPDATE orders SET status = 'refunded' WHERE id = 1", policy.Decision{Writes: true}, pgLimits)
	if res.Failed || res.Structured["rows_affected"] != int64(1) {
		t.Fatalf("an allowed write failed: %+v", res.Structured)
	}
	if got := db.Query(t, "SELECT status FROM orders WHERE id = 1")[0][0]; got != "refunded" {
		t.Fatalf("the write was not committed: %s", got)
	}
}

func TestPostgresRowCapStopsTheQuery(t *testing.T) {
	p, target, _ := pgTool(t)
	res := query(t, p, target, "SELECT g FROM generate_series(1, 5000000) g", policy.Decision{}, Limits{MaxRows: 10, TimeoutSeconds: 30})
	if res.Failed || res.Structured["row_count"] != 10 || res.Structured["truncated"] != true {
		t.Fatalf("got %+v", res.Structured["row_count"])
	}
	// The connection is usable afterwards.
	res = query(t, p, target, "SELECT 1 AS one", policy.Decision{}, pgLimits)
	if res.Failed {
		t.Fatalf("the next query failed: %+v", res.Structured)
	}
}

// TestPostgresRowCapOnABufferedResult: when the rows past the cap were
// already read into pgx's buffer, dropping the connection goes unnoticed
// by pgx, and the pool must still not hand that connection out again.
func TestPostgresRowCapOnABufferedResult(t *testing.T) {
	p, target, _ := pgTool(t)
	for i := range 5 {
		res := query(t, p, target, "SELECT g FROM generate_series(1, 200) g", policy.Decision{},
			Limits{MaxRows: 100, TimeoutSeconds: 10})
		if res.Failed || res.Structured["truncated"] != true {
			t.Fatalf("round %d: %+v", i, res.Structured)
		}
		res = query(t, p, target, "SELECT 1 AS one", policy.Decision{}, pgLimits)
		if res.Failed {
			t.Fatalf("round %d: the next query failed: %+v", i, res.Structured)
		}
	}
}

func TestPostgresTimeout(t *testing.T) {
	p, target, _ := pgTool(t)
	res := query(t, p, target, "SELECT pg_sleep(5)", policy.Decision{}, Limits{MaxRows: 10, TimeoutSeconds: 1})
	if !res.Failed || res.Structured["sqlstate"] != "57014" {
		t.Fatalf("got %+v", res.Structured)
	}
}

func TestPostgresColumnSources(t *testing.T) {
	p, target, _ := pgTool(t)
	res := query(t, p, target, "SELECT email AS note, lower(company) FROM customers LIMIT 1", policy.Decision{}, pgLimits)
	if len(res.Columns) != 2 || res.Columns[0].Source == nil || res.Columns[0].Source.Column != "email" {
		t.Fatalf("the aliased column's source was not found: %+v", res.Columns)
	}
	if res.Columns[1].Source != nil {
		t.Fatalf("an expression has a source: %+v", res.Columns[1].Source)
	}
}

func TestPostgresErrorsHideTheDSN(t *testing.T) {
	target := config.Target{Name: "appdb", Kind: config.KindPostgres, DSNEnv: "DSN"}
	_, err := NewPostgres([]config.Target{target}, func(string) string { return "postgres://u:sekrit-pw@[bad" }, nil)
	if err == nil || strings.Contains(err.Error(), "sekrit-pw") {
		t.Fatalf("err = %v", err)
	}
	_, err = NewPostgres([]config.Target{target}, func(string) string { return "" }, nil)
	if err == nil || !strings.Contains(err.Error(), "DSN is empty") && !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("err = %v", err)
	}
}

func TestPostgresFactsRefuseSeveralStatements(t *testing.T) {
	p, target, _ := pgTool(t)
	for _, sql := range []string{"/* report */ COMMIT; DROP TABLE audit_log", "SELECT 1; SELECT 2"} {
		_, _, err := p.Facts(context.Background(), &Call{Target: target, Args: map[string]any{"sql": sql}})
		var r *Refusal
		if err == nil || !errorsAs(err, &r) || r.Outcome != "denied" {
			t.Errorf("%q: %v", sql, err)
		}
	}
}

func errorsAs(err error, r **Refusal) bool {
	x, ok := err.(*Refusal)
	if ok {
		*r = x
	}
	return ok
}
