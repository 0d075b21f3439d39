package recorder

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// chain appends records at the head of the transcript inside one
// transaction. The head is read inside that transaction, so writers in
// other processes (a prune, say) stay in order: SQLite serialises the
// immediate transactions.
type chain struct {
	stmt *sql.Stmt
	// shared says that stmt outlives the chain, which must not close it.
	shared   bool
	seq      int64
	prev     string
	headKind string
	now      time.Time
}

// The statements a chain runs.
const (
	headQuery   = `SELECT seq, hash, kind FROM records ORDER BY seq DESC LIMIT 1`
	insertQuery = `INSERT INTO records
		(seq, at, kind, session_id, call_id, body, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
)

// chainStmts are a chain's statements prepared once on the database, for
// the writer, which opens a chain in every commit: preparing them again
// each time cost about a third of a commit.
type chainStmts struct{ head, insert *sql.Stmt }

func prepareChain(ctx context.Context, db *sql.DB) (chainStmts, error) {
	head, err := db.PrepareContext(ctx, headQuery)
	if err != nil {
		return chainStmts{}, fmt.Errorf("recorder: prepare head query: %w", err)
	}
	insert, err := db.PrepareContext(ctx, insertQuery)
	if err != nil {
		head.Close()
		return chainStmts{}, fmt.Errorf("recorder: prepare insert: %w", err)
	}
	return chainStmts{head: head, insert: insert}, nil
}

func (s chainStmts) close() {
	for _, st := range []*sql.Stmt{s.head, s.insert} {
		if st != nil {
			st.Close()
		}
	}
}

// openChain opens a chain in tx with statements prepared for it alone.
func openChain(ctx context.Context, tx *sql.Tx, now time.Time) (*chain, error) {
	return openChainWith(ctx, tx, now, chainStmts{})
}

// openChainWith opens a chain in tx, running the prepared statements of s
// where it has them.
func openChainWith(ctx context.Context, tx *sql.Tx, now time.Time, s chainStmts) (*chain, error) {
	c := &chain{prev: GenesisHash, now: now}
	var row *sql.Row
	if s.head != nil {
		row = tx.StmtContext(ctx, s.head).QueryRowContext(ctx)
	} else {
		row = tx.QueryRowContext(ctx, headQuery)
	}
	err := row.Scan(&c.seq, &c.prev, &c.headKind)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("recorder: read chain head: %w", err)
	}
	if s.insert != nil {
		c.stmt = tx.StmtContext(ctx, s.insert)
		return c, nil
	}
	c.stmt, err = tx.PrepareContext(ctx, insertQuery)
	if err != nil {
		return nil, fmt.Errorf("recorder: prepare insert: %w", err)
	}
	return c, nil
}

func (c *chain) close() {
	if !c.shared {
		c.stmt.Close()
	}
}

// append fills in rec's seq, hashes and, unless it has one (a record
// from the journal keeps the time of its commit there), time, and inserts
// it.
func (c *chain) append(ctx context.Context, rec *Record) error {
	seq := c.seq + 1
	if rec.At.IsZero() {
		rec.At = c.now
	}
	rec.Seq, rec.PrevHash = seq, c.prev
	rec.Hash = Hash(*rec)
	_, err := c.stmt.ExecContext(ctx, rec.Seq, FormatTime(rec.At), rec.Kind,
		rec.SessionID, rec.CallID, string(rec.Body), rec.PrevHash, rec.Hash)
	if err != nil {
		return fmt.Errorf("recorder: insert record %d: %w", seq, err)
	}
	c.seq, c.prev, c.headKind = seq, rec.Hash, rec.Kind
	return nil
}

// checkpoint appends a checkpoint signing the current head.
func (c *chain) checkpoint(ctx context.Context, key ed25519.PrivateKey) error {
	body, err := json.Marshal(SignCheckpoint(key, c.seq, c.prev))
	if err != nil {
		return fmt.Errorf("recorder: encode checkpoint: %w", err)
	}
	return c.append(ctx, &Record{Kind: KindCheckpoint, Body: body})
}

// lastCheckpointSeq returns the seq of the latest checkpoint, 0 if none.
// On PostgreSQL the kind index of records finds it. On SQLite, where
// records has no such index, it looks among the records after the last
// key row first, then down the checkpoints record_keys names, taking the
// kind from records: a key row edited to hide a checkpoint can only make
// it find an earlier one, which means more to verify, never less.
func lastCheckpointSeq(ctx context.Context, q querier, pg bool) (int64, error) {
	var seq int64
	if pg {
		err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM records
			WHERE kind = ?`, KindCheckpoint).Scan(&seq)
		if err != nil {
			return 0, fmt.Errorf("recorder: find last checkpoint: %w", err)
		}
		return seq, nil
	}
	keyed, err := keyedThrough(ctx, q, 1<<63-1)
	if err != nil {
		return 0, err
	}
	err = q.QueryRowContext(ctx, `SELECT seq FROM records WHERE seq > ? AND kind = ?
		ORDER BY seq DESC LIMIT 1`, keyed, KindCheckpoint).Scan(&seq)
	if err == nil || !errors.Is(err, sql.ErrNoRows) {
		return seq, wrapErr("recorder: find last checkpoint", err)
	}
	err = q.QueryRowContext(ctx, `SELECT r.seq FROM record_keys k
		JOIN records r ON r.seq = k.seq
		WHERE k.kind = ? AND r.kind = ? ORDER BY k.seq DESC LIMIT 1`,
		KindCheckpoint, KindCheckpoint).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return seq, wrapErr("recorder: find last checkpoint", err)
}

// wrapErr wraps err, if any, with context.
func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// querier is what *sql.DB and *sql.Tx share for reading.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// checkTail verifies the records after the latest checkpoint (the
// checkpoint included), which no signature covers yet. The recorder
// refuses to chain onto a tail that was tampered with.
func checkTail(ctx context.Context, db *sql.DB) error {
	from, err := lastCheckpointSeq(ctx, db, isPostgres(db))
	if err != nil {
		return err
	}
	rep, err := Verify(ctx, db, VerifyOptions{FromSeq: from, MaxProblems: 1})
	if err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("recorder: the transcript does not verify (%s); "+
			"refusing to append to it: run mcp-guard audit verify", rep.Problems[0])
	}
	return nil
}
