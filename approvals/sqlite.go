package approvals

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mcp-guard/mcp-guard/identity"
)

// sqliteSchema creates the two tables. Times are Unix nanoseconds in UTC.
const sqliteSchema = `
CREATE TABLE IF NOT EXISTS approval_requests (
	id             TEXT PRIMARY KEY,
	created_at     INTEGER NOT NULL,
	expires_at     INTEGER NOT NULL,
	caller_subject TEXT NOT NULL,
	caller_issuer  TEXT NOT NULL,
	caller         TEXT NOT NULL,
	tool           TEXT NOT NULL,
	target         TEXT NOT NULL,
	arguments      TEXT NOT NULL,
	digest         TEXT NOT NULL,
	display        TEXT NOT NULL,
	reasons        TEXT NOT NULL,
	approvers      TEXT NOT NULL,
	required       INTEGER NOT NULL,
	channel        TEXT NOT NULL,
	state          TEXT NOT NULL,
	acknowledged   INTEGER NOT NULL DEFAULT 0,
	decided_at     INTEGER NOT NULL DEFAULT 0,
	executed_at    INTEGER NOT NULL DEFAULT 0,
	slack_channel  TEXT NOT NULL DEFAULT '',
	slack_ts       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS approval_requests_call
	ON approval_requests (caller_subject, caller_issuer, digest, created_at);
CREATE INDEX IF NOT EXISTS approval_requests_state
	ON approval_requests (state, expires_at);
CREATE TABLE IF NOT EXISTS approval_decisions (
	request_id TEXT NOT NULL REFERENCES approval_requests (id),
	approver   TEXT NOT NULL,
	slack_user TEXT NOT NULL,
	subject    TEXT NOT NULL,
	issuer     TEXT NOT NULL,
	approve    INTEGER NOT NULL,
	via        TEXT NOT NULL,
	decided_at INTEGER NOT NULL,
	PRIMARY KEY (request_id, approver)
);
`

// requestColumns lists the columns scanRequest reads, in order.
const requestColumns = `id, created_at, expires_at, caller, tool, target,
	arguments, digest, display, reasons, approvers, required, channel, state,
	acknowledged, decided_at, executed_at, slack_channel, slack_ts`

// SQLiteStore keeps requests in the SQLite database the recorder uses. Open
// the database with _txlock=immediate so that Update's transaction takes
// the write lock before it reads.
type SQLiteStore struct {
	db *sql.DB
}

var _ Store = (*SQLiteStore)(nil)

// NewSQLiteStore returns a store on db. Call Migrate before use.
func NewSQLiteStore(db *sql.DB) *SQLiteStore {
	return &SQLiteStore{db: db}
}

// Migrate creates the tables if they do not exist.
func (s *SQLiteStore) Migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, sqliteSchema); err != nil {
		return fmt.Errorf("create approval tables: %w", err)
	}
	return nil
}

// Insert stores a new request without decisions.
func (s *SQLiteStore) Insert(ctx context.Context, r *Request) error {
	caller, err := json.Marshal(r.Caller)
	if err != nil {
		return fmt.Errorf("encode caller: %w", err)
	}
	reasons, err := json.Marshal(r.Reasons)
	if err != nil {
		return fmt.Errorf("encode reasons: %w", err)
	}
	approvers, err := json.Marshal(r.Approvers)
	if err != nil {
		return fmt.Errorf("encode approvers: %w", err)
	}

	_, err = s.db.ExecContext(ctx, `INSERT INTO approval_requests (
		id, created_at, expires_at, caller_subject, caller_issuer, caller,
		tool, target, arguments, digest, display, reasons, approvers,
		required, channel, state)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, unixNano(r.CreatedAt), unixNano(r.ExpiresAt),
		r.Caller.Subject, r.Caller.Issuer, string(caller),
		r.Tool, r.Target, string(r.Arguments), r.Digest, r.Display,
		string(reasons), string(approvers), r.Required, r.Channel,
		string(r.State))
	if err != nil {
		return fmt.Errorf("insert approval request: %w", err)
	}
	return nil
}

// Get returns a request with its decisions.
func (s *SQLiteStore) Get(ctx context.Context, id string) (*Request, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+requestColumns+`
		FROM approval_requests WHERE id = ?`, id)
	return s.complete(ctx, s.db, row)
}

// Latest returns the newest request of the caller with this digest.
func (s *SQLiteStore) Latest(ctx context.Context, c identity.Caller,
	digest string) (*Request, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+requestColumns+`
		FROM approval_requests
		WHERE caller_subject = ? AND caller_issuer = ? AND digest = ?
		ORDER BY created_at DESC, rowid DESC LIMIT 1`,
		c.Subject, c.Issuer, digest)
	return s.complete(ctx, s.db, row)
}

// List returns requests matching f, newest first.
func (s *SQLiteStore) List(ctx context.Context, f ListFilter) ([]Request, error) {
	var where []string
	var args []any
	now := unixNano(f.Now)
	switch f.State {
	case "":
	case StatePending:
		where = append(where, "state = 'pending' AND expires_at > ?")
		args = append(args, now)
	case StateApproved:
		where = append(where, "state = 'approved' AND expires_at > ?")
		args = append(args, now)
	case StateExpired:
		where = append(where, `(state = 'expired' OR
			(state IN ('pending', 'approved') AND expires_at <= ?))`)
		args = append(args, now)
	default:
		where = append(where, "state = ?")
		args = append(args, string(f.State))
	}
	if f.Subject != "" {
		where = append(where, "caller_subject = ?")
		args = append(args, f.Subject)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}

	query := `SELECT ` + requestColumns + ` FROM approval_requests`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list approval requests: %w", err)
	}
	defer rows.Close()

	var out []Request
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list approval requests: %w", err)
	}
	for i := range out {
		if out[i].Decisions, err = decisions(ctx, s.db, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Due returns the ids of live requests at or past their deadline.
func (s *SQLiteStore) Due(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM approval_requests
		WHERE state IN ('pending', 'approved') AND expires_at <= ?
		ORDER BY expires_at`, unixNano(now))
	if err != nil {
		return nil, fmt.Errorf("find due approval requests: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find due approval requests: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find due approval requests: %w", err)
	}
	return ids, nil
}

// Update runs fn on the stored request inside one transaction.
func (s *SQLiteStore) Update(ctx context.Context, id string,
	fn func(r *Request) (*Decision, error)) (*Request, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin approval update: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	row := tx.QueryRowContext(ctx, `SELECT `+requestColumns+`
		FROM approval_requests WHERE id = ?`, id)
	r, err := s.complete(ctx, tx, row)
	if err != nil {
		return nil, err
	}
	loaded := r.clone()
	d, err := fn(r)
	if err != nil {
		return loaded, err
	}

	if d != nil {
		_, err := tx.ExecContext(ctx, `INSERT INTO approval_decisions (
			request_id, approver, slack_user, subject, issuer, approve, via,
			decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			id, d.Approver, d.SlackUser, d.Subject, d.Issuer,
			boolInt(d.Approve), d.Via, unixNano(d.At))
		if err != nil {
			return nil, fmt.Errorf("insert approval decision: %w", err)
		}
		r.Decisions = append(r.Decisions, *d)
	}

	res, err := tx.ExecContext(ctx, `UPDATE approval_requests SET state = ?,
		expires_at = ?, acknowledged = ?, decided_at = ?, executed_at = ?
		WHERE id = ? AND state = ?`,
		string(r.State), unixNano(r.ExpiresAt), boolInt(r.Acknowledged),
		unixNano(r.DecidedAt), unixNano(r.ExecutedAt), id, string(loaded.State))
	if err != nil {
		return nil, fmt.Errorf("update approval request: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return nil, fmt.Errorf("update approval request %s: changed underneath", id)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit approval update: %w", err)
	}
	return r, nil
}

// SetMessage records the Slack message of a request.
func (s *SQLiteStore) SetMessage(ctx context.Context, id string, m Message) error {
	_, err := s.db.ExecContext(ctx, `UPDATE approval_requests
		SET slack_channel = ?, slack_ts = ? WHERE id = ?`, m.Channel, m.TS, id)
	if err != nil {
		return fmt.Errorf("record slack message: %w", err)
	}
	return nil
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// complete scans one request row and loads its decisions.
func (s *SQLiteStore) complete(ctx context.Context, q querier, row *sql.Row) (*Request, error) {
	r, err := scanRequest(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if r.Decisions, err = decisions(ctx, q, r.ID); err != nil {
		return nil, err
	}
	return r, nil
}

// scanner is what both *sql.Row and *sql.Rows offer.
type scanner interface {
	Scan(dest ...any) error
}

// scanRequest reads the columns of requestColumns.
func scanRequest(sc scanner) (*Request, error) {
	var (
		r                                Request
		created, expires, decided, execd int64
		caller, args, reasons, approvers string
		state                            string
		ack                              int
	)
	err := sc.Scan(&r.ID, &created, &expires, &caller, &r.Tool, &r.Target,
		&args, &r.Digest, &r.Display, &reasons, &approvers, &r.Required,
		&r.Channel, &state, &ack, &decided, &execd, &r.Message.Channel,
		&r.Message.TS)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read approval request: %w", err)
	}

	if err := json.Unmarshal([]byte(caller), &r.Caller); err != nil {
		return nil, fmt.Errorf("decode caller of %s: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(reasons), &r.Reasons); err != nil {
		return nil, fmt.Errorf("decode reasons of %s: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(approvers), &r.Approvers); err != nil {
		return nil, fmt.Errorf("decode approvers of %s: %w", r.ID, err)
	}
	r.Arguments = json.RawMessage(args)
	r.State = State(state)
	r.Acknowledged = ack != 0
	r.CreatedAt = fromUnixNano(created)
	r.ExpiresAt = fromUnixNano(expires)
	r.DecidedAt = fromUnixNano(decided)
	r.ExecutedAt = fromUnixNano(execd)
	return &r, nil
}

// decisions loads the decisions of one request in the order they were made.
func decisions(ctx context.Context, q querier, id string) ([]Decision, error) {
	rows, err := q.QueryContext(ctx, `SELECT approver, slack_user, subject,
		issuer, approve, via, decided_at FROM approval_decisions
		WHERE request_id = ? ORDER BY decided_at, rowid`, id)
	if err != nil {
		return nil, fmt.Errorf("read decisions of %s: %w", id, err)
	}
	defer rows.Close()

	var out []Decision
	for rows.Next() {
		var d Decision
		var approve int
		var at int64
		err := rows.Scan(&d.Approver, &d.SlackUser, &d.Subject, &d.Issuer,
			&approve, &d.Via, &at)
		if err != nil {
			return nil, fmt.Errorf("read decisions of %s: %w", id, err)
		}
		d.Approve = approve != 0
		d.At = fromUnixNano(at)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read decisions of %s: %w", id, err)
	}
	return out, nil
}

// unixNano stores a time; the zero time is stored as 0.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano reverses unixNano, in UTC.
func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
