package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/sqlfacts"
)

// maxSQLBytes caps a statement's length.
const maxSQLBytes = 256 << 10

// Bounds on one protocol message from the server, so that a single huge
// value (SELECT repeat('x', 500000000)) is refused before it is read into
// memory. A call allows its output cap plus bodyMargin, room for the
// framing of a row whose values fit the cap; a connection not yet given
// a call's cap allows defaultMaxBody.
const (
	bodyMargin     = 64 << 10
	defaultMaxBody = 16 << 20
)

// errTooLarge is the tool error for a message over the body limit.
const errTooLarge = "the result is too large: one row holds more than the output limit " +
	"of %d bytes; select less (substr, left, length) or fewer columns"

// Postgres implements query_database. It holds one connection pool per
// postgres target; the DSNs never leave it.
type Postgres struct {
	logger *slog.Logger
	pools  map[string]*pgxpool.Pool
	// secrets are the DSNs and passwords, for the scrubber.
	secrets []string

	// now is the clock of the table-column cache.
	now func() time.Time

	// mu guards columns and tables.
	mu      sync.Mutex
	columns map[columnKey]ColumnSource
	tables  map[tableKey]tableEntry
}

// tableKey names a table of a target as the SQL facts write it.
type tableKey struct {
	target string
	table  string
}

// tableEntry is a cached catalogue answer: a table's column names.
type tableEntry struct {
	cols    []string
	fetched time.Time
}

// Bounds of the table-column cache: an entry is read again after
// tableCacheTTL (a table may be altered or replaced), and the cache is
// emptied when it holds tableCacheMax entries.
const (
	tableCacheTTL    = time.Minute
	tableCacheMax    = 4096
	tableLookupLimit = 5 * time.Second
)

type columnKey struct {
	target string
	table  uint32
	attnum uint16
}

// ColumnSource names the table column a result column comes from.
type ColumnSource struct {
	Schema string `json:"schema"`
	Table  string `json:"table"`
	Column string `json:"column"`
}

// NewPostgres reads each postgres target's DSN (from its environment
// variable or file) and prepares a pool; no connection is made yet.
func NewPostgres(targets []config.Target, getenv func(string) string, logger *slog.Logger) (*Postgres, error) {
	p := &Postgres{
		logger: logger, pools: map[string]*pgxpool.Pool{}, now: time.Now,
		columns: map[columnKey]ColumnSource{}, tables: map[tableKey]tableEntry{},
	}
	for _, t := range targets {
		if t.Kind != config.KindPostgres {
			continue
		}
		dsn, err := readDSN(t, getenv)
		if err != nil {
			p.Close()
			return nil, err
		}
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			p.Close()
			// The parse error can quote the DSN: keep it out of the message.
			return nil, fmt.Errorf("target %s: the DSN does not parse as a PostgreSQL connection string", t.Name)
		}
		p.secrets = append(p.secrets, dsn)
		if pw := cfg.ConnConfig.Password; pw != "" {
			p.secrets = append(p.secrets, pw)
		}
		cfg.ConnConfig.RuntimeParams["application_name"] = "mcp-guard"
		// The guard's SQL parser lexes strings as the server does only
		// with standard conforming strings.
		cfg.ConnConfig.RuntimeParams["standard_conforming_strings"] = "on"
		cfg.ConnConfig.MaxProtocolMessageBodyLen = defaultMaxBody
		cfg.MaxConns = 8
		cfg.MaxConnIdleTime = 5 * time.Minute
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("target %s: create pool", t.Name)
		}
		p.pools[t.Name] = pool
	}
	return p, nil
}

func readDSN(t config.Target, getenv func(string) string) (string, error) {
	if t.DSNEnv != "" {
		dsn := getenv(t.DSNEnv)
		if dsn == "" {
			return "", fmt.Errorf("target %s: environment variable %s is empty", t.Name, t.DSNEnv)
		}
		return dsn, nil
	}
	b, err := os.ReadFile(t.DSNFile)
	if err != nil {
		return "", fmt.Errorf("target %s: read dsn_file: %w", t.Name, errors.Unwrap(err))
	}
	dsn := strings.TrimSpace(string(b))
	if dsn == "" {
		return "", fmt.Errorf("target %s: dsn_file %s is empty", t.Name, t.DSNFile)
	}
	return dsn, nil
}

// SetLogger sets the logger for warnings about result columns.
func (p *Postgres) SetLogger(l *slog.Logger) { p.logger = l }

// Secrets returns the server-held secrets of the postgres targets.
func (p *Postgres) Secrets() []string { return p.secrets }

// Close closes every pool.
func (p *Postgres) Close() {
	for _, pool := range p.pools {
		pool.Close()
	}
}

// Ping checks that every target's database answers.
func (p *Postgres) Ping(ctx context.Context) map[string]error {
	out := map[string]error{}
	for name, pool := range p.pools {
		out[name] = pool.Ping(ctx)
	}
	return out
}

// Spec implements Tool.
func (*Postgres) Spec() Spec {
	return Spec{
		Name:  QueryDatabase,
		Title: "Query a database",
		Description: "Runs exactly one SQL statement on a PostgreSQL target and returns the " +
			"columns and rows. Statements that only read run in a read-only transaction with " +
			"a timeout, a row cap and a size cap; writes need a person's approval; statements " +
			"that reach the server's files, programs or other sessions are refused. Sensitive " +
			"values are masked." + notice,
		Input: json.RawMessage(`{"type": "object", "properties": {
			"target": {"type": "string", "description": "Name of a postgres target (see list_targets)."},
			"sql": {"type": "string", "minLength": 1, "maxLength": 262144, "description": "One SQL statement."},
			"max_rows": {"type": "integer", "minimum": 1, "maximum": 1000000, "description": "Most rows to return (the policy's limit applies when lower)."}
		}, "required": ["target", "sql"], "additionalProperties": false}`),
		Output: outputSchema(`"columns": {"type": "array", "items": {"type": "object",
				"properties": {"name": {"type": "string"}, "type": {"type": "string"}}}},
			"rows": {"type": "array", "items": {"type": "array"}},
			"row_count": {"type": "integer"}, "truncated": {"type": "boolean"},
			"truncated_at": {"type": "string", "enum": ["max_rows", "max_output_bytes"]},
			"command": {"type": "string"}, "rows_affected": {"type": "integer"},
			"error": {"type": "string", "description": "Why the statement failed; values it read are replaced by [value]."},
			"sqlstate": {"type": "string"}`),
		Kinds: []string{config.KindPostgres},
	}
}

// Facts implements Tool. More than one statement is refused here, before
// policy: the extended protocol would refuse it anyway, and no policy
// should have to reason about it.
func (*Postgres) Facts(_ context.Context, c *Call) (string, any, error) {
	sql := c.String("sql")
	if len(sql) > maxSQLBytes {
		return "", nil, Invalid("sql is longer than %d bytes", maxSQLBytes)
	}
	if err := checkSQLText("sql", sql); err != nil {
		return "", nil, err
	}
	facts, err := sqlfacts.Analyze(sql)
	if err != nil {
		return "", nil, Denied("the SQL does not parse: %v", err)
	}
	if facts.StatementCount == 0 {
		return "", nil, Invalid("sql holds no statement")
	}
	if facts.StatementCount > 1 {
		return "", nil, Denied("exactly one SQL statement is allowed per call; this holds %d", facts.StatementCount)
	}
	return "sql", facts, nil
}

// Display implements Tool.
func (*Postgres) Display(c *Call) string { return c.String("sql") }

// Column describes one result column.
type Column struct {
	Name   string        `json:"name"`
	Type   string        `json:"type"`
	Source *ColumnSource `json:"-"`
}

// Run implements Tool. The statement is sent with the extended protocol,
// which carries exactly one statement, inside a transaction that is read
// only unless the decision allows writes. The BEGIN, the timeout and the
// statement travel in one pipelined batch, with the ROLLBACK of a
// read-only call.
func (p *Postgres) Run(ctx context.Context, c *Call, d policy.Decision, l Limits) (*Result, error) {
	pool, ok := p.pools[c.Target.Name]
	if !ok {
		return nil, fmt.Errorf("no pool for target %s", c.Target.Name)
	}
	if m := c.Int("max_rows", 0); m > 0 && m < l.MaxRows {
		l.MaxRows = m
	}
	callCtx := ctx
	ctx, cancel := context.WithTimeout(ctx, time.Duration(l.TimeoutSeconds)*time.Second+2*time.Second)
	defer cancel()

	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", c.Target.Name, err)
	}
	released := false
	defer func() {
		if !released {
			conn.Release()
		}
	}()
	// A message over the limit ends the read with an error and closes the
	// connection, which the pool then discards.
	conn.Conn().PgConn().Frontend().SetMaxBodyLen(maxBodyLen(l))

	begin := "BEGIN READ ONLY"
	if d.Writes {
		begin = "BEGIN READ WRITE"
	}
	batch := &pgx.Batch{}
	batch.Queue(begin)
	batch.Queue(fmt.Sprintf("SET LOCAL statement_timeout = %d", l.TimeoutSeconds*1000))
	batch.Queue(c.String("sql"))
	if !d.Writes {
		// A read-only call ends the same way whatever happens: rolling
		// back in the batch saves a round trip. After an error the
		// server skips it, and the ROLLBACK below ends the transaction.
		batch.Queue("ROLLBACK")
	}
	br := conn.SendBatch(ctx, batch)

	res, fields, truncated, qerr := p.collect(conn, br, l)
	if truncated {
		// The rest of the result is not wanted: drop the connection
		// rather than read it, so the server stops sending at once.
		// Closing it also ends the transaction.
		_ = conn.Conn().PgConn().Conn().Close()
		br.Close()
		// pgx may not have noticed (the rest of a small result was
		// already buffered), so the connection would go back to the pool
		// looking healthy: take it out of the pool instead, or the next
		// call would be handed a dead connection.
		dead := conn.Hijack()
		released = true
		_ = dead.Close(ctx)
		if qerr != nil {
			return sqlError(qerr, c.String("sql"), l)
		}
	} else {
		closeErr := br.Close()
		if qerr == nil {
			qerr = closeErr
		}
		end := "ROLLBACK"
		if d.Writes && qerr == nil {
			end = "COMMIT"
		}
		if conn.Conn().PgConn().TxStatus() != 'I' {
			if _, err := conn.Exec(ctx, end); err != nil {
				conn.Conn().Close(ctx)
				if qerr == nil {
					qerr = fmt.Errorf("%s: %w", strings.ToLower(end), err)
				}
			}
		}
		if qerr != nil {
			return sqlError(qerr, c.String("sql"), l)
		}
	}
	if !released {
		conn.Release()
		released = true
	}
	p.resolveSources(ctx, pool, c.Target.Name, fields, res.Columns)
	res.TableColumns = func(table string) ([]string, bool) {
		return p.tableColumns(callCtx, pool, c.Target.Name, table)
	}
	return res, nil
}

// tableColumns returns the column names of table, named in SQL form with
// or without a schema, as the target's catalogue resolves the name (the
// search path applies when no schema is given). Answers are cached for
// tableCacheTTL. ok is false when the relation does not exist or the
// catalogue could not be read.
func (p *Postgres) tableColumns(ctx context.Context, pool *pgxpool.Pool, target, table string) ([]string, bool) {
	k := tableKey{target, table}
	p.mu.Lock()
	e, hit := p.tables[k]
	p.mu.Unlock()
	if hit && p.now().Sub(e.fetched) < tableCacheTTL {
		return e.cols, true
	}

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tableLookupLimit)
	defer cancel()
	var cols []string
	err := pool.QueryRow(ctx, `SELECT array(SELECT a.attname::text FROM pg_catalog.pg_attribute a
			WHERE a.attrelid = c AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)
		FROM pg_catalog.to_regclass($1) AS c WHERE c IS NOT NULL`, table).Scan(&cols)
	if err != nil {
		if !errors.Is(err, pgx.ErrNoRows) {
			p.logger.Warn("cannot read a table's columns", "target", target, "error", err)
		}
		return nil, false
	}

	p.mu.Lock()
	if len(p.tables) >= tableCacheMax {
		clear(p.tables)
	}
	p.tables[k] = tableEntry{cols: cols, fetched: p.now()}
	p.mu.Unlock()
	return cols, true
}

// collect reads the statement's result, up to the row cap. truncated says
// more rows were coming; the caller then abandons the connection.
func (p *Postgres) collect(conn *pgxpool.Conn, br pgx.BatchResults, l Limits) (*Result, []pgconn.FieldDescription, bool, error) {
	if _, err := br.Exec(); err != nil {
		return nil, nil, false, fmt.Errorf("begin: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return nil, nil, false, fmt.Errorf("set timeout: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, nil, false, err
	}

	// The descriptions live in a buffer the connection reuses: copy them.
	fields := append([]pgconn.FieldDescription(nil), rows.FieldDescriptions()...)
	cols := make([]Column, len(fields))
	tm := conn.Conn().TypeMap()
	for i, f := range fields {
		typ := fmt.Sprintf("oid:%d", f.DataTypeOID)
		if t, ok := tm.TypeForOID(f.DataTypeOID); ok {
			typ = t.Name
		}
		cols[i] = Column{Name: f.Name, Type: typ}
	}
	out := [][]any{}
	truncated, truncatedAt := false, ""
	size := 0
	for rows.Next() {
		if len(out) >= l.MaxRows {
			truncated, truncatedAt = true, "max_rows"
			break
		}
		// Rows stream from the server; what is kept is bounded by the row
		// cap and by the output size cap, so memory stays bounded however
		// high max_rows is set. The size counts the values as they came
		// over the wire, near their size in the answer.
		if l.MaxOutputBytes > 0 {
			n := rowWireSize(rows.RawValues())
			if size+n > l.MaxOutputBytes {
				truncated, truncatedAt = true, "max_output_bytes"
				break
			}
			size += n
		}
		vals, err := rows.Values()
		if err != nil {
			rows.Close()
			return nil, nil, false, err
		}
		row := make([]any, len(vals))
		for i, v := range vals {
			row[i] = jsonValue(v, fields[i].DataTypeOID)
		}
		out = append(out, row)
	}
	if truncated {
		_ = conn.Conn().PgConn().Conn().Close()
	}
	rows.Close()
	if err := rows.Err(); err != nil && !truncated {
		return nil, nil, false, err
	}
	tag := rows.CommandTag()

	colOut := make([]any, len(cols))
	for i, col := range cols {
		colOut[i] = map[string]any{"name": col.Name, "type": col.Type}
	}
	rowsOut := make([]any, len(out))
	for i, r := range out {
		rowsOut[i] = r
	}
	structured := map[string]any{
		"columns": colOut, "rows": rowsOut, "row_count": len(out), "truncated": truncated,
	}
	if truncated {
		structured["truncated_at"] = truncatedAt
	}
	if len(fields) == 0 {
		structured["command"] = tag.String()
		structured["rows_affected"] = tag.RowsAffected()
	}
	return &Result{Structured: structured, Columns: cols}, fields, truncated, nil
}

// rowWireSize is the size of a row's values as the server sent them, with
// a few bytes per value for the quotes and commas of JSON.
func rowWireSize(raw [][]byte) int {
	n := 2
	for _, v := range raw {
		n += len(v) + 4
	}
	return n
}

// resolveSources looks up the table and column each result column was read
// from, as PostgreSQL reports it, caching the answers per target.
func (p *Postgres) resolveSources(ctx context.Context, conn *pgxpool.Pool, target string, fields []pgconn.FieldDescription, cols []Column) {
	var missing []columnKey
	p.mu.Lock()
	for i, f := range fields {
		if f.TableOID == 0 {
			continue
		}
		k := columnKey{target, f.TableOID, f.TableAttributeNumber}
		if src, ok := p.columns[k]; ok {
			s := src
			cols[i].Source = &s
		} else {
			missing = append(missing, k)
		}
	}
	p.mu.Unlock()
	if len(missing) == 0 {
		return
	}
	for _, k := range missing {
		var src ColumnSource
		err := conn.QueryRow(ctx, `SELECT n.nspname, c.relname, a.attname
			FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE a.attrelid = $1 AND a.attnum = $2`, k.table, int16(k.attnum)).
			Scan(&src.Schema, &src.Table, &src.Column)
		if err != nil {
			p.logger.Warn("cannot resolve result column source", "target", target, "error", err)
			continue
		}
		p.mu.Lock()
		p.columns[k] = src
		p.mu.Unlock()
	}
	p.resolveSourcesCached(target, fields, cols)
}

func (p *Postgres) resolveSourcesCached(target string, fields []pgconn.FieldDescription, cols []Column) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, f := range fields {
		if src, ok := p.columns[columnKey{target, f.TableOID, f.TableAttributeNumber}]; ok && f.TableOID != 0 {
			s := src
			cols[i].Source = &s
		}
	}
}

// maxBodyLen is the largest protocol message a call accepts.
func maxBodyLen(l Limits) int {
	if l.MaxOutputBytes <= 0 {
		return defaultMaxBody + bodyMargin
	}
	return l.MaxOutputBytes + bodyMargin
}

// sqlError turns a database error into a result the model can act on.
// A PostgreSQL error's code and message are shown, but a message may
// quote the values that caused it (`invalid input syntax for type
// integer: "4111..."`), so it is scrubbed first (see scrubPgError); a row
// over the message limit says so; anything else is internal. sql is the
// statement that failed.
func sqlError(err error, sql string, l Limits) (*Result, error) {
	var big *pgproto3.ExceededMaxBodyLenErr
	if errors.As(err, &big) {
		return failedQuery(fmt.Sprintf(errTooLarge, l.MaxOutputBytes), ""), nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		msg, hint := scrubPgError(pe, sql)
		msg = fmt.Sprintf("PostgreSQL error %s: %s", pe.Code, msg)
		if hint != "" {
			msg += " (hint: " + hint + ")"
		}
		return failedQuery(msg, pe.Code), nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return failedQuery("the statement did not finish within its time limit", ""), nil
	}
	return nil, err
}

// failedQuery is the result of a query that did not complete. It has the
// shape the output schema declares: clients validate structured content
// against it even on error results, so columns and rows are empty arrays,
// never null.
func failedQuery(msg, sqlstate string) *Result {
	s := map[string]any{"error": msg, "columns": []any{}, "rows": []any{}}
	if sqlstate != "" {
		s["sqlstate"] = sqlstate
	}
	return &Result{Structured: s, Failed: true}
}

// valuePlaceholder stands for a part of an error message that may be a
// value read from the database.
const valuePlaceholder = "[value]"

// raisedWithheld replaces the text of an error a function raised.
const raisedWithheld = "a database function raised this error; its text is " +
	"withheld because it may carry data values"

// scrubPgError returns an error's message and hint with every part that
// may come from the data replaced by valuePlaceholder.
//
// PostgreSQL puts values in messages in many ways: quoted, without
// escaping quotes inside them (`"x"4111"`); unquoted after a colon
// (`encoding: 411111111`, `implemented: a.b.c`); and in class 42
// messages too, when a value is used as a name (`token::regclass` gives
// `relation "ghp_..." does not exist`). So the rules are:
//
//   - A message a function raised (RAISE, ASSERT, class P0) is withheld
//     whole: its text is whatever the function chose, under any code.
//   - Between the first and the last double quote: in a data exception
//     (class 22) all of it is one placeholder. Elsewhere each quoted name
//     is kept only when it is a word of the statement (or, in class 23,
//     names a constraint, table or column, which come from the catalogue)
//     and the text between quoted names is a few plain connecting words;
//     otherwise all of it is one placeholder.
//   - Outside quotes, a word is kept when it is plain prose (lowercase
//     letters, a capitalised or upper-case word, an operator) or a word
//     of the statement; a number, a dotted name or anything else is not.
//
// A name kept because the statement holds it is one the caller wrote, so
// the kept text says nothing the caller did not send. Matching is by
// whole word, so putting '0123456789' in a statement does not let
// substr(card_number, 1, 1)::regclass show a digit.
func scrubPgError(pe *pgconn.PgError, sql string) (msg, hint string) {
	if strings.HasPrefix(pe.Code, "P0") || strings.Contains(pe.Where, " at RAISE") ||
		strings.Contains(pe.Where, " at ASSERT") {
		return raisedWithheld, ""
	}
	sc := errorScrubber{
		words: statementWords(sql),
		class: pe.Code[:min(2, len(pe.Code))],
	}
	msg = sc.scrub(pe.Message, false)
	if pe.Hint != "" {
		// "Perhaps you meant to reference the column \"c.card_number\"":
		// the column comes from the catalogue, the alias from the statement.
		hint = sc.scrub(pe.Hint, pe.Code == "42703")
	}
	return msg, hint
}

// errorScrubber scrubs one error's texts.
type errorScrubber struct {
	words map[string]bool // the statement's words, lower case
	class string          // the SQLSTATE class, "22", "42", ...
}

// scrub applies the rules of scrubPgError to s. aliasColumn accepts a
// quoted "alias.column" whose alias is a statement word.
func (sc errorScrubber) scrub(s string, aliasColumn bool) string {
	first, last := strings.IndexByte(s, '"'), strings.LastIndexByte(s, '"')
	if first < 0 {
		return sc.scrubWords(s)
	}
	span := `"` + valuePlaceholder + `"`
	if sc.class != "22" && sc.quotedNamesKept(s[first:last+1], aliasColumn) {
		span = s[first : last+1]
	}
	return sc.scrubWords(s[:first]) + span + sc.scrubWords(s[last+1:])
}

// quotedNamesKept reports whether span, which starts and ends with a
// double quote, is quoted names joined by connecting words, every name
// one that may be shown.
func (sc errorScrubber) quotedNamesKept(span string, aliasColumn bool) bool {
	parts := strings.Split(span, `"`)
	// parts: "", name, between, name, ..., name, ""
	if len(parts)%2 == 0 || len(parts) < 3 {
		return false
	}
	for i := 1; i < len(parts)-1; i++ {
		if i%2 == 0 {
			if !connecting(parts[i]) {
				return false
			}
			continue
		}
		name := parts[i]
		switch {
		case sc.class == "23" && name != "":
		case sc.statementName(name):
		case aliasColumn && sc.aliasColumn(name):
		default:
			return false
		}
	}
	return true
}

// connectingWords may join two quoted names in a message (`column "a" of
// relation "b"`, `... table "t" violates foreign key constraint "c"`).
var connectingWords = map[string]bool{
	"of": true, "for": true, "in": true, "on": true, "or": true,
	"the": true, "relation": true, "table": true, "column": true,
	"encoding": true, "type": true, "schema": true, "constraint": true,
	"index": true, "violates": true, "foreign": true, "key": true,
	"check": true, "unique": true, "exclusion": true,
}

// connecting reports whether s is one to four connecting words between
// spaces.
func connecting(s string) bool {
	if len(s) < 3 || s[0] != ' ' || s[len(s)-1] != ' ' {
		return false
	}
	words := strings.Split(s[1:len(s)-1], " ")
	if len(words) > 4 {
		return false
	}
	for _, w := range words {
		if !connectingWords[w] {
			return false
		}
	}
	return true
}

// statementName reports whether name is a statement word, or a dotted
// name whose every part is one.
func (sc errorScrubber) statementName(name string) bool {
	name = strings.ToLower(name)
	if sc.words[name] {
		return true
	}
	parts := strings.Split(name, ".")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if !sc.words[p] {
			return false
		}
	}
	return true
}

// aliasColumn reports whether name is "alias.column" with the alias a
// statement word and the column an identifier.
func (sc errorScrubber) aliasColumn(name string) bool {
	alias, col, ok := strings.Cut(strings.ToLower(name), ".")
	return ok && sc.words[alias] && identifierLike(col)
}

// identifierLike reports whether s is a plain lowercase identifier.
func identifierLike(s string) bool {
	for i, r := range s {
		if r != '_' && (r < 'a' || r > 'z') && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return s != ""
}

// scrubWords replaces each word of s (text outside quotes) that is not
// plain prose or a statement name.
func (sc errorScrubber) scrubWords(s string) string {
	var b strings.Builder
	for s != "" {
		i := strings.IndexFunc(s, isWordBreak)
		if i < 0 {
			i = len(s)
		}
		if w := s[:i]; w != "" {
			if proseWord(w) || sc.statementName(w) {
				b.WriteString(w)
			} else {
				b.WriteString(valuePlaceholder)
			}
		}
		if i == len(s) {
			break
		}
		_, n := utf8.DecodeRuneInString(s[i:])
		b.WriteString(s[i : i+n])
		s = s[i+n:]
	}
	return b.String()
}

func isWordBreak(r rune) bool {
	return unicode.IsSpace(r) || strings.ContainsRune(",;:()[]{}", r)
}

// proseWord reports whether w is a word of a message's own text: words
// of letters, each lowercase, capitalised or upper case, joined by - / or
// ' ("date/time", "not-null", "Perhaps", "FROM-clause", "SQL"), with an
// optional full stop; or an operator ("=", "%%").
func proseWord(w string) bool {
	w = strings.TrimSuffix(w, ".")
	if w == "" || strings.Trim(w, "+-*/<>=~!@#%^&|`?") == "" {
		return true
	}
	joined := func(r rune) bool { return r == '-' || r == '/' || r == '\'' }
	if joined(rune(w[0])) || joined(rune(w[len(w)-1])) {
		return false
	}
	for _, part := range strings.FieldsFunc(w, joined) {
		lower := strings.ToLower(part)
		if strings.Trim(lower, "abcdefghijklmnopqrstuvwxyz") != "" {
			return false
		}
		if part != lower && part != strings.ToUpper(part) &&
			part[1:] != lower[1:] {
			return false
		}
	}
	return true
}

// statementWords returns the words of sql in lower case: identifiers
// (quoted ones unquoted), keywords, numbers, parameters and the contents
// of string constants. It need not parse exactly: every word it returns
// is text the caller wrote.
func statementWords(sql string) map[string]bool {
	words := make(map[string]bool)
	add := func(w string) {
		if w != "" {
			words[strings.ToLower(w)] = true
		}
	}
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'' || c == '"':
			text, n := quotedText(sql[i:], c)
			add(text)
			i += n
		case c == '$' && dollarTag(sql[i:]) != "":
			tag := dollarTag(sql[i:])
			body := sql[i+len(tag):]
			end := strings.Index(body, tag)
			if end < 0 {
				end = len(body)
			}
			add(body[:end])
			i += len(tag) + min(end+len(tag), len(body))
		case isSQLWordByte(c):
			j := i
			for j < len(sql) && isSQLWordByte(sql[j]) {
				j++
			}
			add(sql[i:j])
			i = j
		default:
			i++
		}
	}
	return words
}

// quotedText returns the text of the quoted token at the start of s and
// the token's length; a doubled quote stands for one.
func quotedText(s string, q byte) (string, int) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != q {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == q {
			b.WriteByte(q)
			i++
			continue
		}
		return b.String(), i + 1
	}
	return b.String(), len(s)
}

// dollarTag returns the $tag$ opening s, or "".
func dollarTag(s string) string {
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '$':
			return s[:i+1]
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			i > 1 && c >= '0' && c <= '9':
		default:
			return ""
		}
	}
	return ""
}

func isSQLWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' ||
		c >= 'A' && c <= 'Z' || c >= 0x80
}
