// Package recorder keeps the transcript of every session in SQLite: an
// append-only log of records, each chained to the one before it by a hash,
// written with group commit so that many concurrent calls share a commit.
// On SQLite a commit is an append to a journal file beside the database,
// whose records a goroutine moves into the database, where they are
// chained, a moment later. Every so many records, and on Close, an
// ed25519-signed checkpoint vouches for the chain up to it. Verify checks
// a transcript, Prune removes old records without breaking the chain, and
// the readers (Calls, Sessions, Records) stream it back for the audit
// commands, after Recover has moved in what a stopped guard left in its
// journal.
package recorder

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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
	// KindPrune records a retention prune; it anchors the chain at the
	// first record kept (see Prune).
	KindPrune = "prune"
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

// DefaultCheckpointEvery is how many records pass between two signed
// checkpoints when Options.CheckpointEvery is zero.
const DefaultCheckpointEvery = 1000

// Options configure a Recorder.
type Options struct {
	// Synchronous is "normal" or "full" (SQLite's synchronous pragma).
	Synchronous string
	// MaxBatch caps how many records share one commit (default 256).
	MaxBatch int
	// SigningKey signs checkpoints; nil writes no checkpoints.
	SigningKey ed25519.PrivateKey
	// CheckpointEvery is how many records may follow a checkpoint before
	// the next one is written, in the same commit as the batch that
	// reaches it (default DefaultCheckpointEvery). A checkpoint is also
	// written on Close.
	CheckpointEvery int
	Logger          *slog.Logger
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// OnCommit, if set, hears about every commit: how many records it
	// held, how long it took and whether it failed. It runs in the
	// goroutine of the caller leading the commit, before any of the
	// commit's callers returns, and must not block.
	OnCommit func(records int, took time.Duration, err error)
}

// setDefaults fills in the defaults of the options both stores share.
func (o *Options) setDefaults() error {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = DefaultCheckpointEvery
	}
	if o.SigningKey != nil && len(o.SigningKey) != ed25519.PrivateKeySize {
		return errors.New("recorder: signing key is not an ed25519 private key")
	}
	return nil
}

// Recorder appends records to the transcript database.
//
// Appends share commits without a writer goroutine: the first caller to
// find nobody committing becomes the leader and commits, in its own
// goroutine, every record waiting (up to MaxBatch), its own first; the
// callers whose records it held wait for its result. Records that
// arrived meanwhile wait for the next leader, the oldest of them, whom
// the leader wakes as it leaves. One caller alone therefore commits with
// no hand-off at all, and many callers still share each commit.
//
// On SQLite the commit is a write to the journal (see journal.go), and
// the ingester moves the records into the database; Sync waits for it.
// When another process holds the journal (a serving guard, while the
// approvals command records a decision), the recorder commits straight
// to the database, and tries now and then to take the journal over.
type Recorder struct {
	db     *sql.DB
	path   string // of the SQLite database; empty on PostgreSQL
	opts   Options
	logger *slog.Logger
	store  committer

	// mu guards the fields below it.
	mu sync.Mutex
	// queue holds the records waiting for a commit, oldest first.
	queue []*pending
	// leading is set while a caller commits; the others queue behind it.
	leading bool
	closed  bool
	// idle is signalled when leading ends, for Close.
	idle sync.Cond
	// journal and ing are set, once, when the recorder holds the journal;
	// nil, it commits straight to the database.
	journal *journal
	ing     *ingester

	// frames is the leader's buffer for the frames of a commit.
	frames []byte
	// nextTry is when the leader of a recorder without the journal tries
	// to take it again.
	nextTry time.Time

	// lastCheckpoint is the seq of the latest checkpoint; only the leader
	// touches it after Open. Checkpoints other processes write (a prune)
	// are not seen, which only brings the next one forward. On
	// PostgreSQL, where other replicas write checkpoints all the time, it
	// is read again in each commit.
	lastCheckpoint int64

	closeOnce sync.Once
	closeErr  error
}

// pending is one record waiting for its commit.
type pending struct {
	rec Record
	err error
	// wake tells a waiting caller true once its record's commit ended
	// (err says how), or false when it must lead the next commit.
	wake chan bool
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
` + dropRecordIndexes + keysSchema + journalStateSchema

// Open opens (creating if needed) the transcript database at path and
// takes its journal (JournalPath), moving into the database first the
// records a recorder that did not close left there. When another process
// holds the journal, the recorder commits straight to the database.
func Open(path string, opts Options) (*Recorder, error) {
	return open(path, opts, nil)
}

// open is Open, with the journal's file already open and locked when
// journal is not nil; it is closed when open fails.
func open(path string, opts Options, journal *os.File) (_ *Recorder, err error) {
	defer func() {
		if err != nil && journal != nil {
			journal.Close()
		}
	}()
	if opts.Synchronous == "" {
		opts.Synchronous = "normal"
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("recorder: create directory: %w", err)
	}
	// Create the file 0600 before SQLite does: its -wal and -shm files
	// take the database file's mode when they are created.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("recorder: create database: %w", err)
	}
	f.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("recorder: restrict database permissions: %w", err)
	}
	db, err := OpenDB(path, opts.Synchronous)
	if err != nil {
		return nil, err
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("recorder: create schema: %w", err)
	}
	if err := addJournalColumns(context.Background(), db); err != nil {
		db.Close()
		return nil, err
	}
	// Builds record_keys whole for a transcript written before it.
	if err := catchUpKeys(context.Background(), db, 1<<63-1); err != nil {
		db.Close()
		return nil, err
	}
	r, err := start(context.Background(), db, opts)
	if err != nil {
		return nil, err
	}
	r.path = path
	if err := r.startJournal(path, journal); err != nil {
		journal = nil // startJournal closed it
		r.store.close()
		r.db.Close()
		return nil, err
	}
	return r, nil
}

// start checks the transcript in db and readies the committer on it; it
// closes db when it fails.
func start(ctx context.Context, db *sql.DB, opts Options) (*Recorder, error) {
	// Never extend or sign a chain whose unsigned tail is already broken:
	// a checkpoint over it would vouch for whatever was done to it.
	if err := checkTail(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	lastCP, err := lastCheckpointSeq(ctx, db, isPostgres(db))
	if err != nil {
		db.Close()
		return nil, err
	}
	var store committer
	if isPostgres(db) {
		store, err = newTxCommitter(ctx, db)
	} else {
		store, err = newLiteWriter(ctx, db, opts.Logger)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	r := &Recorder{
		db:     db,
		opts:   opts,
		logger: opts.Logger,
		store:  store,

		lastCheckpoint: lastCP,
	}
	r.idle.L = &r.mu
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
// committed. The body is stored as JSON; a json.RawMessage is checked and
// stored as it is when compact, so that a caller that encodes its body
// itself saves a second encoding.
func (r *Recorder) Append(ctx context.Context, kind, sessionID, callID string, body any) error {
	// A line break in these would make the hashed text ambiguous.
	if strings.ContainsAny(kind, "\r\n") || strings.ContainsAny(sessionID, "\r\n") ||
		strings.ContainsAny(callID, "\r\n") {
		return fmt.Errorf("recorder: %q: kind, session and call ids must be single-line", kind)
	}
	raw, err := encodeBody(body)
	if err != nil {
		return fmt.Errorf("recorder: encode %s: %w", kind, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("recorder: queue %s: %w", kind, err)
	}
	p := &pending{
		rec:  Record{Kind: kind, SessionID: sessionID, CallID: callID, Body: raw},
		wake: make(chan bool, 1),
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.queue = append(r.queue, p)
	lead := !r.leading
	r.leading = true
	r.mu.Unlock()

	// Once queued the record will be written; wait for the commit even if
	// ctx ends, so that the caller never acts on an unrecorded call.
	if !lead && <-p.wake {
		return p.err
	}
	r.lead()
	return p.err
}

// Encoded is a record body its caller has already encoded as compact JSON
// with encoding/json (json.Marshal, or pieces of its output joined by the
// JSON grammar). Append stores it as it is, without the check it gives a
// json.RawMessage: for a large tool result that check cost as much as the
// rest of the record. Anything else must not be passed as Encoded.
type Encoded []byte

// encodeBody returns body as compact JSON text.
func encodeBody(body any) ([]byte, error) {
	if raw, ok := body.(Encoded); ok {
		return raw, nil
	}
	if raw, ok := body.(json.RawMessage); ok {
		if compactJSON(raw) {
			return raw, nil
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	return json.Marshal(body)
}

// compactJSON reports whether raw is valid JSON without a byte that
// json.Marshal would have left out: white space outside strings.
func compactJSON(raw []byte) bool {
	if !json.Valid(raw) {
		return false
	}
	in := false
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case in && c == '\\':
			i++
		case c == '"':
			in = !in
		case !in && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return false
		}
	}
	return true
}

// lead commits the oldest records waiting, the caller's own first among
// them, wakes the callers whose records the commit held, and hands the
// lead to the oldest caller still waiting, if any.
func (r *Recorder) lead() {
	r.mu.Lock()
	n := min(len(r.queue), r.opts.MaxBatch)
	batch := r.queue[:n:n]
	r.queue = r.queue[n:]
	r.mu.Unlock()

	// Should the commit panic (in OnCommit, say), the batch fails and the
	// lead still passes on, so that the other callers are not left
	// waiting for ever behind a leader that is gone.
	finished := false
	defer func() {
		if !finished {
			for _, p := range batch {
				p.err = errCommitPanicked
			}
			r.handOff(batch)
		}
	}()
	r.commit(batch)
	finished = true
	r.handOff(batch)
}

// errCommitPanicked fails the records of a commit that panicked.
var errCommitPanicked = errors.New("recorder: the commit panicked")

// handOff wakes the callers whose records batch held, the leader's own
// first record aside, and passes the lead to the oldest caller still
// waiting, or ends it.
func (r *Recorder) handOff(batch []*pending) {
	for _, p := range batch[1:] {
		p.wake <- true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue) == 0 {
		r.queue = nil
		r.leading = false
		r.idle.Broadcast()
		return
	}
	r.queue[0].wake <- false
}

// commit commits batch, to the journal or in one transaction, and sets
// each record's error.
func (r *Recorder) commit(batch []*pending) {
	begun := time.Now()
	if r.journal == nil && r.path != "" {
		r.tryJournal()
	}
	var err error
	if r.journal != nil {
		err = r.commitJournal(batch)
	} else {
		var signed int64
		signed, err = r.store.commit(context.Background(), batch, r.opts.Now().UTC(), r.checkpointDue)
		if err == nil && signed != 0 {
			r.lastCheckpoint = signed
		}
	}
	if r.opts.OnCommit != nil {
		r.opts.OnCommit(len(batch), time.Since(begun), err)
	}
	if err != nil {
		r.logger.Error("recorder commit failed", "records", len(batch), "error", err)
	}
	for _, p := range batch {
		p.err = err
	}
}

// commitJournal writes the frames of batch to the journal in one write,
// then wakes the ingester.
func (r *Recorder) commitJournal(batch []*pending) error {
	at := r.opts.Now().UTC()
	buf := r.frames[:0]
	for _, p := range batch {
		p.rec.At = at
		buf = appendFrame(buf, &p.rec)
	}
	err := r.ing.room(len(buf))
	if err == nil {
		err = r.journal.write(buf, len(batch))
	}
	if cap(buf) <= 1<<20 { // a buffer grown for a large result is let go
		r.frames = buf
	} else {
		r.frames = nil
	}
	if err != nil {
		return err
	}
	r.ing.poke()
	return nil
}

// journalRetry is how often a recorder without the journal tries to take
// it.
const journalRetry = time.Second

// tryJournal takes the journal when the process that held it let it go,
// at most every journalRetry. Only a leader calls it: the store is the
// leader's until the ingester starts.
func (r *Recorder) tryJournal() {
	now := r.opts.Now()
	if now.Before(r.nextTry) {
		return
	}
	r.nextTry = now.Add(journalRetry)
	if err := r.startJournal(r.path, nil); err != nil {
		r.logger.Error("recorder could not take over the journal; committing straight "+
			"to the database", "error", err)
	} else if r.journal != nil {
		r.logger.Info("recorder took over the journal", "journal", r.journal.path)
	}
}

// Sync waits until every record appended before it was called is in the
// database, where readers see it, and returns an error when ctx ends
// first. With a journal that takes a few milliseconds; without one,
// nothing.
func (r *Recorder) Sync(ctx context.Context) error {
	r.mu.Lock()
	g := r.ing
	r.mu.Unlock()
	if g == nil {
		return nil
	}
	return g.sync(ctx)
}

// checkpointDue signs the head of ch when enough records follow the last
// checkpoint; the checkpoint goes in the same commit. It reports the
// checkpoint's seq, or 0 when none was due. It is a checkpointFunc.
func (r *Recorder) checkpointDue(ctx context.Context, ch *chain, q querier) (int64, error) {
	if r.opts.SigningKey == nil {
		return 0, nil
	}
	if q != nil { // only the PostgreSQL committer passes its transaction
		last, err := lastCheckpointSeq(ctx, q, true)
		if err != nil {
			return 0, err
		}
		r.lastCheckpoint = last
	}
	if ch.seq-r.lastCheckpoint < int64(r.opts.CheckpointEvery) {
		return 0, nil
	}
	if err := ch.checkpoint(ctx, r.opts.SigningKey); err != nil {
		return 0, err
	}
	return ch.seq, nil
}

// closingCheckpoint signs the head on Close, unless the head already is a
// checkpoint or the transcript is empty.
func (r *Recorder) closingCheckpoint() {
	if r.opts.SigningKey == nil {
		return
	}
	err := func() error {
		ctx := context.Background()
		tx, err := r.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("recorder: begin: %w", err)
		}
		defer tx.Rollback()
		if err := lockChain(ctx, r.db, tx); err != nil {
			return err
		}
		ch, err := openChain(ctx, tx, r.opts.Now().UTC())
		if err != nil {
			return err
		}
		defer ch.close()
		if ch.seq == 0 || ch.headKind == KindCheckpoint {
			return nil
		}
		if err := ch.checkpoint(ctx, r.opts.SigningKey); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("recorder: commit: %w", err)
		}
		return nil
	}()
	if err != nil {
		r.logger.Error("recorder closing checkpoint failed", "error", err)
	}
}

// Hash computes a record's chain hash over its previous hash and content.
// The time is hashed in the text form that is stored.
func Hash(rec Record) string {
	return hashText(rec.Seq, FormatTime(rec.At), rec.Kind, rec.SessionID,
		rec.CallID, rec.PrevHash, rec.Body)
}

// hashText is Hash over the stored text of a record's columns.
func hashText(seq int64, at, kind, session, call, prev string, body []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "mcp-guard/record/v1\n%d\n%s\n%s\n%s\n%s\n%s\n",
		seq, at, kind, session, call, prev)
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// FormatTime is the text form of a record time, as stored and hashed.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Close waits for the records already queued to be committed, moves
// every journaled record into the database, signs the head, empties the
// journal, and closes the database. Append returns ErrClosed after Close.
// Should the records not go into the database, they stay in the journal
// for the next Open, and Close says so.
func (r *Recorder) Close() error {
	r.closeOnce.Do(func() {
		r.stopAppends()
		var errs []error
		if r.ing != nil {
			if err := r.ing.drain(); err != nil {
				errs = append(errs, fmt.Errorf("recorder: records remain in the journal "+
					"%s for the next open: %w", r.journal.path, err))
			}
		}
		r.closingCheckpoint()
		if r.ing != nil && len(errs) == 0 {
			if err := r.ing.rotateNow(); err != nil {
				r.logger.Error("recorder journal rotation failed", "error", err)
			}
		}
		r.store.close()
		if r.journal != nil {
			r.journal.close()
		}
		errs = append(errs, r.db.Close())
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}

// stopAppends makes Append return ErrClosed from now on and waits for the
// commit under way, if any, to end.
func (r *Recorder) stopAppends() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for r.leading {
		r.idle.Wait()
	}
}
