package recorder

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"time"

	sqlite3 "modernc.org/sqlite/lib"
)

// committer appends a batch at the head of the chain in one transaction.
// Only the leader calls commit, so one commit runs at a time.
type committer interface {
	// commit fills in each record's seq, time and hashes and commits
	// them, with a checkpoint after them when due writes one; it returns
	// that checkpoint's seq, or 0.
	commit(ctx context.Context, batch []*pending, now time.Time, due checkpointFunc) (int64, error)
	close()
}

// checkpointFunc appends a checkpoint to ch when one is due and returns
// its seq, or 0. With q it first reads where the last checkpoint is from
// q, the transaction, as other writers may have signed since.
type checkpointFunc func(ctx context.Context, ch *chain, q querier) (int64, error)

// appendBatch appends the records of batch to ch, then the checkpoint if
// one is due, and returns the checkpoint's seq or 0.
func appendBatch(ctx context.Context, ch *chain, batch []*pending, due checkpointFunc, q querier) (int64, error) {
	for _, p := range batch {
		if err := ch.append(ctx, &p.rec); err != nil {
			return 0, err
		}
	}
	return due(ctx, ch, q)
}

// txCommitter commits through database/sql transactions, reading the head
// in each: the way for PostgreSQL, where other replicas move the head
// between any two commits, and an advisory lock keeps writers in order.
type txCommitter struct {
	db    *sql.DB
	stmts chainStmts
}

func newTxCommitter(ctx context.Context, db *sql.DB) (*txCommitter, error) {
	stmts, err := prepareChain(ctx, db)
	if err != nil {
		return nil, err
	}
	return &txCommitter{db: db, stmts: stmts}, nil
}

func (c *txCommitter) commit(ctx context.Context, batch []*pending, now time.Time, due checkpointFunc) (int64, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("recorder: begin: %w", err)
	}
	defer tx.Rollback()
	if err := lockChain(ctx, c.db, tx); err != nil {
		return 0, err
	}
	ch, err := openChainWith(ctx, tx, now, c.stmts)
	if err != nil {
		return 0, err
	}
	defer ch.close()
	signed, err := appendBatch(ctx, ch, batch, due, tx)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("recorder: commit: %w", err)
	}
	return signed, nil
}

func (c *txCommitter) close() { c.stmts.close() }

// liteWriter commits to SQLite on a connection of its own, with its
// statements (BEGIN IMMEDIATE, the insert, COMMIT) prepared once, and
// keeps the chain head in memory instead of reading it in each commit.
//
// The cached head is safe because every writer appends at seq head+1:
// when another process (a prune, the approvals command) has appended
// since, that seq is taken, the insert fails on the primary key, and the
// commit starts again from the head read from the database. A head
// deleted behind the guard's back is not followed: the next record
// continues from the head the guard wrote, and verification reports the
// gap. Any failure drops the cached head and, unless a rollback ends the
// transaction cleanly, the connection too.
type liteWriter struct {
	db     *sql.DB
	logger *slog.Logger

	// conn and the statements are nil until first used, and again after
	// a failure left the connection in doubt.
	conn                                  *sql.Conn
	begin, insert, commitStmt, rollbackSt *sql.Stmt
	headStmt                              *sql.Stmt

	// relaxed says that the connection commits with synchronous NORMAL
	// whatever the database's setting: its records are durable in the
	// journal (see relax).
	relaxed bool

	// known says whether seq, hash and kind hold the chain head.
	known bool
	seq   int64
	hash  string
	kind  string
}

func newLiteWriter(ctx context.Context, db *sql.DB, logger *slog.Logger) (*liteWriter, error) {
	w := &liteWriter{db: db, logger: logger}
	if err := w.connect(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// connect takes a connection of the pool for the writer alone and
// prepares its statements on it.
func (w *liteWriter) connect(ctx context.Context) error {
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("recorder: connect the writer: %w", err)
	}
	w.conn = conn
	for _, s := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&w.begin, "BEGIN IMMEDIATE"},
		{&w.insert, insertQuery},
		{&w.commitStmt, "COMMIT"},
		{&w.rollbackSt, "ROLLBACK"},
		{&w.headStmt, headQuery},
	} {
		if *s.stmt, err = conn.PrepareContext(ctx, s.query); err != nil {
			w.discard()
			return fmt.Errorf("recorder: prepare %q: %w", s.query, err)
		}
	}
	if w.relaxed {
		if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
			w.discard()
			return fmt.Errorf("recorder: relax the writer's syncs: %w", err)
		}
	}
	return nil
}

// relax has the writer commit with synchronous NORMAL from now on, for
// an ingester: in WAL mode that keeps the database whole through a power
// loss, which may take its last transactions, records and journal
// position together, to be moved in again from the journal.
func (w *liteWriter) relax(ctx context.Context) error {
	w.relaxed = true
	w.discard()
	return w.connect(ctx)
}

// syncPosition stores the journal position in a transaction synced to
// the disk, which makes every transaction before it durable too (the WAL
// is written in order): for a relaxed writer, before the journal its
// records came from is replaced.
func (w *liteWriter) syncPosition(ctx context.Context, pos journalPos) error {
	if w.conn == nil {
		if err := w.connect(ctx); err != nil {
			return err
		}
	}
	err := func() error {
		if _, err := w.conn.ExecContext(ctx, `PRAGMA synchronous = FULL`); err != nil {
			return err
		}
		if err := setJournalState(ctx, w.conn, pos); err != nil {
			return err
		}
		if w.relaxed {
			_, err := w.conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`)
			return err
		}
		return nil
	}()
	if err != nil {
		w.discard()
		return fmt.Errorf("recorder: make the database durable: %w", err)
	}
	return nil
}

// discard closes the writer's connection for good, rolling back whatever
// transaction it held, and forgets the head.
func (w *liteWriter) discard() {
	w.known = false
	for _, s := range []**sql.Stmt{&w.begin, &w.insert, &w.commitStmt, &w.rollbackSt, &w.headStmt} {
		if *s != nil {
			(*s).Close()
			*s = nil
		}
	}
	if w.conn != nil {
		// ErrBadConn makes database/sql close the connection rather than
		// return it to the pool, where an open transaction would block
		// every other writer.
		w.conn.Raw(func(any) error { return driver.ErrBadConn })
		w.conn.Close()
		w.conn = nil
	}
}

func (w *liteWriter) close() { w.discard() }

func (w *liteWriter) commit(ctx context.Context, batch []*pending, now time.Time, due checkpointFunc) (int64, error) {
	return w.commitWith(ctx, batch, now, due, nil)
}

// commitWith is commit, running also (unless nil) in the transaction
// after the records: the ingester stores there how far the journal's
// records are in the database.
func (w *liteWriter) commitWith(ctx context.Context, batch []*pending, now time.Time,
	due checkpointFunc, also func(context.Context, execer) error) (int64, error) {
	wasKnown := w.known
	signed, err := w.try(ctx, batch, now, due, also)
	if err != nil && wasKnown && isConstraint(err) {
		// Another process appended since this writer last read the head.
		signed, err = w.try(ctx, batch, now, due, also)
	}
	return signed, err
}

// try runs one transaction appending batch; on failure the transaction
// is rolled back and the head forgotten.
func (w *liteWriter) try(ctx context.Context, batch []*pending, now time.Time,
	due checkpointFunc, also func(context.Context, execer) error) (int64, error) {
	if w.conn == nil {
		if err := w.connect(ctx); err != nil {
			return 0, err
		}
	}
	if _, err := w.begin.ExecContext(ctx); err != nil {
		w.discard()
		return 0, fmt.Errorf("recorder: begin: %w", err)
	}
	var signed int64
	ch, err := w.openChain(ctx, now)
	if err == nil {
		before := ch.seq
		signed, err = appendBatch(ctx, ch, batch, due, nil)
		if err == nil && keysDue(before, ch.seq) {
			w.catchUpKeys(ctx, ch.seq)
		}
	}
	if err == nil && also != nil {
		err = also(ctx, w.conn)
	}
	if err == nil {
		if _, err = w.commitStmt.ExecContext(ctx); err != nil {
			err = fmt.Errorf("recorder: commit: %w", err)
		}
	}
	if err != nil {
		w.known = false
		if _, rbErr := w.rollbackSt.ExecContext(ctx); rbErr != nil {
			// SQLite rolls back by itself on some errors; whatever the
			// state, a fresh connection is certain.
			w.discard()
		}
		return 0, err
	}
	w.known, w.seq, w.hash, w.kind = true, ch.seq, ch.prev, ch.headKind
	return signed, nil
}

// catchUpKeys brings record_keys up to seq upto inside the writer's
// transaction. A failure is logged, not returned: the key table is
// derived, and the readers cover what it lacks. SQLite undoes the failed
// statement alone; should it have ended the transaction instead, the
// commit that follows fails and says so.
func (w *liteWriter) catchUpKeys(ctx context.Context, upto int64) {
	if err := catchUpKeys(ctx, w.conn, upto); err != nil {
		w.logger.Error("recorder key catch-up failed", "seq", upto, "error", err)
	}
}

// openChain starts a chain at the cached head, or at the head read from
// the database when none is cached.
func (w *liteWriter) openChain(ctx context.Context, now time.Time) (*chain, error) {
	ch := &chain{stmt: w.insert, shared: true, now: now}
	if w.known {
		ch.seq, ch.prev, ch.headKind = w.seq, w.hash, w.kind
		return ch, nil
	}
	ch.prev = GenesisHash
	err := w.headStmt.QueryRowContext(ctx).Scan(&ch.seq, &ch.prev, &ch.headKind)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("recorder: read chain head: %w", err)
	}
	return ch, nil
}

// isConstraint reports whether err is SQLite refusing a row for a
// constraint: in the records table, a seq that is already taken.
func isConstraint(err error) bool {
	var e interface{ Code() int }
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}
