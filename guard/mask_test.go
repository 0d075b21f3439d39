package guard_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/guard"
	"github.com/mcp-guard/mcp-guard/internal/pgtest"
	"github.com/mcp-guard/mcp-guard/masking"
	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/sqlfacts"
	"github.com/mcp-guard/mcp-guard/tools"
)

// defaultMask is the mask list of the bundled policy: rules for any table.
var defaultMask = []policy.MaskRule{
	{Table: "*", Column: "email", Strategy: "redact", Transformed: "mask"},
	{Table: "*", Column: "card_number", Strategy: "last", Keep: 4, Transformed: "mask"},
	{Table: "*", Column: "token", Strategy: "redact", Transformed: "mask"},
	{Table: "*", Column: "api_token", Strategy: "redact", Transformed: "mask"},
}

// Values of the fixture that only column rules catch: session tokens have
// no shape a value detector knows, and an encoded email or card number has
// none either.
var (
	sessionToken = "sess_5b1f0c9e7a2d4e6f8a0b1c2d3e4f5a6b"
	tokenTail    = "5b1f0c9e7a2d4e6f8a0b1c2d3e4f5a6b"
	// translate(..., '0123456789@', 'abcdefghij#') of ben.okafor's row.
	encodedEmail = "ben.okafor#contoso.example"
	encodedCard  = "ffffffffffffeeee"
)

// maskFixture runs SQL on a real database and masks the result with the
// bundled policy's rules, as the guard does after a call.
type maskFixture struct {
	pg     *tools.Postgres
	target config.Target
	masker guard.ResultMasker
}

func newMaskFixture(t *testing.T) *maskFixture {
	t.Helper()
	db := pgtest.AppDB(t)
	target := config.Target{Name: "appdb", Kind: config.KindPostgres, DSNEnv: "DSN"}
	pg, err := tools.NewPostgres([]config.Target{target},
		func(string) string { return db.DSN() }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	m, err := masking.New(masking.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &maskFixture{pg: pg, target: target, masker: guard.ResultMasker{M: m}}
}

// run returns the result of sql before masking, and its facts.
func (f *maskFixture) run(t *testing.T, sql string) (*tools.Result, *sqlfacts.Facts) {
	t.Helper()
	facts, err := sqlfacts.Analyze(sql)
	if err != nil {
		t.Fatalf("analyze: %v", err)
	}
	c := &tools.Call{Tool: tools.QueryDatabase, Target: &f.target,
		Args: map[string]any{"target": "appdb", "sql": sql}}
	lim := tools.Limits{MaxRows: 100, TimeoutSeconds: 10, MaxOutputBytes: 1 << 20}
	res, err := f.pg.Run(context.Background(), c, policy.Decision{}, lim)
	if err != nil || res.Failed {
		t.Fatalf("run %q: %v %v", sql, err, res)
	}
	return res, facts
}

func (f *maskFixture) mask(t *testing.T, res *tools.Result, facts *sqlfacts.Facts) string {
	t.Helper()
	return f.maskWith(t, res, facts, defaultMask)
}

// maskWith masks a result under the column rules given and returns its
// rows as JSON.
func (f *maskFixture) maskWith(t *testing.T, res *tools.Result, facts *sqlfacts.Facts, rules []policy.MaskRule) string {
	t.Helper()
	d := policy.Decision{Outcome: policy.OutcomeAllow, Mask: rules}
	if _, err := f.masker.MaskResult(tools.QueryDatabase, facts, res, d); err != nil {
		t.Fatalf("mask: %v", err)
	}
	raw, err := json.Marshal(res.Structured["rows"])
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestWholeRowValuesAreMasked runs the spellings that fed a whole row to
// the answer and checks that a table with a masked column masks the value
// whole, whatever function, cast or encoding carries it.
func TestWholeRowValuesAreMasked(t *testing.T) {
	f := newMaskFixture(t)
	tests := []struct {
		name   string
		sql    string
		secret []string // must not appear after masking
	}{
		{"row_to_json", "SELECT row_to_json(s) FROM sessions s", []string{tokenTail}},
		{"attribute call", "SELECT s.to_json FROM sessions s", []string{tokenTail}},
		{"cast to text", "SELECT s::text FROM sessions s", []string{tokenTail}},
		{"record_out", "SELECT s.record_out FROM sessions s", []string{tokenTail}},
		{"json_agg attribute", "SELECT c.json_agg FROM sessions c", []string{tokenTail}},
		{"to_jsonb", "SELECT to_jsonb(s) FROM sessions s", []string{tokenTail}},
		{"schema-qualified star", "SELECT pg_catalog.row_to_json(s.*) FROM sessions s",
			[]string{tokenTail}},
		{"scalar subquery", "SELECT (SELECT s FROM sessions s ORDER BY id LIMIT 1)::text",
			[]string{tokenTail}},
		{"through a subquery", "SELECT x::text FROM (SELECT s FROM sessions s) q(x)",
			[]string{tokenTail}},
		{"jsonb_each_text", "SELECT v FROM sessions s, jsonb_each_text(to_jsonb(s)) AS e(k, v)",
			[]string{tokenTail}},
		{"field star", "SELECT (s).* FROM sessions s", []string{tokenTail}},
		{"function in FROM over a row",
			"SELECT * FROM ROWS FROM (jsonb_each_text((SELECT to_jsonb(s) FROM sessions s ORDER BY id LIMIT 1)))",
			[]string{tokenTail}},
		{"lateral function star", "SELECT e.* FROM sessions s CROSS JOIN LATERAL jsonb_each_text(to_jsonb(s)) e",
			[]string{tokenTail}},
		{"rows rebuilt from JSON",
			"SELECT * FROM json_populate_recordset(null::sessions, (SELECT json_agg(s) FROM sessions s))",
			[]string{tokenTail}},
		{"xmlforest", "SELECT xmlforest(s.*)::text FROM sessions s", []string{tokenTail}},
		{"translate", "SELECT translate(c::text, '0123456789@', 'abcdefghij#') FROM customers c",
			[]string{encodedEmail, encodedCard}},
		{"convert_to", "SELECT convert_to(c::text, 'UTF8') FROM customers c WHERE id = 2",
			[]string{"62656e2e6f6b61666f72"}}, // "ben.okafor" in hex
		{"base64", "SELECT encode(convert_to(c::text, 'UTF8'), 'base64') FROM customers c WHERE id = 2",
			[]string{"KDIsIkNvbnRvc28gUGhhcm1hY3ki"}}, // the row's start in base64
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { f.mustHide(t, tc.sql, tc.secret, f.mask) })
	}
}

// checkMasked fails for each of want missing from the masked result got
// and each of gone left in it.
func checkMasked(t *testing.T, got string, want, gone []string) {
	t.Helper()
	for _, s := range want {
		if !strings.Contains(got, s) {
			t.Errorf("%q was masked: %.300s", s, got)
		}
	}
	for _, s := range gone {
		if strings.Contains(got, s) {
			t.Errorf("%q survives masking: %.300s", s, got)
		}
	}
}

// mustHide runs sql, checks that its unmasked result holds gone[0] (or the
// test would prove nothing), masks it with mask and checks that none of
// gone is left.
func (f *maskFixture) mustHide(t *testing.T, sql string, gone []string,
	mask func(*testing.T, *tools.Result, *sqlfacts.Facts) string) {
	t.Helper()
	res, facts := f.run(t, sql)
	before, _ := json.Marshal(res.Structured["rows"])
	if !strings.Contains(string(before), gone[0]) {
		t.Fatalf("the unmasked result lacks %q, so the test proves nothing: %.300s",
			gone[0], before)
	}
	checkMasked(t, mask(t, res, facts), nil, gone)
}

// TestMaskingKeepsWhatNoRuleCovers checks the other side: columns and
// whole rows of tables without a masked column come back as they are.
func TestMaskingKeepsWhatNoRuleCovers(t *testing.T) {
	f := newMaskFixture(t)
	tests := []struct {
		name string
		sql  string
		want []string // must still appear after masking
		gone []string // must not
	}{
		{"star keeps plain columns", "SELECT * FROM customers WHERE id = 1",
			[]string{"Northwind Traders"}, []string{"ana.lopez@northwind.example"}},
		{"star then a whole row", "SELECT *, row_to_json(s) AS r FROM sessions s WHERE id = 1",
			[]string{"rhea"}, []string{tokenTail}},
		{"whole row of an unmasked table", "SELECT row_to_json(o) FROM orders o WHERE id = 1",
			[]string{"channel"}, nil},
		{"count", "SELECT count(*) AS n FROM customers", []string{"16"}, nil},
		{"plain column next to a whole row", "SELECT staff_login, s::text FROM sessions s WHERE id = 1",
			[]string{"rhea"}, []string{tokenTail}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, facts := f.run(t, tc.sql)
			got := f.mask(t, res, facts)
			checkMasked(t, got, tc.want, tc.gone)
		})
	}
}

// TestWholeRowMaskingFailsClosed checks that a whole row is masked when
// the catalogue cannot say which columns the table has.
func TestWholeRowMaskingFailsClosed(t *testing.T) {
	f := newMaskFixture(t)
	res, facts := f.run(t, "SELECT row_to_json(o) FROM orders o WHERE id = 1")
	lookups := 0
	res.TableColumns = func(string) ([]string, bool) { lookups++; return nil, false }
	got := f.mask(t, res, facts)
	if lookups == 0 {
		t.Fatal("the masker did not ask for the table's columns")
	}
	if strings.Contains(got, "channel") {
		t.Errorf("a whole row of an unknown table came back unmasked: %s", got)
	}
}

// TestTableColumnsHonoursSchema checks the catalogue lookup behind
// whole-row masking: the schema when written, the search path otherwise.
func TestTableColumnsHonoursSchema(t *testing.T) {
	f := newMaskFixture(t)
	res, _ := f.run(t, "SELECT 1")
	tests := []struct {
		table string
		want  string // joined column names, "" for unknown
	}{
		{"sessions", "id,staff_login,token"},
		{"public.sessions", "id,staff_login,token"},
		{"pg_catalog.sessions", ""},
		{"no_such_table", ""},
		{`"Sessions"`, ""},
		{"a.b.c.d", ""},
	}
	for _, tc := range tests {
		t.Run(tc.table, func(t *testing.T) {
			cols, ok := res.TableColumns(tc.table)
			if got := strings.Join(cols, ","); got != tc.want || ok != (tc.want != "") {
				t.Errorf("columns of %s = %q, %v; want %q", tc.table, got, ok, tc.want)
			}
		})
	}
}

// TestHiddenTextIsMasked checks free text, which no column rule covers,
// read back in forms the value detectors cannot read as they stand:
// bytea hex, base64 wrapped in lines, and characters spaced out by a
// separator at any offset.
func TestHiddenTextIsMasked(t *testing.T) {
	f := newMaskFixture(t)
	const ticket = " FROM support_tickets WHERE id = 1"
	card, token, email := "4242", "Q7mZ2kR9vT4xW1nB8cL5dF3hJ6pS0yA2eG7u", "dev.patel"
	tests := []struct {
		name string
		expr string
		gone []string // must not survive, as written or in the encoding
	}{
		{"bytea hex", "convert_to(body, 'UTF8')", []string{"34323432"}},
		{"wrapped base64", "encode(convert_to(body, 'UTF8'), 'base64')",
			[]string{"OiBnaHBfUTdtWjJrUjl2VDR4VzFu", "NDI0MiA0MjQy"}},
		{"spaced by blanks", `regexp_replace(body, '(.)', '\1 ', 'g')`,
			[]string{"4 2 4 2", "Q 7 m Z", "d e v . p"}},
		{"spaced by dashes", `regexp_replace(body, '(.)', '\1-', 'g')`,
			[]string{"4-2-4-2", "Q-7-m-Z", "d-e-v-.-p"}},
		{"spaced by two bytes", `regexp_replace(body, '(.)', '\1~|', 'g')`,
			[]string{"4~|2~|4~|2", "Q~|7~|m~|Z"}},
		{"spaced at an odd offset", `'x' || regexp_replace(body, '(.)', '\1 ', 'g')`,
			[]string{"4 2 4 2", "Q 7 m Z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, facts := f.run(t, "SELECT "+tc.expr+" AS v"+ticket)
			before, _ := json.Marshal(res.Structured["rows"])
			if !strings.Contains(string(before), tc.gone[0]) {
				t.Fatalf("the unmasked result lacks %q, so the test proves nothing: %.200s",
					tc.gone[0], before)
			}
			got := f.mask(t, res, facts)
			for _, s := range append(tc.gone, card+" "+card, token, email) {
				if strings.Contains(got, s) {
					t.Errorf("%q survives masking: %.300s", s, got)
				}
			}
		})
	}
}

// TestPlainSpacedTextIsKept checks that spaced-out or base64 text without
// anything to mask comes back as it is.
func TestPlainSpacedTextIsKept(t *testing.T) {
	f := newMaskFixture(t)
	tests := []struct {
		name, sql, want string
	}{
		{"spaced subject", `SELECT regexp_replace(subject, '(.)', '\1 ', 'g') FROM support_tickets WHERE id = 3`,
			"D e l i v e r y"},
		{"base64 of a plain body", `SELECT encode(convert_to(body, 'UTF8'), 'base64') FROM support_tickets WHERE id = 4`,
			"SXMgdGhlcmUgYSB3YXk"},
		{"letters and blanks", "SELECT 'a b c d e f g h i j k l' AS v", "a b c d e f g h i j k l"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, facts := f.run(t, tc.sql)
			if got := f.mask(t, res, facts); !strings.Contains(got, tc.want) {
				t.Errorf("%q was masked: %.300s", tc.want, got)
			}
		})
	}
}

// costSQL is the statement BenchmarkMaskingCost sends; costRows builds
// the rows it returns, with the types the Postgres tool gives them.
const costSQL = "SELECT g AS id, 'customer ' || g AS name, 'user' || g || '@shop.example' AS contact, " +
	"CASE WHEN g % 10 = 0 THEN '4111 1111 1111 1111' ELSE 'ref-' || g END AS note, " +
	"now() AS at, g * 1.5 AS amount FROM generate_series(1, 10000) g"

func costRows(n int) *tools.Result {
	at := time.Date(2026, 12, 4, 10, 0, 0, 123456000, time.UTC).Format(time.RFC3339Nano)
	rows := make([]any, n)
	for i := range rows {
		g := i + 1
		note := "ref-" + strconv.Itoa(g)
		if g%10 == 0 {
			note = "4111 1111 1111 1111"
		}
		rows[i] = []any{int32(g), "customer " + strconv.Itoa(g),
			"user" + strconv.Itoa(g) + "@shop.example", note, at,
			json.Number(strconv.FormatFloat(float64(g)*1.5, 'f', 1, 64))}
	}
	cols := []tools.Column{{Name: "id", Type: "int4"}, {Name: "name", Type: "text"},
		{Name: "contact", Type: "text"}, {Name: "note", Type: "text"},
		{Name: "at", Type: "timestamptz"}, {Name: "amount", Type: "numeric"}}
	return &tools.Result{Columns: cols, Structured: map[string]any{
		"columns": []any{}, "rows": rows, "row_count": n, "truncated": false}}
}

// BenchmarkMaskResult is the masking half of BenchmarkMaskingCost without
// the database: the CPU and allocations masking adds to the 10,000 rows.
func BenchmarkMaskResult(b *testing.B) {
	m, err := masking.New(masking.Options{Secrets: []string{"a-server-held-secret"}})
	if err != nil {
		b.Fatal(err)
	}
	rm := guard.ResultMasker{M: m}
	facts, err := sqlfacts.Analyze(costSQL)
	if err != nil {
		b.Fatal(err)
	}
	d := policy.Decision{Outcome: policy.OutcomeAllow, Mask: defaultMask}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		res := costRows(10000)
		b.StartTimer()
		counts, err := rm.MaskResult(tools.QueryDatabase, facts, res, d)
		if err != nil || counts["email"] != 10000 || counts["card"] != 1000 {
			b.Fatalf("counts %v, %v", counts, err)
		}
	}
}

// maskNoRules masks a result with no column rules at all, so that only
// the value detectors and the transformed-text readings guard it.
func (f *maskFixture) maskNoRules(t *testing.T, res *tools.Result, facts *sqlfacts.Facts) string {
	t.Helper()
	return f.maskWith(t, res, facts, nil)
}

// TestTransformedTextIsMasked reshapes the free-text body of ticket 1
// (a card, a GitHub token and an email) with the functions an attacker
// reaches for, with no column rule on it, and checks that none of the
// three can be read back from the answer.
func TestTransformedTextIsMasked(t *testing.T) {
	f := newMaskFixture(t)
	const one = " FROM support_tickets WHERE id = 1"
	tests := []struct {
		name, sql string
		gone      []string // readable forms that must not survive
	}{
		{"reverse", "SELECT reverse(body)" + one,
			[]string{"2424 2424", "u7Ge2Ay0Sp6", "elpmaxe.nipsliat"}},
		{"upper", "SELECT upper(body)" + one, []string{"Q7MZ2KR9VT4XW1NB8"}},
		{"lower of reverse", "SELECT lower(reverse(body))" + one, []string{"elpmaxe.nipsliat"}},
		{"four-byte separator", `SELECT regexp_replace(body, '(.)', '\1~~~~', 'g')` + one,
			[]string{"4~~~~2~~~~4~~~~2", "Q~~~~7~~~~m"}},
		{"string_to_array", "SELECT string_to_array(body, NULL)" + one,
			[]string{`"4","2","4","2"`, `"Q","7","m","Z"`}},
		{"split into rows", "SELECT regexp_split_to_table(body, '')" + one + " LIMIT 60",
			[]string{`["4"],["2"],["4"],["2"]`}},
		{"split by blanks", `SELECT regexp_split_to_table(body, '\s+')` + one,
			[]string{`["4242"],["4242"]`}},
		{"at replaced", "SELECT replace(body, '@', ' at ')" + one, []string{"dev.patel at"}},
		{"translate", "SELECT translate(body, '0123456789@', 'abcdefghij#')" + one,
			[]string{"ecec ecec", "dev.patel#"}},
		{"substr over a series", "SELECT substr(body, g, 4) FROM support_tickets, " +
			"generate_series(1, 200, 4) g WHERE id = 1 ORDER BY g",
			[]string{`["Q7mZ"]`, `["4242"]`}},
		{"through a subquery", "SELECT x FROM (SELECT reverse(body) AS x" + one + ") q",
			[]string{"elpmaxe.nipsliat"}},
		{"translate with a column argument", "SELECT translate(body, subject, reverse(subject))" + one,
			[]string{"Q7mZ2dR9"}},
		{"chr over ascii", "SELECT to_hex(ascii(substr(body, 1, 1))) || body" + one,
			[]string{"Q7mZ2kR9"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { f.mustHide(t, tc.sql, tc.gone, f.maskNoRules) })
	}
}

// TestTransformedPlainTextIsKept checks the other side: transformations
// of columns that hold nothing to mask come back readable, and an email
// that only changed case is masked as an email, not wiped.
func TestTransformedPlainTextIsKept(t *testing.T) {
	f := newMaskFixture(t)
	tests := []struct {
		name, sql string
		want      []string // must still appear
		gone      []string // must not
	}{
		{"upper of a status", "SELECT upper(status) AS s FROM orders ORDER BY id LIMIT 3",
			[]string{"PAID"}, nil},
		{"initcap of a company", "SELECT initcap(lower(company)) FROM customers WHERE id = 1",
			[]string{"Northwind Traders"}, nil},
		{"reverse of a plain body", "SELECT reverse(body) FROM support_tickets WHERE id = 3",
			[]string{"sdeeL ni"}, nil},
		{"split of a plain body", `SELECT regexp_split_to_table(body, '\s+') FROM support_tickets WHERE id = 4`,
			[]string{"export"}, nil},
		{"lower of an email", "SELECT lower(email) FROM staff WHERE login = 'rhea'",
			[]string{"r***@s***.example"}, []string{"rhea.ahmed", "transformed_text"}},
		{"count and length", "SELECT count(*), max(length(body)) FROM support_tickets",
			[]string{"4"}, []string{"transformed_text"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, facts := f.run(t, tc.sql)
			got := f.maskNoRules(t, res, facts)
			checkMasked(t, got, tc.want, tc.gone)
		})
	}
}

// TestMaskingLeavesAFailedQueryAsItIs: a failed query's answer has no rows,
// and masking must not add the key (a null there breaks the tool's output
// schema for clients that check it), while its error is still masked.
func TestMaskingLeavesAFailedQueryAsItIs(t *testing.T) {
	m, err := masking.New(masking.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := &tools.Result{Failed: true, Structured: map[string]any{
		"error": "PostgreSQL error 22P02: invalid input for ana@example.com"}}
	d := policy.Decision{Outcome: policy.OutcomeAllow, Mask: defaultMask}
	if _, err := (guard.ResultMasker{M: m}).MaskResult(tools.QueryDatabase, nil, res, d); err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Structured["rows"]; ok {
		t.Errorf("masking added rows: %v", res.Structured)
	}
	if e, _ := res.Structured["error"].(string); strings.Contains(e, "ana@example.com") {
		t.Errorf("the error is not masked: %q", e)
	}
}

// TestCodePointsOfFreeTextAreMasked: a text read one character at a time
// as numbers (ascii over substr, one row per position) spells it out, so
// those numbers are masked; the position column stays.
func TestCodePointsOfFreeTextAreMasked(t *testing.T) {
	f := newMaskFixture(t)
	for _, sql := range []string{
		"SELECT g, ascii(substr(body, g, 1)) AS c FROM support_tickets, generate_series(1, 200) g WHERE id = 1 ORDER BY g",
		"SELECT g, get_byte(convert_to(body, 'UTF8'), g) AS c FROM support_tickets, generate_series(0, 199) g WHERE id = 1 ORDER BY g",
	} {
		res, facts := f.run(t, sql)
		rows, _ := res.Structured["rows"].([]any)
		if len(rows) < 100 {
			t.Fatalf("%s: %d rows, the test proves nothing", sql, len(rows))
		}
		f.mask(t, res, facts)
		for _, row := range rows {
			vals := row.([]any)
			if vals[1] != "[MASKED:transformed_text]" {
				t.Fatalf("%s: code point left: %v", sql, vals)
			}
			if _, ok := vals[0].(string); ok {
				t.Fatalf("%s: the position was masked: %v", sql, vals)
			}
		}
	}
}
