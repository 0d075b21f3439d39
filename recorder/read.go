package recorder

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// OpenReadOnly opens a transcript database for reading only (SQLite's
// mode=ro), as the audit commands do on a live database or on a copy.
func OpenReadOnly(path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("recorder: open %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("recorder: open %s: %w", path, err)
	}
	var n int
	err = db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'records'`).Scan(&n)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("recorder: open %s: %w", path, err)
	}
	if n == 0 {
		db.Close()
		return nil, fmt.Errorf("recorder: %s holds no transcript (no records table)", path)
	}
	return db, nil
}

const recordColumns = `seq, at, kind, session_id, call_id, body, prev_hash, hash`

type scanner interface{ Scan(dest ...any) error }

func scanRecord(s scanner) (Record, error) {
	var r Record
	var at, body string
	err := s.Scan(&r.Seq, &at, &r.Kind, &r.SessionID, &r.CallID, &body, &r.PrevHash, &r.Hash)
	if err != nil {
		return Record{}, fmt.Errorf("recorder: read record: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return Record{}, fmt.Errorf("recorder: record %d: bad time %q", r.Seq, at)
	}
	r.At, r.Body = t, json.RawMessage(body)
	return r, nil
}

// Head returns the last record's seq and hash; 0 and GenesisHash when the
// transcript is empty.
func Head(ctx context.Context, db *sql.DB) (int64, string, error) {
	seq, hash := int64(0), GenesisHash
	err := db.QueryRowContext(ctx, `SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1`).
		Scan(&seq, &hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, "", fmt.Errorf("recorder: read head: %w", err)
	}
	return seq, hash, nil
}

// LatestCheckpoint returns the last checkpoint record at or before seq
// upto (any when upto is 0) and its body; nil when there is none.
func LatestCheckpoint(ctx context.Context, db *sql.DB, upto int64) (*Record, *Checkpoint, error) {
	if upto <= 0 {
		upto = 1<<63 - 1
	}
	row := db.QueryRowContext(ctx, `SELECT `+recordColumns+` FROM records
		WHERE kind = ? AND seq <= ? ORDER BY seq DESC LIMIT 1`, KindCheckpoint, upto)
	rec, err := scanRecord(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	c, err := ParseCheckpoint(rec.Body)
	if err != nil {
		return nil, nil, err
	}
	return &rec, &c, nil
}

// Caller is the caller as intent records name it.
type Caller struct {
	Subject string   `json:"subject"`
	Issuer  string   `json:"issuer,omitempty"`
	Email   string   `json:"email,omitempty"`
	Groups  []string `json:"groups"`
}

// Call is one tool call as recorded: its intent, its completion when one
// was written, and the approval records that name it, in seq order.
type Call struct {
	Intent     Record
	Completion *Record
	Approvals  []Record

	// Read from the bodies, for filtering and display.
	Tool    string
	Target  string
	Caller  Caller
	Outcome string // the completion's outcome; "incomplete" without one
}

// OutcomeIncomplete is the outcome of a call with no completion record:
// it was in flight when the guard stopped.
const OutcomeIncomplete = "incomplete"

// CallFilter selects calls; empty fields match everything.
type CallFilter struct {
	Since, Until time.Time // on the intent's time; Until is exclusive
	Caller       string    // subject or email
	Target       string
	Tool         string
	Outcome      string // a completion outcome, or "incomplete"
	SessionID    string
	// UptoSeq ignores records written after it, so that a long export
	// reads one consistent prefix of the chain; 0 means the head.
	UptoSeq int64
}

func (f CallFilter) match(c *Call) bool {
	at := c.Intent.At
	switch {
	case !f.Since.IsZero() && at.Before(f.Since),
		!f.Until.IsZero() && !at.Before(f.Until),
		f.Tool != "" && c.Tool != f.Tool,
		f.Target != "" && c.Target != f.Target,
		f.Outcome != "" && c.Outcome != f.Outcome:
		return false
	case f.Caller != "":
		return c.Caller.Subject == f.Caller || strings.EqualFold(c.Caller.Email, f.Caller)
	}
	return true
}

// Calls streams the calls matching f, in the order their intents were
// recorded, to fn. Memory stays bounded: one call is held at a time. It
// makes a Reader for the purpose.
func Calls(ctx context.Context, db *sql.DB, f CallFilter, fn func(Call) error) error {
	r, err := NewReader(ctx, db)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Calls(ctx, f, fn)
}

// Calls streams the calls matching f, in the order their intents were
// recorded, to fn. Memory stays bounded: one call is held at a time.
func (r *Reader) Calls(ctx context.Context, f CallFilter, fn func(Call) error) error {
	upto := r.head
	if f.UptoSeq > 0 && f.UptoSeq < upto {
		upto = f.UptoSeq
	}
	cond, args := `kind = ?`, []any{KindCallIntent}
	if f.SessionID != "" {
		cond += ` AND session_id = ?`
		args = append(args, f.SessionID)
	}
	w, args := r.where(cond, args...)
	rows, err := r.q.QueryContext(ctx, `SELECT `+recordColumns+` FROM records
		WHERE `+w+` AND seq <= ? ORDER BY seq`, append(args, upto)...)
	if err != nil {
		return fmt.Errorf("recorder: read calls: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		intent, err := scanRecord(rows)
		if err != nil {
			return err
		}
		c, err := r.loadCall(ctx, intent, upto)
		if err != nil {
			return err
		}
		if !f.match(&c) {
			continue
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("recorder: read calls: %w", err)
	}
	return nil
}

// LoadCall gathers the completion and approval records of the call whose
// intent is given, among records up to seq upto. It makes a Reader for
// the purpose, which reads the whole transcript on SQLite: to load many
// calls, use one Reader's LoadCall.
func LoadCall(ctx context.Context, db *sql.DB, intent Record, upto int64) (Call, error) {
	r, err := NewReader(ctx, db)
	if err != nil {
		return Call{}, err
	}
	defer r.Close()
	if upto <= 0 || upto > r.head {
		upto = r.head
	}
	return r.loadCall(ctx, intent, upto)
}

// LoadCall gathers the completion and approval records of the call whose
// intent is given. Approval records are found by the call's id and by the
// approval request id its completion names, since the approval workflow
// keys its events by request.
func (r *Reader) LoadCall(ctx context.Context, intent Record) (Call, error) {
	return r.loadCall(ctx, intent, r.head)
}

// loadCall is LoadCall among the records up to seq upto.
func (r *Reader) loadCall(ctx context.Context, intent Record, upto int64) (Call, error) {
	c := Call{Intent: intent, Outcome: OutcomeIncomplete}
	var ib struct {
		Tool   string `json:"tool"`
		Target string `json:"target"`
		Caller Caller `json:"caller"`
	}
	if err := json.Unmarshal(intent.Body, &ib); err != nil {
		return Call{}, fmt.Errorf("recorder: record %d: intent body: %w", intent.Seq, err)
	}
	c.Tool, c.Target, c.Caller = ib.Tool, ib.Target, ib.Caller
	if intent.CallID == "" {
		return c, nil
	}
	recs, err := r.keyedBy(ctx, intent.CallID, upto)
	if err != nil {
		return Call{}, err
	}
	var requestID string
	for _, rec := range recs {
		switch {
		case rec.Kind == KindApproval:
			c.Approvals = append(c.Approvals, rec)
		case rec.Kind == KindCallCompletion && c.Completion == nil:
			c.Completion = &rec
			var cb struct {
				Outcome   string `json:"outcome"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(rec.Body, &cb); err != nil {
				return Call{}, fmt.Errorf("recorder: record %d: completion body: %w", rec.Seq, err)
			}
			c.Outcome, requestID = cb.Outcome, cb.RequestID
		}
	}
	if requestID == "" || requestID == intent.CallID {
		return c, nil
	}
	byRequest, err := r.keyedBy(ctx, requestID, upto)
	if err != nil {
		return Call{}, err
	}
	for _, rec := range byRequest {
		if rec.Kind == KindApproval {
			c.Approvals = append(c.Approvals, rec)
		}
	}
	slices.SortFunc(c.Approvals, func(a, b Record) int { return cmp.Compare(a.Seq, b.Seq) })
	return c, nil
}

// keyedByCond selects the completion and approval records keyed by an id.
const keyedByCond = `call_id = ? AND call_id != '' AND kind IN ('` +
	KindCallCompletion + `', '` + KindApproval + `')`

// keyedBy returns the completion and approval records keyed by id, up to
// seq upto, in seq order.
func (r *Reader) keyedBy(ctx context.Context, id string, upto int64) ([]Record, error) {
	w, args := r.where(keyedByCond, id)
	if r.keyedByStmt == nil {
		stmt, err := r.q.PrepareContext(ctx, `SELECT `+recordColumns+` FROM records
			WHERE `+w+` AND seq <= ? ORDER BY seq`)
		if err != nil {
			return nil, fmt.Errorf("recorder: read call %s: %w", id, err)
		}
		r.keyedByStmt = stmt
	}
	rows, err := r.keyedByStmt.QueryContext(ctx, append(args, upto)...)
	if err != nil {
		return nil, fmt.Errorf("recorder: read call %s: %w", id, err)
	}
	defer rows.Close()
	var recs []Record
	for rows.Next() {
		rec, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recorder: read call %s: %w", id, err)
	}
	return recs, nil
}

// Session summarises one transcript session.
type Session struct {
	ID              string
	FirstSeq        int64
	LastSeq         int64
	FirstAt, LastAt time.Time
	Calls           int64
	Ended           bool
	// Start is the session_start record; nil when it was pruned.
	Start *Record
}

// sessionSummary is the select list that sums up the records of a
// session: first and last seq, calls, ends and the first start's seq (0
// for none). Its arguments are sessionSummaryArgs.
const sessionSummary = `MIN(seq), MAX(seq), COUNT(CASE WHEN kind = ? THEN 1 END),
	COUNT(CASE WHEN kind = ? THEN 1 END), COALESCE(MIN(CASE WHEN kind = ? THEN seq END), 0)`

var sessionSummaryArgs = []any{KindCallIntent, KindSessionEnd, KindSessionStart}

// scanSummary reads a sessionSummary into s and returns the seq of the
// session's start record, 0 for none.
func (s *Session) scanSummary(sc scanner, dest ...any) (int64, error) {
	var ends, start int64
	dest = append(dest, &s.FirstSeq, &s.LastSeq, &s.Calls, &ends, &start)
	if err := sc.Scan(dest...); err != nil {
		return 0, err
	}
	s.Ended = ends > 0
	return start, nil
}

// Sessions streams a summary of every session, oldest first. It reads
// every record: it needs no key table.
func Sessions(ctx context.Context, db *sql.DB, fn func(Session) error) error {
	rows, err := db.QueryContext(ctx, `SELECT session_id, `+sessionSummary+`
		FROM records WHERE session_id != ''
		GROUP BY session_id ORDER BY MIN(seq)`, sessionSummaryArgs...)
	if err != nil {
		return fmt.Errorf("recorder: read sessions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s Session
		start, err := s.scanSummary(rows, &s.ID)
		if err != nil {
			return fmt.Errorf("recorder: read sessions: %w", err)
		}
		if err := s.load(ctx, db, start); err != nil {
			return err
		}
		if err := fn(s); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("recorder: read sessions: %w", err)
	}
	return nil
}

// load fills in the session's times and its start record, at seq start
// (none when 0).
func (s *Session) load(ctx context.Context, q querier, start int64) error {
	for _, p := range []struct {
		seq int64
		at  *time.Time
	}{{s.FirstSeq, &s.FirstAt}, {s.LastSeq, &s.LastAt}} {
		var at string
		err := q.QueryRowContext(ctx, `SELECT at FROM records WHERE seq = ?`, p.seq).Scan(&at)
		if err != nil {
			return fmt.Errorf("recorder: read session %s: %w", s.ID, err)
		}
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return fmt.Errorf("recorder: record %d: bad time %q", p.seq, at)
		}
		*p.at = t
	}
	if start == 0 {
		return nil
	}
	rec, err := scanRecord(q.QueryRowContext(ctx, `SELECT `+recordColumns+` FROM records
		WHERE seq = ?`, start))
	if err != nil {
		return fmt.Errorf("recorder: read session %s: %w", s.ID, err)
	}
	s.Start = &rec
	return nil
}

// FindSession returns the session whose id is id or starts with it; an
// error when none or several match. It makes a Reader for the purpose.
func FindSession(ctx context.Context, db *sql.DB, id string) (Session, error) {
	r, err := NewReader(ctx, db)
	if err != nil {
		return Session{}, err
	}
	defer r.Close()
	return r.FindSession(ctx, id)
}

// FindSession returns the session whose id is id or starts with it; an
// error when none or several match.
func (r *Reader) FindSession(ctx context.Context, id string) (Session, error) {
	if id == "" {
		return Session{}, errors.New("recorder: empty session id")
	}
	w, args := r.where(`session_id >= ? AND session_id < ?`, id, id+"\U0010FFFF")
	rows, err := r.q.QueryContext(ctx, `SELECT DISTINCT session_id FROM records
		WHERE `+w+` ORDER BY session_id LIMIT 2`, args...)
	if err != nil {
		return Session{}, fmt.Errorf("recorder: find session: %w", err)
	}
	var ids []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return Session{}, fmt.Errorf("recorder: find session: %w", err)
		}
		ids = append(ids, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Session{}, fmt.Errorf("recorder: find session: %w", err)
	}
	switch {
	case len(ids) == 0:
		return Session{}, fmt.Errorf("recorder: no session %q", id)
	case len(ids) > 1 && ids[0] != id:
		return Session{}, fmt.Errorf("recorder: %q names more than one session; give more of the id", id)
	}
	s := Session{ID: ids[0]}
	w, args = r.where(`session_id = ?`, s.ID)
	start, err := s.scanSummary(r.q.QueryRowContext(ctx, `SELECT `+sessionSummary+`
		FROM records WHERE `+w, append(slices.Clone(sessionSummaryArgs), args...)...))
	if err != nil {
		return Session{}, fmt.Errorf("recorder: read session %s: %w", s.ID, err)
	}
	return s, s.load(ctx, r.q, start)
}

// SessionRecords streams the records of a session in seq order. It makes
// a Reader for the purpose.
func SessionRecords(ctx context.Context, db *sql.DB, id string, fn func(Record) error) error {
	r, err := NewReader(ctx, db)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.SessionRecords(ctx, id, fn)
}

// SessionRecords streams the records of a session in seq order.
func (r *Reader) SessionRecords(ctx context.Context, id string, fn func(Record) error) error {
	w, args := r.where(`session_id = ?`, id)
	rows, err := r.q.QueryContext(ctx, `SELECT `+recordColumns+` FROM records
		WHERE `+w+` ORDER BY seq`, args...)
	if err != nil {
		return fmt.Errorf("recorder: read session %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		rec, err := scanRecord(rows)
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("recorder: read session %s: %w", id, err)
	}
	return nil
}

// HasIntent reports whether the call has an intent record. It makes a
// Reader for the purpose.
func HasIntent(ctx context.Context, db *sql.DB, callID string) (bool, error) {
	r, err := NewReader(ctx, db)
	if err != nil {
		return false, err
	}
	defer r.Close()
	return r.HasIntent(ctx, callID)
}

// HasIntent reports whether the call has an intent record.
func (r *Reader) HasIntent(ctx context.Context, callID string) (bool, error) {
	w, args := r.where(`call_id = ? AND call_id != '' AND kind = ?`, callID, KindCallIntent)
	var found bool
	err := r.q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM records WHERE `+w+`)`,
		args...).Scan(&found)
	if err != nil {
		return false, fmt.Errorf("recorder: read call %s: %w", callID, err)
	}
	return found, nil
}

// Records streams every record in seq order, up to seq upto (0: all).
func Records(ctx context.Context, db *sql.DB, upto int64, fn func(Record) error) error {
	if upto <= 0 {
		upto = 1<<63 - 1
	}
	rows, err := db.QueryContext(ctx, `SELECT `+recordColumns+` FROM records
		WHERE seq <= ? ORDER BY seq`, upto)
	if err != nil {
		return fmt.Errorf("recorder: read records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		rec, err := scanRecord(rows)
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("recorder: read records: %w", err)
	}
	return nil
}
