package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mcp-guard/mcp-guard/identity"
)

// NotifyChannel is the PostgreSQL channel on which every change of a
// request is announced, with the request id as payload.
const NotifyChannel = "mcp_guard_approvals"

// migrateLock is the advisory lock key held while mcp-guard's tables are
// migrated (the recorder holds the same key), so that replicas starting
// together migrate one at a time.
const migrateLock int64 = 0x6d63706775617264 // "mcpguard"

// postgresMigrations are applied in order; the index of the last one
// applied is kept in mcp_guard_schema. Never edit one that has shipped:
// append a new step. Times are Unix nanoseconds in UTC, as in SQLite.
var postgresMigrations = []string{
	`CREATE TABLE approval_requests (
		seq            BIGSERIAL UNIQUE,
		id             TEXT PRIMARY KEY,
		created_at     BIGINT NOT NULL,
		expires_at     BIGINT NOT NULL,
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
		acknowledged   BOOLEAN NOT NULL DEFAULT false,
		decided_at     BIGINT NOT NULL DEFAULT 0,
		executed_at    BIGINT NOT NULL DEFAULT 0,
		slack_channel  TEXT NOT NULL DEFAULT '',
		slack_ts       TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX approval_requests_call
		ON approval_requests (caller_subject, caller_issuer, digest, created_at);
	CREATE INDEX approval_requests_state
		ON approval_requests (state, expires_at);
	-- One live request per caller and call, across every replica: the
	-- second of two racing Opens fails here and resumes the first.
	CREATE UNIQUE INDEX approval_requests_live
		ON approval_requests (caller_subject, caller_issuer, digest)
		WHERE state IN ('pending', 'approved');
	CREATE TABLE approval_decisions (
		seq        BIGSERIAL UNIQUE,
		request_id TEXT NOT NULL REFERENCES approval_requests (id),
		approver   TEXT NOT NULL,
		slack_user TEXT NOT NULL,
		subject    TEXT NOT NULL,
		issuer     TEXT NOT NULL,
		approve    BOOLEAN NOT NULL,
		via        TEXT NOT NULL,
		decided_at BIGINT NOT NULL,
		PRIMARY KEY (request_id, approver)
	)`,
}

// liveIndex is the unique index a duplicate live request violates.
const liveIndex = "approval_requests_live"

// ErrDuplicate is what Insert returns (wrapped) when the store already
// holds a pending or approved request of the same caller for the same
// call. Open then reads that request and resumes it.
var ErrDuplicate = errors.New("approvals: a live request for this call exists")

// Watcher is a Store that can announce changes made by other processes.
// Run watches such a store and wakes the matching Wait at once, instead
// of at its next poll.
type Watcher interface {
	// Watch calls changed with the id of every request changed by any
	// process, until ctx ends. It may miss changes while it reconnects;
	// Wait's polling covers them.
	Watch(ctx context.Context, changed func(id string)) error
}

// PostgresStore keeps requests in a PostgreSQL database that several
// guard replicas share. Update locks the row (SELECT ... FOR UPDATE) and
// every committed change is announced on NotifyChannel.
type PostgresStore struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	// retry is how long Watch waits before reconnecting.
	retry time.Duration
	// onListen, if set, is called each time Watch starts listening; tests
	// use it to know a notification cannot be missed any more.
	onListen func()
}

var (
	_ Store   = (*PostgresStore)(nil)
	_ Watcher = (*PostgresStore)(nil)
)

// NewPostgresStore returns a store on pool. Call Migrate before use. The
// logger (nil discards) hears about lost notification connections.
func NewPostgresStore(pool *pgxpool.Pool, log *slog.Logger) *PostgresStore {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PostgresStore{pool: pool, log: log, retry: time.Second}
}

// Migrate brings the tables up to date under an advisory lock, so that
// replicas starting at once do not trip over each other.
func (s *PostgresStore) Migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin approval migration: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit

	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
		return fmt.Errorf("lock approval migration: %w", err)
	}
	_, err = tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS mcp_guard_schema (
		component TEXT PRIMARY KEY, version INTEGER NOT NULL)`)
	if err != nil {
		return fmt.Errorf("create schema table: %w", err)
	}
	var done int
	err = tx.QueryRow(ctx, `SELECT version FROM mcp_guard_schema
		WHERE component = 'approvals'`).Scan(&done)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("read approval schema version: %w", err)
	}
	if done > len(postgresMigrations) {
		return fmt.Errorf("approval schema version %d is newer than this "+
			"guard knows (%d)", done, len(postgresMigrations))
	}
	for i := done; i < len(postgresMigrations); i++ {
		if _, err := tx.Exec(ctx, postgresMigrations[i]); err != nil {
			return fmt.Errorf("migrate approval tables to %d: %w", i+1, err)
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO mcp_guard_schema (component, version)
		VALUES ('approvals', $1) ON CONFLICT (component)
		DO UPDATE SET version = excluded.version`, len(postgresMigrations))
	if err != nil {
		return fmt.Errorf("record approval schema version: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit approval migration: %w", err)
	}
	return nil
}

// Insert stores a new request without decisions. It fails with
// ErrDuplicate when a live request of the caller for the call exists.
func (s *PostgresStore) Insert(ctx context.Context, r *Request) error {
	caller, reasons, approvers, err := encodeRequest(r)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO approval_requests (
		id, created_at, expires_at, caller_subject, caller_issuer, caller,
		tool, target, arguments, digest, display, reasons, approvers,
		required, channel, state)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
		$15, $16)`,
		r.ID, unixNano(r.CreatedAt), unixNano(r.ExpiresAt),
		r.Caller.Subject, r.Caller.Issuer, caller, r.Tool, r.Target,
		string(r.Arguments), r.Digest, r.Display, reasons, approvers,
		r.Required, r.Channel, string(r.State))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == liveIndex {
		return fmt.Errorf("insert approval request: %w", ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("insert approval request: %w", err)
	}
	return nil
}

// encodeRequest returns the JSON columns of r.
func encodeRequest(r *Request) (caller, reasons, approvers string, err error) {
	c, err := json.Marshal(r.Caller)
	if err != nil {
		return "", "", "", fmt.Errorf("encode caller: %w", err)
	}
	rs, err := json.Marshal(r.Reasons)
	if err != nil {
		return "", "", "", fmt.Errorf("encode reasons: %w", err)
	}
	a, err := json.Marshal(r.Approvers)
	if err != nil {
		return "", "", "", fmt.Errorf("encode approvers: %w", err)
	}
	return string(c), string(rs), string(a), nil
}

// pgQuerier is what the pool and a transaction share.
type pgQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Get returns a request with its decisions.
func (s *PostgresStore) Get(ctx context.Context, id string) (*Request, error) {
	return s.load(ctx, s.pool, `SELECT `+requestColumns+`
		FROM approval_requests WHERE id = $1`, id)
}

// Latest returns the newest request of the caller with this digest.
func (s *PostgresStore) Latest(ctx context.Context, c identity.Caller,
	digest string) (*Request, error) {
	return s.load(ctx, s.pool, `SELECT `+requestColumns+`
		FROM approval_requests
		WHERE caller_subject = $1 AND caller_issuer = $2 AND digest = $3
		ORDER BY created_at DESC, seq DESC LIMIT 1`,
		c.Subject, c.Issuer, digest)
}

// load reads one request row and its decisions.
func (s *PostgresStore) load(ctx context.Context, q pgQuerier, query string,
	args ...any) (*Request, error) {
	r, err := scanPGRequest(q.QueryRow(ctx, query, args...))
	if err != nil {
		return nil, err
	}
	if r.Decisions, err = pgDecisions(ctx, q, r.ID); err != nil {
		return nil, err
	}
	return r, nil
}

// List returns requests matching f, newest first.
func (s *PostgresStore) List(ctx context.Context, f ListFilter) ([]Request, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	now := unixNano(f.Now)
	switch f.State {
	case "":
	case StatePending, StateApproved:
		where = append(where, "state = "+arg(string(f.State))+
			" AND expires_at > "+arg(now))
	case StateExpired:
		where = append(where, "(state = 'expired' OR (state IN "+
			"('pending', 'approved') AND expires_at <= "+arg(now)+"))")
	default:
		where = append(where, "state = "+arg(string(f.State)))
	}
	if f.Subject != "" {
		where = append(where, "caller_subject = "+arg(f.Subject))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}

	query := `SELECT ` + requestColumns + ` FROM approval_requests`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, seq DESC LIMIT " + arg(limit)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list approval requests: %w", err)
	}
	var out []Request
	for rows.Next() {
		r, err := scanPGRequest(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, *r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list approval requests: %w", err)
	}
	for i := range out {
		if out[i].Decisions, err = pgDecisions(ctx, s.pool, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Due returns the ids of live requests at or past their deadline.
func (s *PostgresStore) Due(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM approval_requests
		WHERE state IN ('pending', 'approved') AND expires_at <= $1
		ORDER BY expires_at`, unixNano(now))
	if err != nil {
		return nil, fmt.Errorf("find due approval requests: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("find due approval requests: %w", err)
	}
	return ids, nil
}

// Update runs fn on the stored request, locked FOR UPDATE, inside one
// transaction, and announces the change on NotifyChannel when it commits.
func (s *PostgresStore) Update(ctx context.Context, id string,
	fn func(r *Request) (*Decision, error)) (*Request, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin approval update: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit

	r, err := s.load(ctx, tx, `SELECT `+requestColumns+`
		FROM approval_requests WHERE id = $1 FOR UPDATE`, id)
	if err != nil {
		return nil, err
	}
	loaded := r.clone()
	d, err := fn(r)
	if err != nil {
		return loaded, err
	}

	if d != nil {
		_, err := tx.Exec(ctx, `INSERT INTO approval_decisions (
			request_id, approver, slack_user, subject, issuer, approve, via,
			decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			id, d.Approver, d.SlackUser, d.Subject, d.Issuer, d.Approve,
			d.Via, unixNano(d.At))
		if err != nil {
			return nil, fmt.Errorf("insert approval decision: %w", err)
		}
		r.Decisions = append(r.Decisions, *d)
	}

	tag, err := tx.Exec(ctx, `UPDATE approval_requests SET state = $1,
		expires_at = $2, acknowledged = $3, decided_at = $4, executed_at = $5
		WHERE id = $6 AND state = $7`,
		string(r.State), unixNano(r.ExpiresAt), r.Acknowledged,
		unixNano(r.DecidedAt), unixNano(r.ExecutedAt), id, string(loaded.State))
	if err != nil {
		return nil, fmt.Errorf("update approval request: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return nil, fmt.Errorf("update approval request %s: changed underneath", id)
	}
	// Delivered to listeners only if, and once, the transaction commits.
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, id); err != nil {
		return nil, fmt.Errorf("announce approval update: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit approval update: %w", err)
	}
	return r, nil
}

// SetMessage records the Slack message of a request.
func (s *PostgresStore) SetMessage(ctx context.Context, id string, m Message) error {
	_, err := s.pool.Exec(ctx, `UPDATE approval_requests
		SET slack_channel = $1, slack_ts = $2 WHERE id = $3`, m.Channel, m.TS, id)
	if err != nil {
		return fmt.Errorf("record slack message: %w", err)
	}
	return nil
}

// Watch listens on NotifyChannel on a connection of its own and calls
// changed for each announced id until ctx ends, reconnecting after a
// lost connection. It returns nil when ctx ends.
func (s *PostgresStore) Watch(ctx context.Context, changed func(id string)) error {
	for ctx.Err() == nil {
		err := s.listen(ctx, changed)
		if ctx.Err() != nil {
			break
		}
		s.log.Warn("approval notifications interrupted; polling until reconnected",
			keyError, err)
		select {
		case <-ctx.Done():
		case <-time.After(s.retry):
		}
	}
	return nil
}

// listen holds one LISTEN connection until it fails or ctx ends.
func (s *PostgresStore) listen(ctx context.Context, changed func(id string)) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connect for notifications: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return fmt.Errorf("listen for approval changes: %w", err)
	}
	if s.onListen != nil {
		s.onListen()
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for approval changes: %w", err)
		}
		changed(n.Payload)
	}
}

// scanPGRequest reads the columns of requestColumns.
func scanPGRequest(row pgx.Row) (*Request, error) {
	var (
		r                                Request
		created, expires, decided, execd int64
		caller, args, reasons, approvers string
		state                            string
	)
	err := row.Scan(&r.ID, &created, &expires, &caller, &r.Tool, &r.Target,
		&args, &r.Digest, &r.Display, &reasons, &approvers, &r.Required,
		&r.Channel, &state, &r.Acknowledged, &decided, &execd,
		&r.Message.Channel, &r.Message.TS)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
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
	r.CreatedAt = fromUnixNano(created)
	r.ExpiresAt = fromUnixNano(expires)
	r.DecidedAt = fromUnixNano(decided)
	r.ExecutedAt = fromUnixNano(execd)
	return &r, nil
}

// pgDecisions loads the decisions of one request in the order they were
// made.
func pgDecisions(ctx context.Context, q pgQuerier, id string) ([]Decision, error) {
	rows, err := q.Query(ctx, `SELECT approver, slack_user, subject, issuer,
		approve, via, decided_at FROM approval_decisions
		WHERE request_id = $1 ORDER BY decided_at, seq`, id)
	if err != nil {
		return nil, fmt.Errorf("read decisions of %s: %w", id, err)
	}
	defer rows.Close()

	var out []Decision
	for rows.Next() {
		var d Decision
		var at int64
		err := rows.Scan(&d.Approver, &d.SlackUser, &d.Subject, &d.Issuer,
			&d.Approve, &d.Via, &at)
		if err != nil {
			return nil, fmt.Errorf("read decisions of %s: %w", id, err)
		}
		d.At = fromUnixNano(at)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read decisions of %s: %w", id, err)
	}
	return out, nil
}
