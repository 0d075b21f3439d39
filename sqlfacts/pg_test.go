package sqlfacts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mcp-guard/mcp-guard/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// pgFixture is the schema the statements below run against.
const pgFixture = `
CREATE TYPE address AS (city text, street text);
CREATE TABLE customers (id int PRIMARY KEY, email text, card_number text,
	address address, country text);
CREATE TABLE orders (id int, customer int, customer_id int, status text,
	total numeric, note text, created_at timestamptz, email text);
CREATE TABLE staged (id int, status text);
CREATE TABLE sessions (id int, token text);
CREATE TABLE payments (id int, amount numeric);
CREATE TABLE staff (id int);
CREATE TABLE audit_log (id int);
CREATE TABLE t (a text, b text, arr int[], id int, x text);
CREATE TABLE stats (count int);
CREATE SEQUENCE orders_id_seq;
INSERT INTO customers VALUES
	(1, 'a@example.test', '4111111111111111', ROW('Berlin', 'Main'), 'DE');
INSERT INTO orders VALUES (1, 1, 1, 'paid', 10, 'n', now(), 'o@example.test');
INSERT INTO t VALUES ('a', 'b', '{1,2}', 1, 'x');
`

// pgConn connects to a fresh database holding pgFixture.
func pgConn(t *testing.T) *pgx.Conn {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a PostgreSQL server; skipped with -short")
	}
	db := pgtest.Start(t).NewDatabase(t, pgFixture)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db.DSN())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestOutputNamesMatchPostgres runs each query on a real server and checks
// that the output column names are the ones PostgreSQL reports.
func TestOutputNamesMatchPostgres(t *testing.T) {
	conn := pgConn(t)
	queries := []string{
		"SELECT lower(email) AS a, email || '' AS b, email::bytea AS c FROM customers",
		"SELECT row_to_json(c) AS doc FROM customers c",
		"SELECT to_jsonb(c.*), row_to_json(c) FROM customers c",
		"SELECT c FROM customers c",
		"SELECT email AS note, card_number AS ref FROM customers",
		"SELECT x.e FROM (SELECT email AS e FROM customers) x",
		"SELECT y FROM (SELECT email, id FROM customers) s(y, z)",
		"WITH t(mail) AS (SELECT email FROM customers) SELECT mail FROM t",
		"WITH t AS (SELECT id, email AS e FROM customers) SELECT * FROM t",
		"SELECT s.email FROM (SELECT * FROM customers) s",
		"SELECT c.to_json, c.count, c.pg_typeof FROM customers c GROUP BY c",
		"SELECT count(*), count(a), max(b) FROM t",
		"SELECT now(), coalesce(a, b), greatest(1, 2), least(1, 2), current_user, " +
			"current_date, localtimestamp, session_user, nullif(a, b) FROM t",
		"SELECT 1, a || 'x', -id, a IS NULL, a = b, NOT true FROM t",
		"SELECT 1::int, '1'::text, a::bytea, 1::integer, 1::numeric(3, 1), " +
			"'1'::double precision, now()::timestamp, a::text::varchar FROM t",
		"SELECT CASE WHEN true THEN a END, CASE WHEN true THEN a ELSE x END, " +
			"CASE WHEN true THEN 1 END FROM t",
		"SELECT (SELECT email FROM customers LIMIT 1), (SELECT 1 UNION SELECT 2 LIMIT 1)",
		"SELECT EXISTS (SELECT email FROM customers), ARRAY(SELECT email FROM customers)",
		"SELECT email FROM customers UNION SELECT note FROM orders",
		"SELECT * FROM (VALUES (1, 'a')) v",
		"VALUES (1, 2)",
		"SELECT j.value, j.key FROM customers c, jsonb_each(to_jsonb(c)) j",
		"SELECT (c.address).city, (c.address).street FROM customers c",
		`SELECT xmlelement(name a), interval '1' hour, 1 BETWEEN 1 AND 2, 1 IN (1), ` +
			`'a' COLLATE "C", ROW(1), ARRAY[1], arr[1] FROM t`,
		"SELECT extract(year FROM now()), substring('ab' FROM 1), trim(' a '), " +
			"position('a' IN 'ab'), overlay('ab' PLACING 'c' FROM 1)",
		"SELECT e FROM (SELECT email e FROM customers) s, customers",
		"WITH RECURSIVE r(n, e) AS (SELECT 1, email FROM customers " +
			"UNION ALL SELECT n + 1, e FROM r WHERE n < 2) SELECT e, n FROM r",
		"SELECT j.status FROM (customers c JOIN orders o USING (id)) AS j",
		"SELECT public.customers.email FROM public.customers",
		"SELECT x FROM generate_series(1, 2) x, generate_series(1, 2)",
		`SELECT "Weird Name" FROM (SELECT 1 AS "Weird Name") s`,
		"SELECT x.* FROM (SELECT 1 AS a, 2 AS b) x",
		"DELETE FROM sessions s WHERE id = -1 RETURNING s.token, id, upper(token)",
		"UPDATE t SET a = 'z' WHERE id = -1 RETURNING a AS old, b",
		"INSERT INTO staff VALUES (9) RETURNING id, id + 1",
	}
	for _, sql := range queries {
		t.Run(sql, func(t *testing.T) {
			f := analyzeOK(t, sql)
			var want []string
			for _, c := range f.OutputColumns {
				if c.Star {
					t.Fatalf("facts hold an unexpanded star; pick a query without one")
				}
				want = append(want, c.Name)
			}
			got := pgColumnNames(t, conn, sql)
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("PostgreSQL names %q, facts name %q", got, want)
			}
		})
	}
}

// pgColumnNames runs sql in a transaction that is rolled back and returns
// the column names of its result.
func pgColumnNames(t *testing.T, conn *pgx.Conn, sql string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()

	rows, err := tx.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	var names []string
	for _, fd := range rows.FieldDescriptions() {
		names = append(names, fd.Name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatalf("query: %v", err)
	}
	return names
}

// readOnlyViolation is PostgreSQL's "cannot execute ... in a read-only
// transaction".
const readOnlyViolation = "25006"

// TestReadOnlyAgreesWithPostgres runs every single-statement text of the
// fuzz seeds and a list of extra ones that the facts call read-only inside
// a READ ONLY transaction: PostgreSQL must not refuse any as a write.
func TestReadOnlyAgreesWithPostgres(t *testing.T) {
	conn := pgConn(t)
	corpus := append(seedCorpus(t),
		"SELECT * FROM orders WHERE id = 1",
		"EXPLAIN ANALYZE SELECT * FROM orders",
		"SHOW search_path",
		"SELECT pg_typeof(c) FROM customers c",
		"SELECT * FROM customers c WHERE c.id IN (SELECT customer FROM orders)",
		"TABLE customers",
		"SELECT count(*) OVER () FROM t",
		"WITH x AS MATERIALIZED (SELECT * FROM t) SELECT * FROM x",
		"SELECT * FROM t TABLESAMPLE SYSTEM (50)",
		"SELECT current_setting('transaction_read_only')",
	)
	ran := 0
	for _, sql := range corpus {
		f, err := Analyze(sql)
		if err != nil || f.StatementCount != 1 || !f.ReadOnly {
			continue
		}
		ran++
		if code := pgReadOnlyCode(t, conn, sql); code == readOnlyViolation {
			t.Errorf("facts say read-only, PostgreSQL refuses it as a write: %q", sql)
		}
	}
	if ran < 20 {
		t.Fatalf("only %d read-only statements ran; the corpus is too small to mean much", ran)
	}
}

// TestWritesAgreeWithPostgres runs statements PostgreSQL refuses in a
// READ ONLY transaction: the facts must not call any of them read-only.
func TestWritesAgreeWithPostgres(t *testing.T) {
	conn := pgConn(t)
	writes := []string{
		"INSERT INTO staff VALUES (1)",
		"UPDATE payments SET amount = 0",
		"DELETE FROM sessions",
		"WITH gone AS (DELETE FROM sessions RETURNING *) SELECT count(*) FROM gone",
		"SELECT * FROM orders WHERE id = 1 FOR UPDATE",
		"SELECT * FROM orders FOR SHARE",
		"SELECT * FROM orders FOR KEY SHARE",
		"SELECT * FROM (SELECT * FROM orders FOR NO KEY UPDATE) s",
		"SELECT nextval('orders_id_seq')",
		"SELECT setval('orders_id_seq', 5)",
		"SELECT * INTO copy_of FROM customers",
		"CREATE TABLE x (id int)",
		"EXPLAIN ANALYZE DELETE FROM sessions",
		"TRUNCATE staff",
		"MERGE INTO orders o USING staged s ON o.id = s.id WHEN MATCHED THEN DELETE",
		"COPY staff FROM STDIN",
	}
	for _, sql := range writes {
		t.Run(sql, func(t *testing.T) {
			f := analyzeOK(t, sql)
			if code := pgReadOnlyCode(t, conn, sql); code != readOnlyViolation {
				t.Fatalf("PostgreSQL did not refuse it as a write (code %q); pick another", code)
			}
			if f.ReadOnly {
				t.Errorf("facts say read-only")
			}
		})
	}
}

// pgReadOnlyCode runs sql in a READ ONLY transaction that is rolled back
// and returns the SQLSTATE of its error, "" when it ran.
func pgReadOnlyCode(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()

	// Some seeds never end (a recursive CTE without a stop).
	if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = '2s'"); err != nil {
		t.Fatalf("set statement_timeout: %v", err)
	}
	_, err = tx.Exec(ctx, sql)
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	if err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
	return ""
}

// seedCorpus reads the texts of the fuzz seed files.
func seedCorpus(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzAnalyze", "*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fuzz seeds: %v", err)
	}
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(string(b), "\n")
		rest = strings.TrimSpace(rest)
		quoted, ok := strings.CutPrefix(rest, "string(")
		if !ok {
			t.Fatalf("%s: not a string seed", p)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, s)
	}
	return out
}
