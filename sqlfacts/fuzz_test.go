package sqlfacts

import (
	"slices"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// writeKinds are the kinds that change something or run outside a plain
// query. None of them may appear in facts that say read-only.
var writeKinds = setOf(
	"insert", "update", "delete", "merge", "select_into", "create_table_as",
	"copy", "copy_program", "transaction", "set", "reset", "set_role",
	"discard", "do", "call", "ddl", "drop", "truncate", "alter_role",
	"create_role", "alter_system", "grant", "revoke", "lock", "listen",
	"notify", "prepare", "execute", "vacuum", "analyze", "cluster", "reindex",
	"checkpoint", "load", "other",
)

// readOnlyNodes are the statement nodes pg_query's own summary may report
// for a text this package calls read-only.
var readOnlyNodes = setOf("SelectStmt", "ExplainStmt", "VariableShowStmt")

// FuzzAnalyze checks, for any text, that Analyze does not panic or hang,
// that read-only facts hold no write, and that pg_query's own summary (C
// code, a second opinion) finds no statement, table or function the facts
// missed. The seeds are in testdata/fuzz/FuzzAnalyze.
func FuzzAnalyze(f *testing.F) {
	f.Fuzz(func(t *testing.T, sql string) {
		redacted := Redact(sql)
		facts, err := Analyze(sql)
		if err != nil {
			return
		}
		if facts.StatementCount < 1 {
			t.Fatalf("statement_count %d for a text that parsed", facts.StatementCount)
		}
		if facts.ReadOnly {
			checkReadOnly(t, facts)
		}
		checkSummary(t, sql, facts)
		checkRedacted(t, redacted)
	})
}

func checkReadOnly(t *testing.T, f *Facts) {
	t.Helper()
	for _, k := range f.Kinds {
		if writeKinds.has(k) {
			t.Errorf("read_only with kind %q", k)
		}
	}
	if len(f.TablesWritten) > 0 || len(f.RowLocks) > 0 || f.WriteWithoutWhere ||
		f.Copy != nil || len(f.Set) > 0 {
		t.Errorf("read_only with a write: %+v", f)
	}
}

// checkSummary compares the facts with pg_query.Summary.
func checkSummary(t *testing.T, sql string, f *Facts) {
	t.Helper()
	sum, err := pg_query.Summary(sql, -1)
	if err != nil {
		return
	}
	for _, st := range sum.GetStatementTypes() {
		if f.ReadOnly && !readOnlyNodes.has(st) {
			t.Errorf("read_only but the summary finds a %s", st)
		}
	}
	tables := setOf(f.TablesRead...)
	for _, w := range f.TablesWritten {
		tables.add(w)
	}
	for _, tb := range sum.GetTables() {
		if f.ReadOnly && tb.GetContext() != pg_query.SummaryResult_Select {
			t.Errorf("read_only but the summary writes %q (%v)", tb.GetName(), tb.GetContext())
		}
		// The summary drops a catalog name; the facts keep it.
		name := requote(tb.GetName())
		if !tables.has(name) && !slices.ContainsFunc(tables.sorted(), func(s string) bool {
			return strings.HasSuffix(s, "."+name)
		}) {
			t.Errorf("summary table %q missing from %q", tb.GetName(), tables.sorted())
		}
	}
	names := setOf(f.FunctionNames...)
	for _, fn := range sum.GetFunctions() {
		if fn.GetContext() == pg_query.SummaryResult_Call &&
			!names.has(quoteIdent(fn.GetFunctionName())) {
			t.Errorf("summary call %q missing from %q", fn.GetFunctionName(), f.FunctionNames)
		}
	}
}

// requote turns a name from the summary, quoted the server's way (which
// also quotes keywords), into the form of the facts.
func requote(name string) string {
	var parts []string
	var cur strings.Builder
	inQuote := false
	for i := 0; i < len(name); i++ {
		ch := name[i]
		switch {
		case ch == '"' && inQuote && i+1 < len(name) && name[i+1] == '"':
			cur.WriteByte('"')
			i++
		case ch == '"':
			inQuote = !inQuote
		case ch == '.' && !inQuote:
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(ch)
		}
	}
	return qualifiedName(append(parts, cur.String()))
}

// checkRedacted scans the redacted text: it must lex, and every string
// constant left must be the placeholder.
func checkRedacted(t *testing.T, redacted string) {
	t.Helper()
	if redacted == Unparsable {
		t.Fatalf("Redact gave up on a text that parsed")
	}
	res, err := pg_query.Scan(redacted)
	if err != nil {
		t.Fatalf("redacted text does not scan: %v", err)
	}
	for _, tok := range res.GetTokens() {
		switch tok.GetToken() {
		case pg_query.Token_SCONST, pg_query.Token_USCONST,
			pg_query.Token_BCONST, pg_query.Token_XCONST:
			if lit := redacted[tok.GetStart():tok.GetEnd()]; lit != Redacted {
				t.Errorf("constant %q left in %q", lit, strings.TrimSpace(redacted))
			}
		}
	}
}
