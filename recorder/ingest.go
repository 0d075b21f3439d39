package recorder

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Ingestion batches: records and bytes of records per SQLite transaction.
const (
	ingestRecords = 256
	ingestBytes   = 8 << 20
)

// ingestEvery is the least time between the starts of two ingestion
// passes unless Sync waits: records arriving in a stream are moved in
// batches, whose transactions cost little more than one record's.
const ingestEvery = 2 * time.Millisecond

// Ingestion retries a failed transaction after a pause that doubles from
// ingestRetryMin to ingestRetryMax; Close gives up after closeAttempts.
const (
	ingestRetryMin = 10 * time.Millisecond
	ingestRetryMax = time.Second
	closeAttempts  = 5
)

// errCorrupt marks a journal that cannot be read on: a damaged frame in
// the middle, which ingestion never skips, since the records after it
// would take the seqs of the records it held.
var errCorrupt = errors.New("recorder: the journal is damaged")

// ingester moves the journal's records into SQLite, in order, in
// batches, each in one transaction with the journal position, in a
// goroutine of its own. It alone uses the SQLite writer (the Recorder's
// store) while the Recorder is open, and alone rotates the journal.
type ingester struct {
	r  *Recorder
	j  *journal
	w  *liteWriter
	rd *bufio.Reader

	wake     chan struct{} // a record was journaled
	hurry    chan struct{} // someone waits in Sync
	stop     chan struct{} // closed by halt
	stopOnce sync.Once
	done     chan struct{} // closed when the goroutine ends

	// mu guards the fields below it.
	mu sync.Mutex
	// count is how many of the records journaled since Open are in the
	// database.
	count int64
	// err is the error of the last ingestion, nil once one succeeds;
	// fatal says that ingestion stopped for good.
	err   error
	fatal bool
	// moved is closed, and replaced, whenever count or err changes.
	moved chan struct{}
}

func newIngester(r *Recorder, j *journal, w *liteWriter) *ingester {
	return &ingester{
		r: r, j: j, w: w,
		wake:  make(chan struct{}, 1),
		hurry: make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		moved: make(chan struct{}),
	}
}

// poke wakes the ingester, without waiting.
func (g *ingester) poke() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// run ingests whenever woken, until stopped.
func (g *ingester) run() {
	defer close(g.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	// wait waits d, or less when Sync hurries it; false when stopped.
	wait := func(d time.Duration) bool {
		timer.Reset(d)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-g.hurry:
		case <-g.stop:
			return false
		}
		return true
	}
	var pause time.Duration // after a failure
	var last time.Time      // when the last pass began
	for {
		if pause > 0 {
			if !wait(pause) {
				return
			}
		} else {
			select {
			case <-g.wake:
			case <-g.hurry:
			case <-g.stop:
				return
			}
			// A stream of records is taken a pass every ingestEvery, in
			// batches, rather than a record at a time.
			if d := ingestEvery - time.Since(last); d > 0 && !wait(d) {
				return
			}
		}
		last = time.Now()
		err := g.ingestAll(context.Background())
		if err == nil {
			pause = 0
			g.rotate()
			continue
		}
		if errors.Is(err, errCorrupt) {
			g.r.logger.Error("recorder journal is damaged: ingestion stopped and "+
				"appends are refused", "journal", g.j.path, "error", err)
			return
		}
		pause = min(max(2*pause, ingestRetryMin), ingestRetryMax)
		g.r.logger.Error("recorder ingestion failed; the records stay in the journal "+
			"and are retried", "journal", g.j.path, "retry_in", pause, "error", err)
	}
}

// ingestAll ingests every record journaled so far.
func (g *ingester) ingestAll(ctx context.Context) error {
	for {
		n, err := g.ingest(ctx)
		g.report(n, err)
		if err != nil || n == 0 {
			return err
		}
	}
}

// report records the outcome of one ingestion and wakes those waiting in
// Sync.
func (g *ingester) report(n int, err error) {
	if n == 0 && err == nil && g.err == nil {
		return // nothing changed; g.err is only written here, by the ingester
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.count += int64(n)
	g.err = err
	if errors.Is(err, errCorrupt) {
		g.fatal = true
		g.j.fail(err)
	}
	close(g.moved)
	g.moved = make(chan struct{})
}

// ingest moves the next batch of journaled records into the database
// and returns how many.
func (g *ingester) ingest(ctx context.Context) (int, error) {
	from, end := g.j.ingested.Load(), g.j.end.Load()
	if from == end {
		return 0, nil
	}
	batch, next, seq, hash, err := g.read(from, end, g.batchLimit())
	if err != nil {
		var fe *frameError
		if errors.As(err, &fe) {
			// end is where a whole write ended: nothing here is torn.
			return 0, fmt.Errorf("%w: %w", errCorrupt, err)
		}
		return 0, err
	}
	if len(batch) == 0 {
		return 0, nil
	}
	if err := g.commit(ctx, batch, g.j.pos(next, seq, hash)); err != nil {
		return 0, err
	}
	g.j.ingested.Store(next)
	g.j.ingSeq, g.j.ingHash = seq, hash
	return len(batch), nil
}

// batchLimit is how many records the next batch may hold: ingestRecords,
// or fewer, so that a batch ends where the next checkpoint is due and
// checkpoints keep their cadence however far ingestion lags.
func (g *ingester) batchLimit() int {
	if g.r.opts.SigningKey == nil {
		return ingestRecords
	}
	head := g.w.seq
	if !g.w.known {
		// An estimate will do: the batch's own commit reads the head.
		err := g.r.db.QueryRow(`SELECT COALESCE(MAX(seq), 0) FROM records`).Scan(&head)
		if err != nil {
			return ingestRecords
		}
	}
	left := int64(g.r.opts.CheckpointEvery) - (head - g.r.lastCheckpoint)
	return int(min(max(left, 1), ingestRecords))
}

// read reads a batch of at most limit records from offset from, before
// end, and returns them with the offset past the last one and that
// frame's seq and hash. On an error it returns the records read before
// it too.
func (g *ingester) read(from, end int64, limit int) (batch []*pending, next int64,
	seq uint64, hash frameHash, err error) {
	s := newFrameScanner(g.j.f, g.rd, from, end, g.j.ingSeq, g.j.ingHash)
	g.rd = s.rd
	batch, err = g.scan(s, limit)
	return batch, s.off, s.seq, s.hash, err
}

// scan reads a batch of at most limit records from s.
func (g *ingester) scan(s *frameScanner, limit int) ([]*pending, error) {
	var batch []*pending
	size := 0
	for len(batch) < limit && size < ingestBytes {
		rec, err := s.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return batch, err
		}
		batch = append(batch, &pending{rec: rec})
		size += len(rec.Body)
	}
	return batch, nil
}

// commit inserts batch, read from the journal up to position pos, in one
// transaction that stores that position.
func (g *ingester) commit(ctx context.Context, batch []*pending, pos journalPos) error {
	store := func(ctx context.Context, e execer) error {
		return setJournalState(ctx, e, pos)
	}
	// A checkpoint due after the batch takes the time of the batch's last
	// record, so that times keep the order of the chain.
	now := batch[len(batch)-1].rec.At
	signed, err := g.w.commitWith(ctx, batch, now, g.r.checkpointDue, store)
	if err != nil {
		// A commit whose outcome is unclear may have happened: the
		// position stored says, and the batch must not go in twice.
		if st, ok, rerr := journalState(ctx, g.r.db); rerr == nil && ok &&
			st.gen == pos.gen && st.ingested == pos.ingested {
			g.r.logger.Warn("recorder ingestion reported a failure but committed",
				"error", err)
			return nil
		}
		return err
	}
	if signed != 0 {
		g.r.lastCheckpoint = signed
	}
	return nil
}

// rotate replaces a journal past rotateAt whose records are all in the
// database with an empty one.
func (g *ingester) rotate() {
	if g.j.end.Load() < rotateAt {
		return
	}
	if err := g.rotateNow(); err != nil {
		g.r.logger.Error("recorder journal rotation failed", "journal", g.j.path, "error", err)
	}
}

// rotateNow replaces the journal with an empty one when every record in
// it is in the database, and stores the new generation.
func (g *ingester) rotateNow() error {
	j := g.j
	if j.ingested.Load() != j.end.Load() || j.end.Load() == journalHeaderLen {
		return nil
	}
	next, err := newJournalID()
	if err != nil {
		return err
	}
	// The journal is about to go: the records moved in from it must not
	// depend on it any more, and the database must know the id of the
	// one that takes its place before it does.
	pos := j.pos(j.ingested.Load(), j.ingSeq, j.ingHash)
	pos.next = next
	if err := g.w.syncPosition(context.Background(), pos); err != nil {
		return err
	}
	done, err := j.rotate(next)
	if err != nil || !done {
		return err
	}
	// Until this commits, the database names the generation before, and
	// this one's id as the next: Open then ingests this one from its
	// start, which is right too.
	return setJournalState(context.Background(), g.r.db,
		j.pos(journalHeaderLen, 0, startHash(next)))
}

// halt stops the goroutine and waits for it to end.
func (g *ingester) halt() {
	g.stopOnce.Do(func() { close(g.stop) })
	<-g.done
}

// drain stops the goroutine and ingests what is left, retrying a few
// times; it is for Close.
func (g *ingester) drain() error {
	g.halt()
	pause := ingestRetryMin
	var err error
	for range closeAttempts {
		if g.fatal {
			return g.err
		}
		if err = g.ingestAll(context.Background()); err == nil {
			return nil
		}
		time.Sleep(pause)
		pause = min(2*pause, ingestRetryMax)
	}
	return err
}

// room waits until the journal's backlog leaves room for n more bytes,
// as long as ingestion makes progress; a record larger than the whole
// backlog waits for an empty one.
func (g *ingester) room(n int) error {
	var deadline <-chan time.Time
	for {
		backlog := g.j.end.Load() - g.j.ingested.Load()
		if backlog == 0 || backlog+int64(n) <= maxBacklog {
			return nil
		}
		g.mu.Lock()
		err, moved := g.err, g.moved
		g.mu.Unlock()
		if err != nil {
			return fmt.Errorf("recorder: %d MiB of journal records are not in the "+
				"database, and ingestion fails: %w", backlog>>20, err)
		}
		if deadline == nil {
			t := time.NewTimer(backlogWait)
			defer t.Stop()
			deadline = t.C
		}
		g.hurryUp()
		select {
		case <-moved:
		case <-deadline:
			return fmt.Errorf("recorder: %d MiB of journal records are not in the "+
				"database, and none went in for %v", backlog>>20, backlogWait)
		}
	}
}

// hurryUp has the ingester start its next pass at once.
func (g *ingester) hurryUp() {
	select {
	case g.hurry <- struct{}{}:
	default:
	}
}

// sync waits until every record journaled before it was called is in the
// database.
func (g *ingester) sync(ctx context.Context) error {
	want := g.j.appended.Load()
	g.hurryUp()
	for {
		g.mu.Lock()
		got, err, fatal, moved := g.count, g.err, g.fatal, g.moved
		g.mu.Unlock()
		switch {
		case got >= want:
			return nil
		case fatal:
			return err
		}
		select {
		case <-moved:
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("recorder: sync: %w (ingestion is failing: %v)", ctx.Err(), err)
			}
			return fmt.Errorf("recorder: sync: %w", ctx.Err())
		}
	}
}

// journalPos is a position stored in journal_state.
type journalPos struct {
	gen uint64
	// id is the id of the journal of generation gen; next, when not
	// zero, of the journal of the generation after it.
	id, next journalID
	ingested int64
	// seq and hash are those of the frame before ingested.
	seq  uint64
	hash frameHash
}

// pos returns the position of j at offset off, past the frame of seq and
// hash.
func (j *journal) pos(off int64, seq uint64, hash frameHash) journalPos {
	return journalPos{gen: j.gen, id: j.id, ingested: off, seq: seq, hash: hash}
}

// journalState reads the stored position; ok is false when there is
// none (or no journal_state table, in a database no guard of this
// version opened). The ids and hash of a position an earlier version
// stored are zero.
func journalState(ctx context.Context, q querier) (journalPos, bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master
		WHERE type = 'table' AND name = 'journal_state'`).Scan(&n)
	if err != nil || n == 0 {
		return journalPos{}, false, wrapErr("recorder: read the journal position", err)
	}
	var cols int
	err = q.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('journal_state')
		WHERE name = 'frame_hash'`).Scan(&cols)
	if err != nil {
		return journalPos{}, false, fmt.Errorf("recorder: read the journal position: %w", err)
	}
	query := `SELECT generation, ingested, NULL, NULL, 0, NULL FROM journal_state WHERE id = 1`
	if cols == 1 {
		query = `SELECT generation, ingested, journal_id, next_id, frame_seq, frame_hash
			FROM journal_state WHERE id = 1`
	}
	var p journalPos
	var id, next, hash []byte
	err = q.QueryRowContext(ctx, query).Scan(&p.gen, &p.ingested, &id, &next, &p.seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return journalPos{}, false, nil
	}
	if err != nil {
		return journalPos{}, false, fmt.Errorf("recorder: read the journal position: %w", err)
	}
	copy(p.id[:], id)
	copy(p.next[:], next)
	copy(p.hash[:], hash)
	return p, true, nil
}

// setJournalState stores a position.
func setJournalState(ctx context.Context, e execer, p journalPos) error {
	var next []byte
	if p.next != (journalID{}) {
		next = p.next[:]
	}
	_, err := e.ExecContext(ctx, `INSERT OR REPLACE INTO journal_state
		(id, generation, ingested, journal_id, next_id, frame_seq, frame_hash)
		VALUES (1, ?, ?, ?, ?, ?, ?)`,
		int64(p.gen), p.ingested, p.id[:], next, int64(p.seq), p.hash[:])
	if err != nil {
		return fmt.Errorf("recorder: store the journal position: %w", err)
	}
	return nil
}

// addJournalColumns adds to the journal_state table of an earlier
// version the columns this one stores.
func addJournalColumns(ctx context.Context, db *sql.DB) error {
	for _, col := range []string{"journal_id BLOB", "next_id BLOB",
		"frame_seq INTEGER NOT NULL DEFAULT 0", "frame_hash BLOB"} {
		name, _, _ := strings.Cut(col, " ")
		var n int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('journal_state')
			WHERE name = ?`, name).Scan(&n)
		if err == nil && n == 0 {
			_, err = db.ExecContext(ctx, `ALTER TABLE journal_state ADD COLUMN `+col)
		}
		if err != nil {
			return fmt.Errorf("recorder: add %s to journal_state: %w", name, err)
		}
	}
	return nil
}

// fileSize returns the size of f.
func fileSize(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("recorder: stat the journal: %w", err)
	}
	return fi.Size(), nil
}
