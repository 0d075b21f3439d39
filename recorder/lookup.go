package recorder

import (
	"context"
	"database/sql"
	"fmt"
)

// The records table of a SQLite transcript has no index but its primary
// key: each index would cost every commit more B-tree work and one more
// WAL frame, and the three the readers need doubled the cost of a commit.
// The readers find records through record_keys instead: a copy of each
// record's seq, kind, session and call, with the indexes, brought up to
// date in bulk ("caught up") rather than in every commit:
//
//   - by the guard's writer, in the commit that reaches every keysEvery-th
//     record, so one commit in keysEvery pays for it;
//   - on Open, which also builds it for a transcript written before it;
//   - by a Reader given a writable database.
//
// record_keys is derived data outside the chain: Verify never reads it,
// and a Reader checks it against the records before it uses it, so a
// key row that was edited, deleted or never written changes no answer
// (see NewReader). PostgreSQL keeps its indexes on records and has no
// record_keys.

// keysEvery is how many records pass between two catch-ups of record_keys
// by the writer.
const keysEvery = 256

// keysSchema creates record_keys and its indexes.
const keysSchema = `
CREATE TABLE IF NOT EXISTS record_keys (
	seq        INTEGER PRIMARY KEY,
	kind       TEXT NOT NULL,
	session_id TEXT NOT NULL,
	call_id    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS record_keys_session ON record_keys(session_id, seq);
CREATE INDEX IF NOT EXISTS record_keys_call ON record_keys(call_id, seq) WHERE call_id != '';
CREATE INDEX IF NOT EXISTS record_keys_kind ON record_keys(kind, seq);
`

// dropRecordIndexes removes the indexes that records had before
// record_keys took their place.
const dropRecordIndexes = `
DROP INDEX IF EXISTS records_call;
DROP INDEX IF EXISTS records_session;
DROP INDEX IF EXISTS records_kind;
`

// catchUpQuery copies the keys of the records up to seq ? that follow the
// last key row at or before that seq. Stray rows in that range, which
// only a hand could have put there, are replaced.
const catchUpQuery = `INSERT OR REPLACE INTO record_keys (seq, kind, session_id, call_id)
	SELECT seq, kind, session_id, call_id FROM records
	WHERE seq > (SELECT COALESCE(MAX(seq), 0) FROM record_keys WHERE seq <= ?) AND seq <= ?`

// execer is what *sql.DB, *sql.Conn and *sql.Tx share for writing.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// catchUpKeys brings record_keys up to seq upto.
func catchUpKeys(ctx context.Context, e execer, upto int64) error {
	if _, err := e.ExecContext(ctx, catchUpQuery, upto, upto); err != nil {
		return fmt.Errorf("recorder: catch up record keys: %w", err)
	}
	return nil
}

// keysDue reports whether a commit that moves the head from seq before to
// seq after reaches a multiple of keysEvery, and so catches up the keys.
func keysDue(before, after int64) bool {
	return before/keysEvery != after/keysEvery
}

// hasKeyTable reports whether q's database has record_keys.
func hasKeyTable(ctx context.Context, q querier) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master
		WHERE type = 'table' AND name = 'record_keys'`).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("recorder: look for record keys: %w", err)
	}
	return n > 0, nil
}

// keyedThrough returns the highest seq in record_keys, at most upto.
func keyedThrough(ctx context.Context, q querier, upto int64) (int64, error) {
	var seq int64
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM record_keys
		WHERE seq <= ?`, upto).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("recorder: read record keys: %w", err)
	}
	return seq, nil
}

// keysMatch reports whether every record up to seq upto has its key row
// in record_keys, with the record's own kind, session and call. Key rows
// without a record are harmless, since readers take records only from
// records, and are not looked for. It reads every record up to upto.
func keysMatch(ctx context.Context, q querier, upto int64) (bool, error) {
	var bad int
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM records r
		WHERE r.seq <= ? AND NOT EXISTS (SELECT 1 FROM record_keys k
			WHERE k.seq = r.seq AND k.kind = r.kind AND k.session_id = r.session_id
			AND k.call_id = r.call_id))`, upto).Scan(&bad)
	if err != nil {
		return false, fmt.Errorf("recorder: check record keys: %w", err)
	}
	return bad == 0, nil
}
