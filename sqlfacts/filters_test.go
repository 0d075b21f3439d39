package sqlfacts

import (
	"strings"
	"testing"
)

// refs builds column references from "table:column" strings.
func refs(specs ...string) []ColumnRef {
	out := []ColumnRef{}
	for _, s := range specs {
		table, column, _ := strings.Cut(s, ":")
		out = append(out, ColumnRef{Table: table, Column: column})
	}
	return out
}

func TestFilterColumns(t *testing.T) {
	tests := []struct {
		name, sql string
		want      []ColumnRef
	}{
		// Output values are the lineage's business, not filters.
		{"plain output", "SELECT email, upper(card_number) FROM customers", refs()},
		{"star output", "SELECT * FROM customers", refs()},
		{"subquery passes its list through", "SELECT s.id FROM (SELECT id, email FROM customers) s", refs()},
		{"scalar subquery value", "SELECT (SELECT email FROM customers LIMIT 1)", refs()},

		// The oracle of the finding: characters compared one row at a time.
		{"ascii substr oracle",
			"SELECT g, n FROM integrations, generate_series(1,40) g, generate_series(32,126) n " +
				"WHERE name='github' AND ascii(substr(api_token,g,1))=n ORDER BY g",
			refs("integrations:api_token", "integrations:g", "integrations:n", "integrations:name")},
		{"where", "SELECT id FROM customers WHERE email = 'x@y'", refs("customers:email")},
		{"join on", "SELECT c.id FROM customers c JOIN orders o ON c.id = o.customer_id",
			refs("customers:id", "orders:customer_id")},
		{"join using names both sides", "SELECT 1 FROM customers c JOIN staff s USING (email)",
			refs("customers:email", "staff:email")},
		{"group by and having", "SELECT count(*) FROM staff GROUP BY role HAVING max(email) > 'm'",
			refs("staff:email", "staff:role")},
		{"order by input column", "SELECT id FROM orders ORDER BY created_at", refs("orders:created_at")},
		{"order by output alias", "SELECT api_token AS t FROM integrations ORDER BY t",
			refs("integrations:api_token")},
		{"order by alias hides the input column", "SELECT company AS email FROM customers ORDER BY email",
			refs("customers:company")},
		{"group by takes input column and alias", "SELECT company AS email FROM customers GROUP BY email",
			refs("customers:company", "customers:email")},
		{"order by position", "SELECT id, card_number FROM customers ORDER BY 2",
			refs("customers:card_number")},
		{"order by position past a star", "SELECT * FROM sessions ORDER BY 3", refs("sessions:*")},
		{"order by name next to a star", "SELECT *, s::text AS whole FROM sessions s ORDER BY id",
			refs("sessions:id")},
		{"distinct on", "SELECT DISTINCT ON (token) id FROM sessions", refs("sessions:token")},
		{"window in output", "SELECT id, row_number() OVER (PARTITION BY role ORDER BY email) FROM staff",
			refs("staff:email", "staff:role")},
		{"window clause", "SELECT id, rank() OVER w FROM sessions WINDOW w AS (ORDER BY token)",
			refs("sessions:token")},
		{"case condition in output",
			"SELECT CASE WHEN api_token LIKE 'g%' THEN 'yes' ELSE name END FROM integrations",
			refs("integrations:api_token")},
		{"simple case compares its argument", "SELECT CASE token WHEN 'x' THEN 1 END FROM sessions",
			refs("sessions:token")},
		{"aggregate filter and order",
			"SELECT count(*) FILTER (WHERE email LIKE 'a%'), string_agg(login, ',' ORDER BY email) FROM staff",
			refs("staff:email")},
		{"within group is the value", "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY total) FROM orders",
			refs()},
		// Without the catalogue an inner name may be the outer table's.
		{"limit expression", "SELECT id FROM orders LIMIT (SELECT ascii(api_token) FROM integrations LIMIT 1)",
			refs("integrations:api_token", "orders:api_token")},
		{"in subquery select list", "SELECT id FROM orders WHERE 'x' IN (SELECT s.email FROM staff s)",
			refs("staff:email")},
		{"exists in output", "SELECT EXISTS (SELECT 1 FROM integrations WHERE api_token LIKE 'g%')",
			refs("integrations:api_token")},
		{"correlated subquery", "SELECT (SELECT 1 FROM integrations i WHERE i.name = c.company) FROM customers c",
			refs("customers:company", "integrations:name")},
		{"through a subquery alias", "SELECT 1 FROM (SELECT ascii(api_token) AS a FROM integrations) s WHERE a = 103",
			refs("integrations:api_token")},
		{"through a cte", "WITH x AS (SELECT api_token AS t FROM integrations) SELECT 1 FROM x WHERE t > 'g'",
			refs("integrations:api_token")},
		{"unused cte condition still counts",
			"WITH d AS (DELETE FROM sessions WHERE token LIKE 'a%' RETURNING 1) SELECT 1",
			refs("sessions:token")},
		{"union order by output name",
			"SELECT x FROM (SELECT api_token x FROM integrations UNION ALL SELECT 'm') s ORDER BY x",
			refs("integrations:api_token")},
		{"set operation order by", "SELECT email AS e FROM staff UNION SELECT 'm' ORDER BY e",
			refs("staff:email")},
		{"whole row in where", "SELECT id FROM integrations i WHERE i::text LIKE '%ghp%'",
			refs("integrations:*")},
		{"set-returning function in the output", "SELECT id, generate_series(1, ascii(api_token)) FROM integrations",
			refs("integrations:api_token")},
		{"other function in the output", "SELECT id, repeat('x', ascii(api_token)) FROM integrations", refs()},
		{"function in from", "SELECT 1 FROM integrations i, generate_series(1, length(i.api_token)) g",
			refs("integrations:api_token")},
		{"lateral function value", "SELECT 1 FROM sessions s, jsonb_each_text(to_jsonb(s)) e WHERE e.value = 'x'",
			refs("sessions:*")},
		{"tablesample", "SELECT id FROM orders TABLESAMPLE bernoulli (50) REPEATABLE (1)", refs()},
		// Stored values are not filters (writes need approval).
		{"update where, not set", "UPDATE staff SET role = email WHERE login = 'sam'",
			refs("staff:login")},
		{"update set with a case condition", "UPDATE staff SET role = CASE WHEN email LIKE 'a%' THEN 'x' END WHERE true",
			refs("staff:email")},
		{"delete using", "DELETE FROM orders o USING customers c WHERE o.customer_id = c.id AND c.email = 'x'",
			refs("customers:email", "customers:id", "orders:customer_id")},
		{"insert select stores values", "INSERT INTO notes (body) SELECT api_token FROM integrations WHERE name = 'x'",
			refs("integrations:name")},
		{"on conflict", "INSERT INTO staff (login, email) VALUES ('x', 'y') ON CONFLICT (email) " +
			"DO UPDATE SET login = excluded.login WHERE staff.role = 'admin'",
			refs("staff:email", "staff:role")},
		{"merge", "MERGE INTO staff s USING customers c ON s.email = c.email " +
			"WHEN MATCHED AND c.id > 1 THEN UPDATE SET role = c.company",
			refs("customers:email", "customers:id", "staff:email")},
		{"returning is output", "DELETE FROM sessions WHERE id = 1 RETURNING token", refs("sessions:id")},
		{"select into stores", "SELECT email INTO t2 FROM staff ORDER BY login", refs("staff:login")},
		{"explain", "EXPLAIN ANALYZE SELECT api_token FROM integrations WHERE name = 'x'",
			refs("integrations:name")},
		{"explain filter", "EXPLAIN SELECT * FROM integrations WHERE api_token < 'm'",
			refs("integrations:api_token")},
		{"create table as", "CREATE TABLE t2 AS SELECT * FROM staff WHERE email > 'm'", refs("staff:email")},
		{"intersect compares its arms", "SELECT id, left(email, 4) FROM customers INTERSECT SELECT 1, 'ana.'",
			refs("customers:email", "customers:id")},
		{"union compares", "SELECT left(email, 1) FROM customers WHERE id = 1 UNION SELECT 'a'",
			refs("customers:email", "customers:id")},
		{"except compares", "SELECT api_token FROM integrations EXCEPT SELECT 'x'",
			refs("integrations:api_token")},
		{"distinct compares", "SELECT DISTINCT left(card_number, 1) FROM customers",
			refs("customers:card_number")},
		{"union all does not compare", "SELECT email FROM customers UNION ALL SELECT 'a'", refs()},
		{"natural join with a subquery compares its columns",
			"SELECT a.id FROM (SELECT id, length(ltrim(email, 'abc')) AS k FROM customers) a NATURAL JOIN (SELECT 1 AS k) b",
			refs("customers:email", "customers:id")},
		{"natural join with a table compares its whole row",
			"SELECT 1 FROM sessions NATURAL JOIN (VALUES ('x')) v(token)", refs("sessions:*")},
		{"cycle compares the cte's columns",
			"WITH RECURSIVE r(e, n) AS (SELECT email, 1 FROM customers UNION ALL SELECT 'x', n + 1 FROM r WHERE n < 3) CYCLE e SET c USING p SELECT n FROM r",
			refs("customers:email")},
		{"distinct on compares its keys only", "SELECT DISTINCT ON (id) email FROM customers",
			refs("customers:id")},
		{"unresolved name", "SELECT 1 WHERE zz = 1", refs(":zz")},
		{"unresolved qualified star", "SELECT 1 WHERE row(q.*) IS NULL", refs(":*")},
		{"ddl column is unresolved", "CREATE INDEX ON staff (lower(email))", refs(":email")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := analyzeOK(t, tt.sql)
			sameJSON(t, "filter columns", f.FilterColumns, tt.want)
		})
	}
}
