package recorder

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// The transcript can live in PostgreSQL instead of SQLite, shared by
// several guard replicas. The records, their text and their hashes are
// the same in both stores, so Verify, export and replay give the same
// answers. What differs is how writers are kept in order: SQLite
// serialises immediate transactions on its own; in PostgreSQL every
// transaction that appends to the chain first takes a transaction-level
// advisory lock (chainLock), then reads the head and inserts its batch,
// and the lock goes with the commit. Writers on every replica therefore
// queue for the head one at a time, and group commit keeps that queue
// short. SERIALIZABLE isolation was the other way: there every two
// concurrent batches conflict on the head, so most commits would fail
// and be retried under load, where the lock makes them wait once.

// Advisory lock keys. schemaLock is shared with the approvals store, so
// that the two never migrate at the same moment.
const (
	schemaLock int64 = 0x6d63706775617264 // "mcpguard"
	chainLock  int64 = 0x6d63672d63686169 // "mcg-chai"
)

// postgresMigrations are applied in order; the index of the last one
// applied is kept in mcp_guard_schema. Never edit one that has shipped:
// append a new step. Text columns compare in the C collation so that
// prefix ranges (FindSession) mean the same as in SQLite.
var postgresMigrations = []string{
	`CREATE TABLE records (
		seq        BIGINT PRIMARY KEY,
		at         TEXT NOT NULL,
		kind       TEXT COLLATE "C" NOT NULL,
		session_id TEXT COLLATE "C" NOT NULL DEFAULT '',
		call_id    TEXT COLLATE "C" NOT NULL DEFAULT '',
		body       TEXT NOT NULL,
		prev_hash  TEXT NOT NULL,
		hash       TEXT NOT NULL
	);
	CREATE INDEX records_call ON records (call_id) WHERE call_id != '';
	CREATE INDEX records_session ON records (session_id, seq);
	CREATE INDEX records_kind ON records (kind, seq)`,
}

// OpenPostgres opens the transcript kept in the PostgreSQL database of
// pool, creating or migrating its table first under an advisory lock,
// so that replicas starting together are safe. Several recorders, in one
// process or many, may append to the same transcript at once. Like Open
// it refuses a transcript whose unsigned tail does not verify.
// Options.Synchronous does not apply. Close closes the recorder's own
// handle, not pool.
func OpenPostgres(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Recorder, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	db := sql.OpenDB(pgConnector{inner: stdlib.GetPoolConnector(pool)})
	db.SetMaxIdleConns(0) // pool keeps the idle connections
	if err := migratePostgres(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return start(ctx, db, opts)
}

// OpenPostgresDB opens the PostgreSQL transcript at dsn for the audit
// commands: Verify, Calls, Records and the other readers take it as they
// take a SQLite one. With readOnly every transaction is read-only;
// Prune needs it writable. It fails when the database holds no
// transcript. Errors never quote dsn.
func OpenPostgresDB(ctx context.Context, dsn string, readOnly bool) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// The parse error can quote the DSN, password included.
		return nil, errors.New("recorder: the PostgreSQL DSN does not parse")
	}
	cfg.RuntimeParams["application_name"] = "mcp-guard audit"
	if readOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	db := sql.OpenDB(pgConnector{inner: stdlib.GetConnector(*cfg)})
	db.SetMaxOpenConns(4)

	var found bool
	err = db.QueryRowContext(ctx, `SELECT to_regclass('records') IS NOT NULL`).Scan(&found)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("recorder: open PostgreSQL transcript: %w", err)
	}
	if !found {
		db.Close()
		return nil, errors.New("recorder: the PostgreSQL database holds no transcript " +
			"(no records table)")
	}
	return db, nil
}

// migratePostgres brings the records table up to date.
func migratePostgres(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("recorder: begin migration: %w", err)
	}
	defer tx.Rollback()

	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, schemaLock); err != nil {
		return fmt.Errorf("recorder: lock migration: %w", err)
	}
	_, err = tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS mcp_guard_schema (
		component TEXT PRIMARY KEY, version INTEGER NOT NULL)`)
	if err != nil {
		return fmt.Errorf("recorder: create schema table: %w", err)
	}
	var done int
	err = tx.QueryRowContext(ctx, `SELECT version FROM mcp_guard_schema
		WHERE component = 'recorder'`).Scan(&done)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("recorder: read schema version: %w", err)
	}
	if done > len(postgresMigrations) {
		return fmt.Errorf("recorder: transcript schema version %d is newer than "+
			"this guard knows (%d)", done, len(postgresMigrations))
	}
	for i := done; i < len(postgresMigrations); i++ {
		if _, err := tx.ExecContext(ctx, postgresMigrations[i]); err != nil {
			return fmt.Errorf("recorder: migrate transcript to %d: %w", i+1, err)
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO mcp_guard_schema (component, version)
		VALUES ('recorder', ?) ON CONFLICT (component)
		DO UPDATE SET version = excluded.version`, len(postgresMigrations))
	if err != nil {
		return fmt.Errorf("recorder: record schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("recorder: commit migration: %w", err)
	}
	return nil
}

// lockChain makes tx, on db, the only writer of the chain until it ends.
// SQLite's immediate transactions already are; on PostgreSQL it waits
// for the chain's advisory lock, which the commit or rollback releases.
func lockChain(ctx context.Context, db *sql.DB, tx *sql.Tx) error {
	if !isPostgres(db) {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, chainLock); err != nil {
		return fmt.Errorf("recorder: lock the chain: %w", err)
	}
	return nil
}
