// Package recorder keeps the transcript of every session in SQLite: an
// append-only log of records, each chained to the one before it by a hash,
// written with group commit so that many concurrent calls share a commit.
package recorder

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Record kinds.
const (
	KindSessionStart   = "session_start"
	KindSessionEnd     = "session_end"
	KindCallIntent     = "call_intent"
	KindCallCompletion = "call_completion"
	KindApproval       = "approval"
	KindCheckpoint     = "checkpoint"
)

// GenesisHash is the previous hash of the first record.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Record is one entry of the transcript.
type Record struct {
	Seq       int64           `json:"seq"`
	At        time.Time       `json:"at"`
	Kind      string          `json:"kind"`
	SessionID string          `json:"session_id,omitempty"`
	CallID    string          `json:"call_id,omitempty"`
	Body      json.RawMessage `json:"body"`
	PrevHash  string          `json:"prev_hash"`
	Hash      string          `json:"hash"`
}

// Options configure a Recorder.
type Options struct {
	// Synchronous is "normal" or "full" (SQLite's synchronous pragma).
	Synchronous string
	// MaxBatch caps how many records share one commit (default 256).
	MaxBatch int
	Logger   *slog.Logger
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// Recorder appends records to the transcript database.
type Recorder struct {
	db     *sql.DB
	opts   Options
	queue  chan *pending
	done   chan struct{}
	closed chan struct{}
	once   sync.Once
	logger *slog.Logger
}

type pending struct {
	rec Record
	err chan error
}

const schema = `
CREATE TABLE IF NOT EXISTS records (
	seq        INTEGER PRIMARY KEY,
	at         TEXT NOT NULL,
	kind       TEXT NOT NULL,
	session_id TEXT NOT NULL DEFAULT '',
	call_id    TEXT NOT NULL DEFAULT '',
	body       TEXT NOT NULL,
	prev_hash  TEXT NOT NULL,
	hash       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_call ON records(call_id) WHERE call_id != '';
CREATE INDEX IF NOT EXISTS records_session ON records(session_id, seq);
CREATE INDEX IF NOT EXISTS records_kind ON records(kind, seq);
`

// Open opens (creating if needed) the transcript database at path.
func Open(path string, opts Options) (*Recorder, error) {
	if opts.Synchronous == "" {
		opts.Synchronous = "normal"
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("recorder: create directory: %w", err)
	}
	db, err := OpenDB(path, opts.Synchronous)
	if err != nil {
		return nil, err
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("recorder: create schema: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("recorder: restrict database permissions: %w", err)
	}
	r := &Recorder{
		db:     db,
		opts:   opts,
		queue:  make(chan *pending, 4096),
		done:   make(chan struct{}),
		closed: make(chan struct{}),
		logger: opts.Logger,
	}
	go r.writer()
	return r, nil
}

// OpenDB opens a SQLite database with the pragmas the guard relies on:
// WAL, a busy timeout, and the given synchronous level.
func OpenDB(path, synchronous string) (*sql.DB, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(" + synchronous + ")&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("recorder: open %s: %w", path, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("recorder: open %s: %w", path, err)
	}
	return db, nil
}

// DB returns the underlying database, shared with the approvals store.
func (r *Recorder) DB() *sql.DB { return r.db }

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("recorder: closed")

// Append adds a record with the given kind and body and returns once it is
// committed. The body is stored as JSON.
func (r *Recorder) Append(ctx context.Context, kind, sessionID, callID string, body any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("recorder: encode %s: %w", kind, err)
	}
	p := &pending{
		rec: Record{Kind: kind, SessionID: sessionID, CallID: callID, Body: raw},
		err: make(chan error, 1),
	}
	select {
	case <-r.done:
		return ErrClosed
	default:
	}
	select {
	case r.queue <- p:
	case <-r.done:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("recorder: queue %s: %w", kind, ctx.Err())
	}
	// Once queued the record will be written; wait for the commit even if
	// ctx ends, so that the caller never acts on an unrecorded call.
	select {
	case err := <-p.err:
		return err
	case <-r.closed:
		select {
		case err := <-p.err:
			return err
		default:
			return ErrClosed
		}
	}
}

// writer drains the queue, committing everything waiting in one
// transaction: the group commit.
func (r *Recorder) writer() {
	defer close(r.closed)
	for {
		var batch []*pending
		select {
		case p := <-r.queue:
			batch = append(batch, p)
		case <-r.done:
			r.drain()
			return
		}
	fill:
		for len(batch) < r.opts.MaxBatch {
			select {
			case p := <-r.queue:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		r.commit(batch)
	}
}

func (r *Recorder) drain() {
	for {
		var batch []*pending
		for len(batch) < r.opts.MaxBatch {
			select {
			case p := <-r.queue:
				batch = append(batch, p)
				continue
			default:
			}
			break
		}
		if len(batch) == 0 {
			return
		}
		r.commit(batch)
	}
}

func (r *Recorder) commit(batch []*pending) {
	err := r.commitBatch(batch)
	if err != nil {
		r.logger.Error("recorder commit failed", "records", len(batch), "error", err)
	}
	for _, p := range batch {
		p.err <- err
	}
}

func (r *Recorder) commitBatch(batch []*pending) error {
	ctx := context.Background()
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("recorder: begin: %w", err)
	}
	defer tx.Rollback()

	var seq int64
	prev := GenesisHash
	row := tx.QueryRowContext(ctx, `SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1`)
	if err := row.Scan(&seq, &prev); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("recorder: read chain head: %w", err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO records
		(seq, at, kind, session_id, call_id, body, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("recorder: prepare insert: %w", err)
	}
	defer stmt.Close()
	now := r.opts.Now().UTC()
	for _, p := range batch {
		seq++
		rec := &p.rec
		rec.Seq, rec.At, rec.PrevHash = seq, now, prev
		rec.Hash = Hash(*rec)
		prev = rec.Hash
		_, err := stmt.ExecContext(ctx, rec.Seq, rec.At.Format(time.RFC3339Nano),
			rec.Kind, rec.SessionID, rec.CallID, string(rec.Body), rec.PrevHash, rec.Hash)
		if err != nil {
			return fmt.Errorf("recorder: insert record %d: %w", seq, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("recorder: commit: %w", err)
	}
	return nil
}

// Hash computes a record's chain hash over its previous hash and content.
// The time is hashed in the text form that is stored.
func Hash(rec Record) string {
	h := sha256.New()
	fmt.Fprintf(h, "mcp-guard/record/v1\n%d\n%s\n%s\n%s\n%s\n%s\n",
		rec.Seq, rec.At.UTC().Format(time.RFC3339Nano), rec.Kind,
		rec.SessionID, rec.CallID, rec.PrevHash)
	h.Write(rec.Body)
	return hex.EncodeToString(h.Sum(nil))
}

// Close commits what is queued and closes the database.
func (r *Recorder) Close() error {
	r.once.Do(func() { close(r.done) })
	<-r.closed
	return r.db.Close()
}
