// Package sqlfacts turns a SQL text into the facts the policy decides on:
// how many statements it holds, what kinds of statement run (nested ones
// included), which tables are read and written, which functions are called,
// what the output columns are made of, and the settings it changes.
//
// The text is parsed by PostgreSQL's own grammar (libpg_query, the
// PostgreSQL 17 parser, through pg_query_go), so comments, nested block
// comments, dollar quotes and string literals are read exactly as the server
// reads them. The package never rewrites the SQL: the guard runs the exact
// text it analysed.
package sqlfacts

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pganalyze/pg_query_go/v6/parser"
)

// ErrNoStatement is returned for a text that holds no statement at all
// (empty, only whitespace, comments or semicolons). Facts about nothing
// would read as harmless, so the caller must deny instead.
var ErrNoStatement = errors.New("sqlfacts: sql holds no statement")

// ErrInvalidText is returned for a text that is not valid UTF-8 or that
// holds a NUL byte. The parser reads a C string and would stop at the NUL,
// so what it saw and what the server receives could differ.
var ErrInvalidText = errors.New("sqlfacts: sql is not valid UTF-8 or holds a NUL byte")

// ErrTooLong is returned for a text longer than MaxLength.
var ErrTooLong = errors.New("sqlfacts: sql is longer than the analyzer accepts")

// ErrTooComplex is returned when the parse tree nests deeper than the
// tree decoder allows (about ten thousand levels).
var ErrTooComplex = errors.New("sqlfacts: sql nests too deeply to analyze")

// MaxLength is the longest text Analyze accepts, in bytes. The parser's
// time grows faster than the length for deeply nested expressions (a
// chain of 5,000 additions takes a quarter of a second), so the bound
// keeps one call from holding a core for seconds.
const MaxLength = 16 << 10

// SyntaxError is a statement the PostgreSQL grammar rejects. Message is the
// parser's message with any quoted piece of the input removed, so that a
// password in a broken statement cannot leak into an error or a log.
type SyntaxError struct {
	Message  string // for example "syntax error"
	Position int    // 1-based character position in the text, 0 if unknown
}

// Error implements error.
func (e *SyntaxError) Error() string {
	if e.Position > 0 {
		return fmt.Sprintf("sql syntax error at position %d: %s", e.Position, e.Message)
	}
	return "sql syntax error: " + e.Message
}

// Facts is what the parser can tell about a SQL text. It goes into the
// policy input as JSON; every list is present (never null) and sorted.
type Facts struct {
	// StatementCount is how many statements the text holds. More than one
	// is not an error here; the guard refuses it before policy.
	StatementCount int `json:"statement_count"`

	// Kind is the most specific kind of the first top-level statement,
	// for example "select", "explain_analyze", "drop" or "set_role".
	Kind string `json:"kind"`

	// Kinds holds every kind of statement anywhere in the text, nested
	// ones (CTEs, EXPLAIN, PREPARE, rule actions) included, plus the
	// umbrella kinds ("ddl" for all DDL, "set" for SET ROLE).
	Kinds []string `json:"kinds"`

	// ReadOnly is true only when every kind is select, explain,
	// explain_analyze or show, no row is locked (FOR UPDATE, FOR SHARE and
	// their variants count as writes, as PostgreSQL refuses them in a
	// read-only transaction), and no function known for side effects is
	// called (set_config, nextval, pg_notify, dblink_exec, ...). It is a
	// syntactic fact: a user-defined function or a view can still write.
	ReadOnly bool `json:"read_only"`

	// TablesRead and TablesWritten name relations as written in the text:
	// "public.customers" only when the text said public, else "customers".
	// Each part is in SQL form: double-quoted only when it could not be
	// written without quotes (`"Customers"`, `"a.b"`).
	// CTE names are not tables. Written means the target of INSERT,
	// UPDATE, DELETE, MERGE, COPY FROM, SELECT INTO, TRUNCATE, LOCK, and
	// any relation a DDL or maintenance statement acts on.
	TablesRead    []string `json:"tables_read"`
	TablesWritten []string `json:"tables_written"`

	// Functions holds every function called anywhere, with the schema when
	// the text wrote one ("pg_catalog.pg_read_file"). Names are as the
	// server resolves them: unquoted names are folded to lower case by the
	// parser; a quoted name that is not plain lower case stays quoted
	// (`"PG_READ_FILE"`), since it names a different function.
	// FunctionNames holds the same without schema.
	Functions     []string `json:"functions"`
	FunctionNames []string `json:"function_names"`

	// Operators holds every operator written, such as "=", "||" or
	// "pg_catalog.~~". Operators run functions too; a custom operator can
	// run any function.
	Operators []string `json:"operators"`

	// WriteWithoutWhere is true when any UPDATE or DELETE anywhere has no
	// WHERE clause.
	WriteWithoutWhere bool `json:"write_without_where"`

	// RowLocks holds the row-lock strengths asked for anywhere:
	// "for_update", "for_no_key_update", "for_share", "for_key_share".
	RowLocks []string `json:"row_locks"`

	// Explain is set when the text holds an EXPLAIN.
	Explain *Explain `json:"explain,omitempty"`

	// Copy is set when the text holds a COPY.
	Copy *Copy `json:"copy,omitempty"`

	// Set holds the settings changed by SET, RESET, SET LOCAL, SET
	// TRANSACTION, SET SESSION CHARACTERISTICS, BEGIN options and
	// set_config() calls, in text order.
	Set []Setting `json:"settings,omitempty"`

	// RoleOptions holds the option names (never values) of CREATE ROLE
	// and ALTER ROLE, such as "password" or "superuser".
	RoleOptions []string `json:"role_options,omitempty"`

	// OutputColumns describes the rows the first statement returns: its
	// select list, or RETURNING list for INSERT, UPDATE, DELETE and MERGE.
	OutputColumns []OutputColumn `json:"output_columns"`

	// FilterColumns holds every column, in any statement of the text,
	// that decides which rows come back or are touched rather than being
	// a value returned or stored: WHERE, JOIN ON and USING, GROUP BY,
	// HAVING, ORDER BY and DISTINCT ON (an output name or position stands
	// for that output's sources), windows, LIMIT and OFFSET, CASE
	// conditions, aggregate FILTER and ORDER BY, arguments of functions
	// in FROM and of built-in set-returning functions anywhere (they
	// decide how many rows come back), MERGE and ON CONFLICT conditions,
	// and subqueries used as
	// conditions, their select lists included. A masked column used
	// there can be guessed one query at a time although it never comes
	// back. Tables are resolved through aliases, subqueries and CTEs as
	// for output columns, every candidate named; Column "*" is a whole
	// row; an empty Table is a name no FROM item may hold (in DDL, every
	// column outside a query).
	FilterColumns []ColumnRef `json:"filter_columns"`
}

// Explain describes an EXPLAIN statement.
type Explain struct {
	// Analyze is true when the explained statement really runs. An
	// ANALYZE option the parser cannot read as false counts as true.
	Analyze bool `json:"analyze"`
}

// Copy describes a COPY statement. With several, the first one that runs a
// program wins, else the first one.
type Copy struct {
	// Program is true for TO PROGRAM and FROM PROGRAM: a shell command
	// run on the database server.
	Program bool `json:"program"`
	// To is true for COPY ... TO (export), false for COPY ... FROM.
	To bool `json:"to"`
	// Filename is the server file or, with Program, the shell command;
	// empty for STDIN and STDOUT.
	Filename string `json:"filename"`
	// Table is the table copied, empty for COPY (query) TO.
	Table string `json:"table"`
}

// Setting is one setting changed by the text.
type Setting struct {
	// Name is the setting's name ("statement_timeout", "role",
	// "default_transaction_read_only"), "all" for RESET ALL, or "*" when a
	// set_config() call names it with an expression.
	Name string `json:"name"`
	// Value is the value as written, "" for RESET, "DEFAULT", "FROM
	// CURRENT", or "*" when it is an expression the parser cannot read.
	Value string `json:"value"`
	Local bool   `json:"local"` // SET LOCAL, SET TRANSACTION, BEGIN options, set_config(.., true)
	Reset bool   `json:"reset"` // RESET
	// Via says how: "set", "reset", "transaction" (BEGIN/START options)
	// or "set_config".
	Via string `json:"via"`
}

// OutputColumn is one column of the rows a statement returns.
type OutputColumn struct {
	// Name is the column name PostgreSQL reports, where the parser can tell:
	// the alias, the column name, the function name, or "?column?". A
	// star the parser cannot expand is named "*".
	Name string `json:"name"`
	// Sources are the table columns feeding the value, following aliases,
	// subqueries and CTEs. A whole-row reference (row_to_json(c), c.*, c)
	// gives Column "*". An unqualified column with several candidate
	// tables names each candidate.
	Sources []ColumnRef `json:"sources"`
	// Direct is true when the value is a plain column reference, possibly
	// through aliases and subqueries; false when a function, cast,
	// operator, JSON builder, aggregate or whole-row reference transforms
	// it, or when a function in FROM may produce it.
	Direct bool `json:"direct"`
	// Star is true for SELECT * or t.* where the parser does not know the
	// columns (a table); Sources then name the tables.
	Star bool `json:"star"`
	// Calls are the functions, operators and casts a computed value
	// passes through at the top level of its expression, in the order
	// met; a call named "?" stands for a transformation the parser cannot
	// see (a column computed in a subquery, a subquery's value). Nil for
	// a direct column. The guard uses them to read transformed text back;
	// they are not part of the policy input.
	Calls []Call `json:"-"`
	// CallNames are the names of Calls, for the policy: "::" for a cast,
	// "op:/" for an operator, "?" for what the parser cannot see. Empty
	// for a direct column.
	CallNames []string `json:"calls"`
}

// Call is one function, operator ("op:||") or cast ("::") of an
// expression. Args holds the text of each argument that is a string
// constant, and Const which of them are.
type Call struct {
	Name  string
	Args  []string
	Const []bool
}

// ColumnRef names a column of a table. Table is in the SQL form of
// Facts.TablesRead; Column is the bare column name, as PostgreSQL reports
// column names.
type ColumnRef struct {
	Table  string `json:"table"`
	Column string `json:"column"`
}

// Analyze parses sql and returns the facts. A syntax error returns an error
// (the guard then denies). More than one statement is not an error here:
// StatementCount says how many.
func Analyze(sql string) (*Facts, error) {
	if len(sql) > MaxLength {
		return nil, ErrTooLong
	}
	if !utf8.ValidString(sql) || strings.IndexByte(sql, 0) >= 0 {
		return nil, ErrInvalidText
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return nil, fmt.Errorf("parse sql: %w", syntaxError(err))
	}
	if len(tree.GetStmts()) == 0 {
		return nil, ErrNoStatement
	}

	c := newCollector()
	for _, raw := range tree.GetStmts() {
		c.walk(raw, nil, false)
	}
	first := tree.GetStmts()[0].GetStmt()
	lin := newLineage()
	outputs := lin.statement(first)
	fl := newFilters(lin)
	for _, raw := range tree.GetStmts() {
		fl.statement(raw.GetStmt())
	}
	for _, name := range lin.calls.sorted() {
		c.addFunction([]string{name})
	}

	f := c.facts()
	f.StatementCount = len(tree.GetStmts())
	f.Kind = primaryKind(first)
	for i := range outputs {
		names := make([]string, len(outputs[i].Calls))
		for j, c := range outputs[i].Calls {
			names[j] = c.Name
		}
		outputs[i].CallNames = names
	}
	f.OutputColumns = outputs
	f.FilterColumns = fl.sorted()
	return f, nil
}

// quoted matches a double-quoted piece of a parser message, which may hold
// a fragment of the input.
var quoted = regexp.MustCompile(`"(?:[^"]|"")*"?`)

// syntaxError turns a parser error into a SyntaxError whose message holds
// no part of the input text, or ErrTooComplex.
func syntaxError(err error) error {
	var pe *parser.Error
	if !errors.As(err, &pe) {
		// The C parser succeeded; decoding its tree failed.
		return ErrTooComplex
	}
	msg := pe.Message
	if i := strings.Index(msg, " at or near "); i >= 0 {
		msg = msg[:i]
	}
	msg = quoted.ReplaceAllString(msg, `"…"`)
	return &SyntaxError{Message: msg, Position: pe.Cursorpos}
}
