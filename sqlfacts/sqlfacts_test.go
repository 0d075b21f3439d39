package sqlfacts

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// want is a partial expectation: zero fields are not checked, except the
// booleans, which are pointers.
type want struct {
	count    int
	kind     string
	kinds    []string
	readOnly *bool
	read     []string
	written  []string
	funcs    []string
	names    []string // function names without schema
	ops      []string
	noWhere  *bool
	locks    []string
	explain  *Explain
	copy     *Copy
	settings []Setting
	roleOpts []string
}

var (
	yes = new(true)
	no  = new(false)
)

func analyzeOK(t *testing.T, sql string) *Facts {
	t.Helper()
	f, err := Analyze(sql)
	if err != nil {
		t.Fatalf("Analyze(%q): %v", sql, err)
	}
	return f
}

func check(t *testing.T, sql string, w want) {
	t.Helper()
	f := analyzeOK(t, sql)
	checkSummary(t, sql, f)
	if f.ReadOnly {
		checkReadOnly(t, f)
	}
	if w.count != 0 && f.StatementCount != w.count {
		t.Errorf("statement_count = %d, want %d", f.StatementCount, w.count)
	}
	if w.kind != "" && f.Kind != w.kind {
		t.Errorf("kind = %q, want %q", f.Kind, w.kind)
	}
	if w.readOnly != nil && f.ReadOnly != *w.readOnly {
		t.Errorf("read_only = %v, want %v", f.ReadOnly, *w.readOnly)
	}
	if w.noWhere != nil && f.WriteWithoutWhere != *w.noWhere {
		t.Errorf("write_without_where = %v, want %v", f.WriteWithoutWhere, *w.noWhere)
	}
	lists := []struct {
		name      string
		got, want []string
	}{
		{"kinds", f.Kinds, w.kinds},
		{"tables_read", f.TablesRead, w.read},
		{"tables_written", f.TablesWritten, w.written},
		{"functions", f.Functions, w.funcs},
		{"function_names", f.FunctionNames, w.names},
		{"operators", f.Operators, w.ops},
		{"row_locks", f.RowLocks, w.locks},
		{"role_options", f.RoleOptions, w.roleOpts},
	}
	for _, l := range lists {
		if l.want != nil && !slices.Equal(l.got, l.want) {
			t.Errorf("%s = %q, want %q", l.name, l.got, l.want)
		}
	}
	if w.explain != nil && !reflect.DeepEqual(f.Explain, w.explain) {
		t.Errorf("explain = %+v, want %+v", f.Explain, w.explain)
	}
	if w.copy != nil && !reflect.DeepEqual(f.Copy, w.copy) {
		t.Errorf("copy = %+v, want %+v", f.Copy, w.copy)
	}
	if w.settings != nil && !reflect.DeepEqual(f.Set, w.settings) {
		t.Errorf("settings = %+v, want %+v", f.Set, w.settings)
	}
}

func TestAnalyzeKinds(t *testing.T) {
	tests := []struct {
		name, sql string
		kind      string
		kinds     []string
		readOnly  bool
	}{
		{"select", "SELECT 1", "select", []string{"select"}, true},
		{"table shorthand", "TABLE customers", "select", []string{"select"}, true},
		{"values", "VALUES (1), (2)", "select", []string{"select"}, true},
		{"insert", "INSERT INTO orders (id) VALUES (1)", "insert", []string{"insert"}, false},
		{"update", "UPDATE orders SET status = 'x' WHERE id = 1", "update", []string{"update"}, false},
		{"delete", "DELETE FROM orders WHERE id = 1", "delete", []string{"delete"}, false},
		{"merge", "MERGE INTO orders o USING staged s ON o.id = s.id " +
			"WHEN MATCHED THEN UPDATE SET status = s.status", "merge", []string{"merge"}, false},
		{"explain", "EXPLAIN SELECT 1", "explain", []string{"explain", "select"}, true},
		{"explain analyze select", "EXPLAIN ANALYZE SELECT 1",
			"explain_analyze", []string{"explain_analyze", "select"}, true},
		{"explain analyze delete", "EXPLAIN ANALYZE DELETE FROM sessions",
			"explain_analyze", []string{"delete", "explain_analyze"}, false},
		{"explain analyze option list", "EXPLAIN (FORMAT JSON, ANALYZE) SELECT 1",
			"explain_analyze", []string{"explain_analyze", "select"}, true},
		{"explain analyze false", "EXPLAIN (ANALYZE false) SELECT 1",
			"explain", []string{"explain", "select"}, true},
		{"explain analyze zero", "EXPLAIN (ANALYZE 0) SELECT 1",
			"explain", []string{"explain", "select"}, true},
		{"explain analyze unreadable counts as on", "EXPLAIN (ANALYZE 'maybe') SELECT 1",
			"explain_analyze", []string{"explain_analyze", "select"}, true},
		{"explain without analyze still names the delete", "EXPLAIN DELETE FROM sessions",
			"explain", []string{"delete", "explain"}, false},
		{"select into", "SELECT * INTO copy_of FROM customers", "select_into", []string{"select_into"}, false},
		{"create table as", "CREATE TABLE snap AS SELECT * FROM customers",
			"create_table_as", []string{"create_table_as", "ddl", "select"}, false},
		{"materialized view", "CREATE MATERIALIZED VIEW mv AS SELECT 1",
			"create_table_as", []string{"create_table_as", "ddl", "select"}, false},
		{"copy to stdout", "COPY customers TO STDOUT", "copy", []string{"copy"}, false},
		{"copy program", "COPY customers FROM PROGRAM 'curl x'",
			"copy_program", []string{"copy", "copy_program"}, false},
		{"begin", "BEGIN", "transaction", []string{"transaction"}, false},
		{"begin read only", "BEGIN READ ONLY", "transaction", []string{"transaction"}, false},
		{"commit", "COMMIT", "transaction", []string{"transaction"}, false},
		{"rollback", "ROLLBACK", "transaction", []string{"transaction"}, false},
		{"savepoint", "SAVEPOINT a", "transaction", []string{"transaction"}, false},
		{"release", "RELEASE SAVEPOINT a", "transaction", []string{"transaction"}, false},
		{"prepare transaction", "PREPARE TRANSACTION 'x'", "transaction", []string{"transaction"}, false},
		{"set", "SET statement_timeout = 0", "set", []string{"set"}, false},
		{"set local", "SET LOCAL search_path = evil, public", "set", []string{"set"}, false},
		{"set transaction", "SET TRANSACTION READ WRITE", "set", []string{"set"}, false},
		{"set constraints", "SET CONSTRAINTS ALL DEFERRED", "set", []string{"set"}, false},
		{"reset", "RESET statement_timeout", "reset", []string{"reset"}, false},
		{"reset all", "RESET ALL", "reset", []string{"reset"}, false},
		{"discard", "DISCARD ALL", "discard", []string{"discard"}, false},
		{"set role", "SET ROLE admin", "set_role", []string{"set", "set_role"}, false},
		{"set session authorization", "SET SESSION AUTHORIZATION postgres",
			"set_role", []string{"set", "set_role"}, false},
		{"reset role", "RESET ROLE", "set_role", []string{"reset", "set_role"}, false},
		{"reset session authorization", "RESET SESSION AUTHORIZATION",
			"set_role", []string{"reset", "set_role"}, false},
		{"show", "SHOW search_path", "show", []string{"show"}, true},
		{"do", "DO $$BEGIN PERFORM 1; END$$", "do", []string{"do"}, false},
		{"call", "CALL refresh_totals()", "call", []string{"call"}, false},
		{"create table", "CREATE TABLE t (id int)", "ddl", []string{"ddl"}, false},
		{"alter table", "ALTER TABLE t ADD COLUMN x int", "ddl", []string{"ddl"}, false},
		{"comment", "COMMENT ON TABLE t IS 'x'", "ddl", []string{"ddl"}, false},
		{"create function", "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
			"ddl", []string{"ddl"}, false},
		{"create view", "CREATE VIEW v AS SELECT id FROM customers", "ddl", []string{"ddl", "select"}, false},
		{"create index", "CREATE INDEX ON t (lower(x))", "ddl", []string{"ddl"}, false},
		{"drop table", "DROP TABLE staff", "drop", []string{"ddl", "drop"}, false},
		{"drop role", "DROP ROLE r", "drop", []string{"ddl", "drop"}, false},
		{"drop database", "DROP DATABASE d", "drop", []string{"ddl", "drop"}, false},
		{"grant", "GRANT SELECT ON customers TO PUBLIC", "grant", []string{"ddl", "grant"}, false},
		{"grant role", "GRANT pg_read_server_files TO me", "grant", []string{"ddl", "grant"}, false},
		{"revoke", "REVOKE SELECT ON customers FROM PUBLIC", "revoke", []string{"ddl", "revoke"}, false},
		{"alter role", "ALTER ROLE report_reader PASSWORD 'x'", "alter_role", []string{"alter_role", "ddl"}, false},
		{"alter role set", "ALTER ROLE r SET search_path = x",
			"alter_role", []string{"alter_role", "ddl", "set"}, false},
		{"create role", "CREATE ROLE r LOGIN SUPERUSER", "create_role", []string{"create_role", "ddl"}, false},
		{"alter system", "ALTER SYSTEM SET archive_command = 'x'",
			"alter_system", []string{"alter_system", "ddl", "set"}, false},
		{"truncate", "TRUNCATE orders", "truncate", []string{"ddl", "truncate"}, false},
		{"lock", "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE", "lock", []string{"lock"}, false},
		{"listen", "LISTEN deploy", "listen", []string{"listen"}, false},
		{"unlisten", "UNLISTEN *", "listen", []string{"listen"}, false},
		{"notify", "NOTIFY deploy, 'go'", "notify", []string{"notify"}, false},
		{"prepare", "PREPARE p AS DELETE FROM sessions", "prepare", []string{"delete", "prepare"}, false},
		{"prepare select", "PREPARE p AS SELECT 1", "prepare", []string{"prepare", "select"}, false},
		{"deallocate", "DEALLOCATE p", "prepare", []string{"prepare"}, false},
		{"execute", "EXECUTE p", "execute", []string{"execute"}, false},
		{"vacuum", "VACUUM orders", "vacuum", []string{"vacuum"}, false},
		{"analyze", "ANALYZE orders", "analyze", []string{"analyze"}, false},
		{"cluster", "CLUSTER orders USING orders_pkey", "cluster", []string{"cluster"}, false},
		{"reindex", "REINDEX TABLE orders", "reindex", []string{"reindex"}, false},
		{"checkpoint", "CHECKPOINT", "checkpoint", []string{"checkpoint"}, false},
		{"load", "LOAD 'auto_explain'", "load", []string{"load"}, false},
		{"declare cursor", "DECLARE c CURSOR FOR SELECT 1", "other", []string{"other", "select"}, false},
		{"fetch", "FETCH 10 FROM c", "other", []string{"other"}, false},
		{"rule with action", "CREATE RULE r AS ON INSERT TO t DO ALSO DELETE FROM audit_log",
			"ddl", []string{"ddl", "delete"}, false},
		{"sql-standard function body", "CREATE FUNCTION f() RETURNS void LANGUAGE sql " +
			"BEGIN ATOMIC DELETE FROM audit_log; END", "ddl", []string{"ddl", "delete"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, tt.sql, want{kind: tt.kind, kinds: tt.kinds, readOnly: &tt.readOnly})
		})
	}
}

func TestAnalyzeAttacksAndControls(t *testing.T) {
	tests := []struct {
		name, sql string
		want      want
	}{
		{"commit then drop behind a comment", "/* report */ COMMIT; DROP TABLE audit_log",
			want{count: 2, kind: "transaction", kinds: []string{"ddl", "drop", "transaction"},
				readOnly: no, written: []string{"audit_log"}}},
		{"semicolon inside a string", "SELECT ';' AS semicolon_in_string",
			want{count: 1, kind: "select", readOnly: yes, read: []string{}}},
		{"delete hidden in a CTE", "WITH gone AS (DELETE FROM sessions RETURNING *) SELECT count(*) FROM gone",
			want{count: 1, kind: "select", kinds: []string{"delete", "select"}, readOnly: no,
				written: []string{"sessions"}, read: []string{}, noWhere: yes}},
		{"plain CTE", "WITH t AS (SELECT id FROM customers) SELECT * FROM t",
			want{count: 1, kinds: []string{"select"}, readOnly: yes,
				read: []string{"customers"}, written: []string{}}},
		{"explain without analyze", "EXPLAIN SELECT * FROM orders WHERE status = 'paid'",
			want{kind: "explain", readOnly: yes, read: []string{"orders"},
				explain: &Explain{Analyze: false}}},
		{"explain analyze", "EXPLAIN ANALYZE UPDATE orders SET status = 'x'",
			want{kind: "explain_analyze", readOnly: no, written: []string{"orders"},
				explain: &Explain{Analyze: true}, noWhere: yes}},
		{"server file read", "SELECT pg_read_file('/x')",
			want{readOnly: yes, funcs: []string{"pg_read_file"}}},
		{"dblink runs SQL elsewhere", "SELECT dblink_exec('...', 'DELETE FROM sessions')",
			want{readOnly: no, funcs: []string{"dblink_exec"}, kinds: []string{"select"}}},
		{"notify by function", "SELECT pg_notify('deploy','go')",
			want{readOnly: no, funcs: []string{"pg_notify"}}},
		{"update without where after a line comment", "-- weekly fix\nUPDATE payments SET amount = 0",
			want{count: 1, kind: "update", readOnly: no, noWhere: yes, written: []string{"payments"}}},
		{"update with where", "UPDATE payments SET amount = 0 WHERE id = 7",
			want{noWhere: no, written: []string{"payments"}}},
		{"delete without where in a prepared statement", "PREPARE p AS DELETE FROM sessions",
			want{noWhere: yes, written: []string{"sessions"}}},
		{"nested block comment before drop", "/* outer /* inner */ still a comment */ DROP TABLE staff",
			want{count: 1, kind: "drop", kinds: []string{"ddl", "drop"}, readOnly: no,
				written: []string{"staff"}}},
		{"dollar quote with a semicolon", "SELECT $$a;b$$ AS txt",
			want{count: 1, kind: "select", readOnly: yes}},
		{"nested comment after select", "SELECT 1 /* a /* b */ c */",
			want{count: 1, kind: "select", readOnly: yes}},
		{"session characteristics", "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
			want{kind: "set", readOnly: no, settings: []Setting{{
				Name: "default_transaction_read_only", Value: "off", Via: "set"}}}},
		{"set transaction", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE",
			want{kind: "set", readOnly: no, settings: []Setting{
				{Name: "transaction_isolation", Value: "serializable", Local: true, Via: "set"},
				{Name: "transaction_read_only", Value: "off", Local: true, Via: "set"}}}},
		{"set_config turns read only off", "SELECT set_config('default_transaction_read_only', 'off', false)",
			want{kind: "select", readOnly: no, funcs: []string{"set_config"}, settings: []Setting{{
				Name: "default_transaction_read_only", Value: "off", Via: "set_config"}}}},
		{"set_config with a computed name", "SELECT set_config(lower('ROLE'), 'x', true)",
			want{readOnly: no, settings: []Setting{{Name: "*", Value: "x", Local: true, Via: "set_config"}}}},
		{"set local", "SET LOCAL statement_timeout = '5s'",
			want{settings: []Setting{{Name: "statement_timeout", Value: "5s", Local: true, Via: "set"}}}},
		{"set search path", "SET search_path = evil, public",
			want{settings: []Setting{{Name: "search_path", Value: "evil, public", Via: "set"}}}},
		{"set role", "SET ROLE admin",
			want{kind: "set_role", settings: []Setting{{Name: "role", Value: "admin", Via: "set"}}}},
		{"reset all", "RESET ALL",
			want{settings: []Setting{{Name: "all", Reset: true, Via: "reset"}}}},
		{"begin read write", "BEGIN READ WRITE",
			want{settings: []Setting{{Name: "transaction_read_only", Value: "off", Local: true, Via: "transaction"}}}},
		{"alter system stores a setting", "ALTER SYSTEM SET archive_command = 'sh x'",
			want{kind: "alter_system", readOnly: no, settings: []Setting{{
				Name: "archive_command", Value: "sh x", Via: "alter_system"}}}},
		{"function set clause", "CREATE FUNCTION f() RETURNS int LANGUAGE sql " +
			"SET search_path = evil AS 'SELECT 1'",
			want{kind: "ddl", settings: []Setting{{Name: "search_path", Value: "evil", Via: "function"}}}},
		{"alter role password", "ALTER ROLE report_reader PASSWORD 'x'",
			want{kind: "alter_role", kinds: []string{"alter_role", "ddl"}, readOnly: no,
				roleOpts: []string{"password"}}},
		{"copy to program", "COPY (select 1) TO PROGRAM 'id'",
			want{kind: "copy_program", readOnly: no,
				copy: &Copy{Program: true, To: true, Filename: "id"}}},
		{"copy from server file", "COPY customers FROM '/etc/passwd'",
			want{kind: "copy", written: []string{"customers"},
				copy: &Copy{Filename: "/etc/passwd", Table: "customers"}}},
		{"copy to stdout reads", "COPY public.customers TO STDOUT",
			want{read: []string{"public.customers"}, written: []string{},
				copy: &Copy{To: true, Table: "public.customers"}}},
		{"select for update", "SELECT * FROM orders WHERE id = 1 FOR UPDATE",
			want{kind: "select", readOnly: no, locks: []string{"for_update"}, read: []string{"orders"}}},
		{"for share in a subquery", "SELECT * FROM (SELECT * FROM orders FOR SHARE) s",
			want{readOnly: no, locks: []string{"for_share"}}},
		{"for key share of an alias", "SELECT * FROM orders o FOR KEY SHARE OF o",
			want{readOnly: no, locks: []string{"for_key_share"}, read: []string{"orders"}}},
		{"for no key update", "SELECT 1 FROM orders FOR NO KEY UPDATE",
			want{readOnly: no, locks: []string{"for_no_key_update"}}},
		{"listen", "LISTEN deploy", want{kind: "listen", readOnly: no}},
		{"notify", "NOTIFY deploy, 'go'", want{kind: "notify", readOnly: no}},
		{"nextval writes a sequence", "SELECT nextval('orders_id_seq')",
			want{readOnly: no, funcs: []string{"nextval"}}},
		{"schema-qualified side effect", "SELECT pg_catalog.set_config('role', 'x', false)",
			want{readOnly: no, funcs: []string{"pg_catalog.set_config"}, names: []string{"set_config"}}},
		{"whole row through attribute notation", "SELECT c.to_json FROM customers c",
			want{readOnly: yes, funcs: []string{"to_json"}}},
		{"attribute notation through parentheses", "SELECT (c).row_to_json FROM customers c",
			want{funcs: []string{"row_to_json"}}},
		{"bare column named like a function is a column", "SELECT count FROM stats",
			want{funcs: []string{}}},
		{"select into writes", "SELECT * INTO copy_of FROM customers",
			want{readOnly: no, read: []string{"customers"}, written: []string{"copy_of"}}},
		{"truncate", "TRUNCATE orders, public.payments",
			want{written: []string{"orders", "public.payments"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, tt.sql, tt.want)
		})
	}
}

func TestAnalyzeFunctions(t *testing.T) {
	tests := []struct {
		name, sql string
		funcs     []string
		names     []string
		ops       []string
	}{
		{"in where", "SELECT id FROM customers WHERE lower(email) = 'a'",
			[]string{"lower"}, []string{"lower"}, []string{"="}},
		{"in order by", "SELECT id FROM customers ORDER BY md5(email)",
			[]string{"md5"}, []string{"md5"}, []string{}},
		{"in from", "SELECT * FROM pg_ls_dir('.')",
			[]string{"pg_ls_dir"}, []string{"pg_ls_dir"}, []string{}},
		{"in a cte", "WITH x AS (SELECT pg_read_file('/etc/passwd') AS t) SELECT t FROM x",
			[]string{"pg_read_file"}, []string{"pg_read_file"}, []string{}},
		{"in a subquery inside case", "SELECT CASE WHEN id > 0 THEN (SELECT pg_ls_dir('.') LIMIT 1) END FROM t",
			[]string{"pg_ls_dir"}, []string{"pg_ls_dir"}, []string{">"}},
		{"in group by and having", "SELECT 1 FROM t GROUP BY upper(a) HAVING max(b) > 1",
			[]string{"max", "upper"}, []string{"max", "upper"}, []string{">"}},
		{"in a lateral join", "SELECT * FROM t CROSS JOIN LATERAL unnest(t.arr) u",
			[]string{"unnest"}, []string{"unnest"}, []string{}},
		{"in insert values", "INSERT INTO t (a) VALUES (pg_read_file('x'))",
			[]string{"pg_read_file"}, []string{"pg_read_file"}, []string{}},
		{"in a column default of create table", "CREATE TABLE t (a text DEFAULT current_setting('x'))",
			[]string{"current_setting"}, []string{"current_setting"}, []string{}},
		{"in a filter and window", "SELECT count(*) FILTER (WHERE f(a)) OVER (ORDER BY g(b)) FROM t",
			[]string{"count", "f", "g"}, []string{"count", "f", "g"}, []string{}},
		{"quoted name", `SELECT "pg_read_file"('x')`,
			[]string{"pg_read_file"}, []string{"pg_read_file"}, []string{}},
		{"schema-qualified", "SELECT pg_catalog.pg_read_file('x')",
			[]string{"pg_catalog.pg_read_file"}, []string{"pg_read_file"}, []string{}},
		{"upper case folds", "SELECT PG_READ_FILE('x')",
			[]string{"pg_read_file"}, []string{"pg_read_file"}, []string{}},
		{"quoted upper case is another function", `SELECT "PG_READ_FILE"('x')`,
			[]string{`"PG_READ_FILE"`}, []string{`"PG_READ_FILE"`}, []string{}},
		{"quoted dotted name is one name", `SELECT "pg_catalog.pg_read_file"('x')`,
			[]string{`"pg_catalog.pg_read_file"`}, []string{`"pg_catalog.pg_read_file"`}, []string{}},
		{"operators call nothing visible", "SELECT a + b, a || b, a ~~ 'x%' FROM t",
			[]string{}, []string{}, []string{"+", "||", "~~"}},
		{"qualified operator", "SELECT a OPERATOR(pg_catalog.+) b FROM t",
			[]string{}, []string{}, []string{"pg_catalog.+"}},
		{"sql syntax functions", "SELECT extract(year FROM now()), substring('ab' FROM 1)",
			[]string{"now", "pg_catalog.extract", "pg_catalog.substring"},
			[]string{"extract", "now", "substring"}, []string{}},
		{"regclass cast is no call", "SELECT 'pg_read_file'::regproc, 'x'::regclass",
			[]string{}, []string{}, []string{}},
		{"call statement", "CALL admin.reset_all(1)",
			[]string{"admin.reset_all"}, []string{"reset_all"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, tt.sql, want{funcs: tt.funcs, names: tt.names, ops: tt.ops})
		})
	}
}

func TestAnalyzeTables(t *testing.T) {
	tests := []struct {
		name, sql     string
		read, written []string
	}{
		{"schema as written", "SELECT * FROM public.customers JOIN orders ON true",
			[]string{"orders", "public.customers"}, []string{}},
		{"catalog, schema and name", "SELECT * FROM db.public.customers",
			[]string{"db.public.customers"}, []string{}},
		{"quoted names keep their quotes", `SELECT * FROM "public.customers", "Staff", "x""y", "ok"`,
			[]string{`"Staff"`, `"public.customers"`, `"x""y"`, "ok"}, []string{}},
		{"cte name is no table", "WITH c AS (SELECT 1) SELECT * FROM c",
			[]string{}, []string{}},
		{"schema-qualified name is never a cte", "WITH customers AS (SELECT 1) SELECT * FROM public.customers",
			[]string{"public.customers"}, []string{}},
		{"later sibling cte is still a table", "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a",
			[]string{"b"}, []string{}},
		{"recursive cte sees itself", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r",
			[]string{}, []string{}},
		{"cte out of scope in an outer query",
			"SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) s, x",
			[]string{"x"}, []string{}},
		{"write target named like a cte is a table", "WITH t AS (SELECT 1) DELETE FROM t",
			[]string{}, []string{"t"}},
		{"update from", "UPDATE orders o SET status = s.status FROM staged s WHERE o.id = s.id",
			[]string{"staged"}, []string{"orders"}},
		{"delete using", "DELETE FROM orders USING blocked b WHERE orders.customer = b.id",
			[]string{"blocked"}, []string{"orders"}},
		{"insert select", "INSERT INTO archive SELECT * FROM orders",
			[]string{"orders"}, []string{"archive"}},
		{"merge", "MERGE INTO orders USING staged ON true WHEN NOT MATCHED THEN DO NOTHING",
			[]string{"staged"}, []string{"orders"}},
		{"create table references", "CREATE TABLE o (c int REFERENCES customers, LIKE tmpl) INHERITS (base)",
			[]string{"base", "customers", "tmpl"}, []string{"o"}},
		{"create view reads its query", "CREATE VIEW v AS SELECT * FROM customers",
			[]string{"customers"}, []string{"v"}},
		{"drop names", "DROP TABLE IF EXISTS staff, hr.salaries",
			[]string{}, []string{"hr.salaries", "staff"}},
		{"drop function is no table", "DROP FUNCTION f(int)",
			[]string{}, []string{}},
		{"lock and vacuum act on tables", "LOCK orders; VACUUM payments",
			[]string{}, []string{"orders", "payments"}},
		{"subquery in where", "SELECT 1 FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.x = a.x)",
			[]string{"a", "b"}, []string{}},
		{"for update of an alias is no table", "SELECT * FROM orders o FOR UPDATE OF o",
			[]string{"orders"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, tt.sql, want{read: tt.read, written: tt.written})
		})
	}
}

func col(name string, direct bool, srcs ...string) OutputColumn {
	c := OutputColumn{Name: name, Direct: direct, Sources: []ColumnRef{}}
	for _, s := range srcs {
		table, column, _ := strings.Cut(s, ":")
		c.Sources = append(c.Sources, ColumnRef{Table: table, Column: column})
	}
	return c
}

func star(direct bool, srcs ...string) OutputColumn {
	c := col("*", direct, srcs...)
	c.Star = true
	return c
}

func TestOutputColumns(t *testing.T) {
	tests := []struct {
		name, sql string
		want      []OutputColumn
	}{
		{"transformed columns", "SELECT lower(email) AS a, email || '' AS b, email::bytea AS c FROM customers",
			[]OutputColumn{
				col("a", false, "customers:email"),
				col("b", false, "customers:email"),
				col("c", false, "customers:email"),
			}},
		{"whole row to json", "SELECT row_to_json(c) AS doc FROM customers c",
			[]OutputColumn{col("doc", false, "customers:*")}},
		{"whole row star argument", "SELECT to_jsonb(c.*) FROM customers c",
			[]OutputColumn{col("to_jsonb", false, "customers:*")}},
		{"bare whole row", "SELECT c FROM customers c",
			[]OutputColumn{col("c", false, "customers:*")}},
		{"renamed direct columns", "SELECT email AS note, card_number AS ref FROM customers",
			[]OutputColumn{
				col("note", true, "customers:email"),
				col("ref", true, "customers:card_number"),
			}},
		{"through a subquery alias", "SELECT x.e FROM (SELECT email AS e FROM customers) x",
			[]OutputColumn{col("e", true, "customers:email")}},
		{"transformed inside a subquery", "SELECT x.e FROM (SELECT upper(email) AS e FROM customers) x",
			[]OutputColumn{col("e", false, "customers:email")}},
		{"subquery column aliases", "SELECT y FROM (SELECT email, id FROM customers) s(y, z)",
			[]OutputColumn{col("y", true, "customers:email")}},
		{"through a cte with column names", "WITH t(mail) AS (SELECT email FROM customers) SELECT mail FROM t",
			[]OutputColumn{col("mail", true, "customers:email")}},
		{"star over a cte expands", "WITH t AS (SELECT id, email AS e FROM customers) SELECT * FROM t",
			[]OutputColumn{col("id", true, "customers:id"), col("e", true, "customers:email")}},
		{"star over a table", "SELECT * FROM customers",
			[]OutputColumn{star(true, "customers:*")}},
		{"qualified star over a join", "SELECT o.*, c.email FROM orders o JOIN customers c ON c.id = o.customer",
			[]OutputColumn{star(true, "orders:*"), col("email", true, "customers:email")}},
		{"column through a star subquery", "SELECT s.email FROM (SELECT * FROM customers) s",
			[]OutputColumn{col("email", true, "customers:email")}},
		{"unqualified column with two tables names both", "SELECT email FROM customers, orders",
			[]OutputColumn{col("email", true, "customers:email", "orders:email")}},
		{"table alias column list", "SELECT a FROM customers c(a, b)",
			[]OutputColumn{col("a", true, "customers:*")}},
		{"attribute notation on a table", "SELECT c.to_json FROM customers c",
			[]OutputColumn{col("to_json", false, "customers:*", "customers:to_json")}},
		{"attribute notation on a subquery", "SELECT s.my_func FROM (SELECT email FROM customers) s",
			[]OutputColumn{col("my_func", false, "customers:email")}},
		{"function names", "SELECT count(*), now(), coalesce(a, b), greatest(1, 2), current_user FROM t",
			[]OutputColumn{
				col("count", false), col("now", false), col("coalesce", false, "t:a", "t:b"),
				col("greatest", false), col("current_user", false),
			}},
		{"expressions without a name", "SELECT 1, a + 1, -a, a IS NULL FROM t",
			[]OutputColumn{
				col("?column?", false), col("?column?", false, "t:a"),
				col("?column?", false, "t:a"), col("?column?", false, "t:a"),
			}},
		{"casts and case", "SELECT 1::int, '1'::text, a::bytea, CASE WHEN true THEN a END FROM t",
			[]OutputColumn{
				col("int4", false), col("text", false), col("a", false, "t:a"),
				col("case", false, "t:a"),
			}},
		{"scalar subquery keeps its column", "SELECT (SELECT email FROM customers LIMIT 1)",
			[]OutputColumn{col("email", true, "customers:email")}},
		{"exists has no sources", "SELECT EXISTS (SELECT email FROM customers)",
			[]OutputColumn{col("exists", false)}},
		{"array subquery", "SELECT ARRAY(SELECT email FROM customers)",
			[]OutputColumn{col("array", false, "customers:email")}},
		{"union merges sources", "SELECT email FROM customers UNION SELECT note FROM orders",
			[]OutputColumn{col("email", true, "customers:email", "orders:note")}},
		{"values", "SELECT * FROM (VALUES (1, 'a')) v",
			[]OutputColumn{col("column1", false), col("column2", false)}},
		{"function in from", "SELECT * FROM json_each((SELECT row_to_json(c) FROM customers c))",
			[]OutputColumn{star(false, "customers:*")}},
		{"lateral function reads its argument",
			"SELECT j.value FROM customers c, jsonb_each(to_jsonb(c)) j",
			[]OutputColumn{col("value", false, "customers:*")}},
		{"correlated subquery may read the outer table",
			"SELECT (SELECT email FROM orders o WHERE o.id = c.id) FROM customers c",
			[]OutputColumn{col("email", true, "customers:email", "orders:email")}},
		{"delete returning", "DELETE FROM sessions s WHERE id = 1 RETURNING s.token, *",
			[]OutputColumn{col("token", true, "sessions:token"), star(true, "sessions:*")}},
		{"cte with returning", "WITH gone AS (DELETE FROM sessions RETURNING token) SELECT token FROM gone",
			[]OutputColumn{col("token", true, "sessions:token")}},
		{"recursive cte", "WITH RECURSIVE r(n, e) AS (SELECT 1, email FROM customers " +
			"UNION ALL SELECT n + 1, e FROM r) SELECT e FROM r",
			[]OutputColumn{col("e", true, "customers:email")}},
		{"join alias hides inner names", "SELECT j.email FROM (customers c JOIN orders o USING (id)) AS j",
			[]OutputColumn{col("email", true, "customers:email", "orders:email")}},
		{"schema-qualified reference", "SELECT public.customers.email FROM public.customers",
			[]OutputColumn{col("email", true, "public.customers:email")}},
		{"composite field is not direct", "SELECT (c.address).city FROM customers c",
			[]OutputColumn{col("city", false, "customers:address")}},
		{"composite star stays a star", "SELECT (c.address).* FROM customers c",
			[]OutputColumn{star(false, "customers:address")}},
		{"select into returns nothing", "SELECT email INTO t FROM customers", []OutputColumn{}},
		{"explain returns the plan", "EXPLAIN SELECT email FROM customers",
			[]OutputColumn{col("QUERY PLAN", false)}},
		{"ddl returns nothing", "DROP TABLE staff", []OutputColumn{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := analyzeOK(t, tt.sql)
			// Calls (and their names) are checked in TestOutputColumnCalls.
			for i := range f.OutputColumns {
				f.OutputColumns[i].CallNames = nil
			}
			sameJSON(t, "output columns", f.OutputColumns, tt.want)
		})
	}
}

func TestAnalyzeErrors(t *testing.T) {
	tests := []struct {
		name, sql string
		is        error // nil: a *SyntaxError
		secret    string
	}{
		{"syntax error", "SELEC 1", nil, ""},
		{"unterminated string keeps the secret out", "ALTER ROLE x PASSWORD 'hunter2", nil, "hunter2"},
		{"error near a secret", "ALTER ROLE x PASSWORD 'hunter2' 'again'", nil, "again"},
		{"unterminated dollar quote", "SELECT $$hunter2", nil, "hunter2"},
		{"unterminated comment", "SELECT 1 /* hunter2", nil, "hunter2"},
		{"empty", "", ErrNoStatement, ""},
		{"too long", "SELECT 1" + strings.Repeat(" ", MaxLength), ErrTooLong, ""},
		{"too deep", "SELECT 1" + strings.Repeat("+1", 5000), ErrTooComplex, ""},
		{"only a comment", "-- nothing\n/* here */ ;", ErrNoStatement, ""},
		{"nul byte", "SELECT 1\x00; DROP TABLE staff", ErrInvalidText, ""},
		{"invalid utf-8", "SELECT '\xff'", ErrInvalidText, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Analyze(tt.sql)
			if err == nil {
				t.Fatalf("Analyze(%q) = %+v, want an error", tt.sql, f)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v, want %v", err, tt.is)
			}
			var se *SyntaxError
			if tt.is == nil && !errors.As(err, &se) {
				t.Errorf("error %v (%T), want a *SyntaxError", err, err)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q shows the secret %q", err, tt.secret)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		name, sql, want string
	}{
		{"password", "ALTER ROLE x PASSWORD 'secret'", "ALTER ROLE x PASSWORD '***'"},
		{"escaped quote", `SELECT E'a\'secret'`, "SELECT '***'"},
		{"doubled quote", "SELECT 'it''s secret'", "SELECT '***'"},
		{"dollar quote", "SELECT $pw$secret$pw$, $$a;b$$", "SELECT '***', '***'"},
		{"unicode and bit strings", `SELECT U&'s\0065cret', B'101', X'1F'`, "SELECT '***', '***', '***'"},
		{"comments and identifiers kept", `SELECT "col" /* 'x' */ -- 'y'` + "\nFROM t",
			`SELECT "col" /* 'x' */ -- 'y'` + "\nFROM t"},
		{"quote inside a nested comment is no string", "SELECT 1 /* a /* ' */ ' */, 'secret'",
			"SELECT 1 /* a /* ' */ ' */, '***'"},
		{"no constants", "SELECT id FROM customers", "SELECT id FROM customers"},
		{"multibyte text around", "SELECT 'ключ' AS ключ", "SELECT '***' AS ключ"},
		{"unterminated", "ALTER ROLE x PASSWORD 'secret", Unparsable},
		{"nul byte", "SELECT 'a\x00b'", Unparsable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Redact(tt.sql); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.sql, got, tt.want)
			}
		})
	}
}

func TestFactsJSONHasArrays(t *testing.T) {
	f := analyzeOK(t, "DROP TABLE staff")
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"kinds", "tables_read", "tables_written", "functions",
		"function_names", "operators", "row_locks", "output_columns", "filter_columns"} {
		if _, ok := m[k].([]any); !ok {
			t.Errorf("%s = %v (%T), want a JSON array", k, m[k], m[k])
		}
	}
}

func BenchmarkAnalyze(b *testing.B) {
	const sql = `SELECT c.id, c.email, o.total, lower(o.status) AS status
		FROM customers c JOIN orders o ON o.customer_id = c.id
		WHERE o.created_at > now() - interval '30 days' AND c.country = 'DE'
		ORDER BY o.total DESC LIMIT 50`
	for b.Loop() {
		if _, err := Analyze(sql); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOutputColumnCalls checks the calls recorded for computed columns:
// names in order, constant arguments, and "?" where the transformation
// happens out of sight.
func TestOutputColumnCalls(t *testing.T) {
	tests := []struct {
		name, sql string
		want      string // calls as name(args), constants quoted, others _
	}{
		{"direct column", "SELECT body FROM support_tickets", ""},
		{"nested", "SELECT upper(reverse(body)) FROM support_tickets", "upper(_) reverse(_)"},
		{"constants", "SELECT translate(body, '0123456789', 'abcdefghij') FROM t",
			`translate(_,"0123456789","abcdefghij")`},
		{"operator and cast", "SELECT body || 'x'::text FROM t", "op:||() ::()"},
		{"case", "SELECT CASE WHEN id > 1 THEN lower(body) END FROM t",
			"expr:case_expr() expr:case_when() op:>() lower(_)"},
		{"computed in a subquery", "SELECT x FROM (SELECT reverse(body) AS x FROM t) q", "?()"},
		{"scalar subquery inside", "SELECT upper((SELECT body FROM t LIMIT 1))", "upper(_) ?()"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := analyzeOK(t, tt.sql)
			var parts []string
			for _, c := range f.OutputColumns[0].Calls {
				var args []string
				for i, a := range c.Args {
					if c.Const[i] {
						args = append(args, strconv.Quote(a))
					} else {
						args = append(args, "_")
					}
				}
				parts = append(parts, c.Name+"("+strings.Join(args, ",")+")")
			}
			if got := strings.Join(parts, " "); got != tt.want {
				t.Errorf("calls %q, want %q", got, tt.want)
			}
			oc := f.OutputColumns[0]
			if len(oc.CallNames) != len(oc.Calls) {
				t.Fatalf("call names %q for %d calls", oc.CallNames, len(oc.Calls))
			}
			for i, c := range oc.Calls {
				if oc.CallNames[i] != c.Name {
					t.Errorf("call name %d is %q, want %q", i, oc.CallNames[i], c.Name)
				}
			}
		})
	}
}

// sameJSON fails unless got and want encode to the same JSON.
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s\n got %s\nwant %s", what, g, w)
	}
}
