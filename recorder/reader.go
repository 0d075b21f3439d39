package recorder

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
)

// Reader reads a transcript as it stood when the reader was made: records
// appended since are not seen. It finds records by kind, session and call
// through record_keys on SQLite and through the indexes of records on
// PostgreSQL; every record it returns is read from records, whose values
// decide whether it matches.
//
// On SQLite, NewReader first checks record_keys against the records (one
// pass over them) and uses only the part that matches. The records it
// cannot use it for, those after the last catch-up or all of them when
// the table is missing or does not match, it brings into record_keys when
// the database is writable, and otherwise copies into a temporary table
// of the reader's own connection. Either way the answers are the same.
//
// A Reader is for one goroutine; Close releases its connection.
type Reader struct {
	db *sql.DB
	// q runs the queries: conn on SQLite, db on PostgreSQL.
	q interface {
		querier
		PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	}
	conn *sql.Conn // nil on PostgreSQL
	pg   bool

	head int64
	// keyed is the last seq found through record_keys: every record up
	// to it has its matching key row there. 0 uses none of it.
	keyed int64
	// tail says that temp.record_keys_tail holds the keys of the records
	// after keyed, up to head.
	tail bool

	// keyedByStmt finds the records keyed by a call or request id (see
	// keyedBy); nil until first needed.
	keyedByStmt *sql.Stmt
}

// The temporary table a reader that cannot write keeps the keys of the
// records after keyed in: created, filled, then indexed.
const (
	tailTable = `CREATE TEMP TABLE record_keys_tail (
		seq        INTEGER PRIMARY KEY,
		kind       TEXT NOT NULL,
		session_id TEXT NOT NULL,
		call_id    TEXT NOT NULL)`
	tailFill = `INSERT INTO temp.record_keys_tail (seq, kind, session_id, call_id)
		SELECT seq, kind, session_id, call_id FROM main.records WHERE seq > ? AND seq <= ?`
	tailIndexes = `
		CREATE INDEX temp.record_keys_tail_session ON record_keys_tail(session_id, seq);
		CREATE INDEX temp.record_keys_tail_call ON record_keys_tail(call_id, seq);
		CREATE INDEX temp.record_keys_tail_kind ON record_keys_tail(kind, seq)`
)

// NewReader readies a reader of the transcript in db, SQLite or
// PostgreSQL, at its current head. On SQLite it reads every record once
// to check record_keys (about a second per million records).
func NewReader(ctx context.Context, db *sql.DB) (*Reader, error) {
	r := &Reader{db: db, q: db}
	if isPostgres(db) {
		r.pg = true
		head, _, err := Head(ctx, db)
		if err != nil {
			return nil, err
		}
		r.head, r.keyed = head, head
		return r, nil
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("recorder: connect the reader: %w", err)
	}
	r.conn, r.q = conn, conn
	if err := r.ready(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// ready finds the head, checks record_keys and covers the records it does
// not: by catching it up when it can write, else in the tail table.
func (r *Reader) ready(ctx context.Context) error {
	err := r.conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM records`).Scan(&r.head)
	if err != nil {
		return fmt.Errorf("recorder: read head: %w", err)
	}
	has, err := hasKeyTable(ctx, r.conn)
	if err != nil {
		return err
	}
	matches := false
	if has {
		if r.keyed, err = keyedThrough(ctx, r.conn, r.head); err != nil {
			return err
		}
		if matches, err = keysMatch(ctx, r.conn, r.keyed); err != nil {
			return err
		}
	}
	if !matches {
		r.keyed = 0
	}
	if r.keyed == r.head {
		return nil
	}
	if r.catchUp(ctx, has, matches) {
		r.keyed = r.head
		return nil
	}
	return r.fillTail(ctx)
}

// catchUp brings record_keys up to the head, creating or rebuilding it as
// needed, and reports whether it could. It cannot on a read-only
// database; whatever the reason, the reader then reads the rest from the
// tail table, so the failure is not returned.
func (r *Reader) catchUp(ctx context.Context, has, matches bool) bool {
	tx, err := r.conn.BeginTx(ctx, nil)
	if err != nil {
		return false
	}
	defer tx.Rollback()
	if !has {
		if _, err := tx.ExecContext(ctx, keysSchema); err != nil {
			return false
		}
	}
	if has && !matches {
		if _, err := tx.ExecContext(ctx, `DELETE FROM record_keys`); err != nil {
			return false
		}
	}
	if catchUpKeys(ctx, tx, r.head) != nil {
		return false
	}
	return tx.Commit() == nil
}

// fillTail copies the keys of the records after keyed into a temporary
// table of the reader's connection.
func (r *Reader) fillTail(ctx context.Context) error {
	for _, q := range []struct {
		query string
		args  []any
	}{
		{`DROP TABLE IF EXISTS temp.record_keys_tail`, nil},
		{tailTable, nil},
		{tailFill, []any{r.keyed, r.head}},
		{tailIndexes, nil},
	} {
		if _, err := r.conn.ExecContext(ctx, q.query, q.args...); err != nil {
			return fmt.Errorf("recorder: copy the record keys after seq %d: %w", r.keyed, err)
		}
	}
	r.tail = true
	return nil
}

// Close releases the reader's connection; its temporary table goes with
// it.
func (r *Reader) Close() error {
	if r.keyedByStmt != nil {
		r.keyedByStmt.Close()
	}
	if r.conn == nil {
		return nil
	}
	// ErrBadConn keeps the connection, and its temporary table, out of
	// the pool.
	r.conn.Raw(func(any) error { return driver.ErrBadConn })
	err := r.conn.Close()
	if errors.Is(err, driver.ErrBadConn) {
		err = nil
	}
	return err
}

// Head returns the seq of the last record the reader sees.
func (r *Reader) Head() int64 { return r.head }

// where returns a condition that selects the records, up to the reader's
// head, whose kind, session_id and call_id meet cond, and its arguments.
// On SQLite the records are found through the key tables, then cond is
// checked again on each record, so that its own values decide.
func (r *Reader) where(cond string, args ...any) (string, []any) {
	own := "seq <= ? AND (" + cond + ")"
	ownArgs := append([]any{r.head}, args...)
	if r.pg {
		return own, ownArgs
	}
	var from []string
	var all []any
	if r.keyed > 0 {
		from = append(from, `SELECT seq FROM main.record_keys WHERE seq <= ? AND (`+cond+`)`)
		all = append(append(all, r.keyed), args...)
	}
	if r.tail {
		from = append(from, `SELECT seq FROM temp.record_keys_tail WHERE `+cond)
		all = append(all, args...)
	}
	if len(from) == 0 {
		return "0", nil // an empty transcript
	}
	return "seq IN (" + strings.Join(from, " UNION ALL ") + ") AND " + own, append(all, ownArgs...)
}
