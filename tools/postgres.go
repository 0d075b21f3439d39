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
			"command": {"type": "string"}, "rows_affected": {"type": "integer"}`),
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
		if qerr != nil {
			return sqlError(qerr, l)
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
			return sqlError(qerr, l)
		}
	}
	conn.Release()
	released = true
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
// A PostgreSQL error's message and code are shown (they describe the
// statement, not the server); a row over the message limit says so;
// anything else is internal.
func sqlError(err error, l Limits) (*Result, error) {
	var big *pgproto3.ExceededMaxBodyLenErr
	if errors.As(err, &big) {
		msg := fmt.Sprintf(errTooLarge, l.MaxOutputBytes)
		return &Result{
			Structured: map[string]any{"error": msg},
			Failed:     true,
		}, nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		msg := fmt.Sprintf("PostgreSQL error %s: %s", pe.Code, pe.Message)
		if pe.Hint != "" {
			msg += " (hint: " + pe.Hint + ")"
		}
		return &Result{
			Structured: map[string]any{"error": msg, "sqlstate": pe.Code},
			Failed:     true,
		}, nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		msg := "the statement did not finish within its time limit"
		return &Result{Structured: map[string]any{"error": msg}, Failed: true}, nil
	}
	return nil, err
}
