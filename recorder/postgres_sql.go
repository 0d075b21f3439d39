package recorder

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/stdlib"
)

// The recorder's SQL is written once, in the dialect SQLite and
// PostgreSQL share, with two SQLite habits: ? placeholders and INDEXED BY
// hints. A *sql.DB on PostgreSQL goes through pgConn, which rewrites both
// on the way in, so that every reader and writer of this package (Verify,
// Calls, Prune...) runs unchanged on either store.

// pgDriver is the driver a PostgreSQL *sql.DB of this package reports;
// isPostgres tells the stores apart by it.
type pgDriver struct{}

// Open refuses: such databases are made by OpenPostgres and
// OpenPostgresDB only.
func (pgDriver) Open(string) (driver.Conn, error) {
	return nil, errors.New("recorder: open PostgreSQL transcripts with OpenPostgres")
}

// pgConnector hands out rewriting connections over pgx's.
type pgConnector struct{ inner driver.Connector }

// Connect implements driver.Connector.
func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(*stdlib.Conn)
	if !ok {
		conn.Close()
		return nil, errors.New("recorder: unexpected PostgreSQL driver connection")
	}
	return &pgConn{Conn: sc}, nil
}

// Driver implements driver.Connector.
func (pgConnector) Driver() driver.Driver { return pgDriver{} }

// pgConn is pgx's connection with every query rebound. The embedded
// connection supplies transactions, pings, session resets and value
// checks unchanged.
type pgConn struct{ *stdlib.Conn }

// Prepare implements driver.Conn.
func (c *pgConn) Prepare(query string) (driver.Stmt, error) {
	return c.Conn.Prepare(rebind(query))
}

// PrepareContext implements driver.ConnPrepareContext.
func (c *pgConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, rebind(query))
}

// ExecContext implements driver.ExecerContext.
func (c *pgConn) ExecContext(ctx context.Context, query string,
	args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, rebind(query), args)
}

// QueryContext implements driver.QueryerContext.
func (c *pgConn) QueryContext(ctx context.Context, query string,
	args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, rebind(query), args)
}

// isPostgres reports whether db is a PostgreSQL transcript.
func isPostgres(db *sql.DB) bool {
	_, ok := db.Driver().(pgDriver)
	return ok
}

// indexedBy matches SQLite's index hints, which PostgreSQL does not know.
var indexedBy = regexp.MustCompile(`(?i)\s+INDEXED\s+BY\s+[A-Za-z_][A-Za-z0-9_]*`)

// rebound caches rebind: the package has a few dozen distinct queries.
var rebound sync.Map // string → string

// rebind turns SQLite's ? placeholders into PostgreSQL's $1, $2, ... and
// drops INDEXED BY hints. A ? inside a quoted string or identifier is left
// alone.
func rebind(query string) string {
	if v, ok := rebound.Load(query); ok {
		return v.(string)
	}
	q := indexedBy.ReplaceAllString(query, "")
	var b strings.Builder
	n := 0
	var quote byte // the open quote, or 0
	for i := 0; i < len(q); i++ {
		ch := q[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0 // a doubled quote reopens at the next byte
			}
		case ch == '\'' || ch == '"':
			quote = ch
		case ch == '?':
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(ch)
	}
	out := b.String()
	rebound.Store(query, out)
	return out
}
