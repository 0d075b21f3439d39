package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// journalPlan is where ingestion of a journal starts.
type journalPlan struct {
	gen  uint64
	id   journalID
	from int64
	// seq and hash are those of the frame before from.
	seq  uint64
	hash frameHash
	// stored is the position the database holds, if any.
	stored *journalPos
	// fresh says that the file is empty or cut short in its header: it
	// holds no record and is written anew, of generation gen.
	fresh bool
	// warning, when set, says what Open found amiss but could go on
	// from.
	warning string
	// lost says that the warning is of records that may be lost.
	lost bool
}

// errForeignJournal is a journal that does not match the database's
// stored position.
var errForeignJournal = errors.New("recorder: the journal does not belong with the database")

// planJournal decides where the records of a journal of size bytes, with
// header hdr, stop being in the database, given the position stored
// there (has says whether there is one). The rule: a journal of the
// stored generation and id is in the database up to the stored offset;
// one of the generation after it, with the id stored for it (a rotation
// the database did not hear the end of) not at all; anything else is
// refused.
func planJournal(hdr []byte, size int64, st journalPos, has bool) (journalPlan, error) {
	var stored *journalPos
	if has {
		stored = &st
	}
	if len(hdr) >= 8 && string(hdr[:8]) == journalMagicV1 {
		if size > journalV1Header {
			return journalPlan{}, fmt.Errorf("%w: it is a journal of an earlier version "+
				"that holds records; open the database with that version first to move "+
				"them in", errForeignJournal)
		}
		// Empty: started anew in this version's format.
		return journalPlan{gen: st.gen + 1, fresh: true, stored: stored}, nil
	}
	if size < journalHeaderLen {
		p := journalPlan{gen: 1, fresh: true, stored: stored}
		if has {
			// Nothing the recorder does leaves the journal missing or
			// empty once the database has a position: it is replaced
			// whole by rename. Records committed to a journal that was
			// removed are lost; there is no telling how many.
			p.gen, p.lost = st.gen+1, true
			p.warning = fmt.Sprintf("the journal was missing or empty though the database "+
				"has taken records from it (generation %d): any records committed to it and "+
				"not yet in the database are lost", st.gen)
		}
		return p, nil
	}
	gen, id, err := parseJournalHeader(hdr)
	if err != nil {
		return journalPlan{}, fmt.Errorf("%w: %w", errForeignJournal, err)
	}
	p := journalPlan{gen: gen, id: id, from: journalHeaderLen, hash: startHash(id),
		stored: stored}
	switch {
	case !has && size > journalHeaderLen:
		return journalPlan{}, fmt.Errorf("%w: it holds records, but the database has "+
			"never taken any from a journal (a journal left from another database?)",
			errForeignJournal)
	case !has:
	case gen == st.gen+1:
		if id != st.next {
			return journalPlan{}, fmt.Errorf("%w: it is generation %d, but not the "+
				"journal the database made to follow generation %d (its id differs: "+
				"a journal of another database, or a header edited?)",
				errForeignJournal, gen, st.gen)
		}
	case gen == st.gen:
		if id != st.id {
			return journalPlan{}, fmt.Errorf("%w: it is generation %d, but not the "+
				"journal of that generation the database took records from (its id "+
				"differs: a journal of another database?)", errForeignJournal, gen)
		}
		if st.ingested < journalHeaderLen {
			return journalPlan{}, fmt.Errorf("%w: the database's position %d is inside "+
				"the header", errForeignJournal, st.ingested)
		}
		p.from, p.seq, p.hash = st.ingested, st.seq, st.hash
	default:
		return journalPlan{}, fmt.Errorf("%w: it is generation %d and the database has "+
			"taken records up to generation %d", errForeignJournal, gen, st.gen)
	}
	if p.from > size {
		// Bytes the database already holds are gone: nothing is lost.
		p.warning = fmt.Sprintf("the journal is shorter (%d bytes) than the position the "+
			"database has taken records up to (%d)", size, p.from)
		p.from = size
	}
	return p, nil
}

// readPlan reads the header and size of the journal f and plans its
// ingestion against the position stored in q's database.
func readPlan(ctx context.Context, f *os.File, q querier) (journalPlan, int64, error) {
	size, err := fileSize(f)
	if err != nil {
		return journalPlan{}, 0, err
	}
	hdr := make([]byte, min(size, journalHeaderLen))
	if len(hdr) > 0 {
		if _, err := f.ReadAt(hdr, 0); err != nil {
			return journalPlan{}, 0, fmt.Errorf("recorder: read the journal: %w", err)
		}
	}
	st, has, err := journalState(ctx, q)
	if err != nil {
		return journalPlan{}, 0, err
	}
	p, err := planJournal(hdr, size, st, has)
	return p, size, err
}

// startJournal takes the journal of the transcript at dbPath (f, when the
// caller holds it already), moves whatever it holds that is not in the
// database into it, and starts the ingester. When another process holds
// the journal the recorder commits straight to the database instead.
func (r *Recorder) startJournal(dbPath string, f *os.File) error {
	path := JournalPath(dbPath)
	if f == nil {
		var err error
		if f, err = lockJournal(path); err != nil || f == nil {
			return err
		}
	}
	w := r.store.(*liteWriter)
	// The journal keeps the records durable: the database need not be
	// synced for each batch, only before a journal is replaced.
	if err := w.relax(context.Background()); err != nil {
		f.Close()
		return err
	}
	j := &journal{path: path, dbPath: dbPath, full: r.opts.Synchronous == "full", f: f}
	g := newIngester(r, j, w)
	if err := g.recover(context.Background()); err != nil {
		j.close()
		return err
	}
	r.mu.Lock()
	r.journal, r.ing = j, g
	r.mu.Unlock()
	go g.run()
	return nil
}

// recover ingests the records a journal that was just locked holds
// beyond the database's position, then replaces it with an empty one
// unless it is one already.
func (g *ingester) recover(ctx context.Context) error {
	j := g.j
	p, size, err := readPlan(ctx, j.f, g.r.db)
	if err != nil {
		return fmt.Errorf("%w (%s)", err, j.path)
	}
	if p.warning != "" {
		g.r.logger.Error("recorder journal: "+p.warning, "journal", j.path)
	}
	j.gen, j.id = p.gen, p.id
	j.ingSeq, j.ingHash = p.seq, p.hash
	j.end.Store(size)
	j.ingested.Store(p.from)
	// Check the whole journal before moving any of it in: a damaged or
	// tampered frame refuses the journal, and nothing of it is chained.
	if !p.fresh {
		if _, err := scanPending(j.f, p, size); err != nil {
			return err
		}
	}
	moved := 0
	for !p.fresh {
		from := j.ingested.Load()
		batch, next, seq, hash, rerr := g.read(from, size, g.batchLimit())
		if len(batch) > 0 {
			if err := g.commit(ctx, batch, j.pos(next, seq, hash)); err != nil {
				return err
			}
			j.ingested.Store(next)
			j.ingSeq, j.ingHash = seq, hash
			moved += len(batch)
		}
		var fe *frameError
		switch {
		case errors.As(rerr, &fe) && fe.tail:
			g.r.logger.Warn("recorder journal ends in a write cut short by a crash (a "+
				"record whose write did not finish was never answered as recorded); "+
				"dropping it", "journal", j.path, "offset", fe.off, "reason", fe.reason)
		case errors.As(rerr, &fe):
			return fmt.Errorf("%w: %w; the records after it are not in the database "+
				"(%s)", errCorrupt, rerr, j.path)
		case rerr != nil:
			return rerr
		case len(batch) > 0 && next < size:
			continue // the batch was full
		}
		break
	}
	if moved > 0 {
		g.r.logger.Info("recorder moved journal records into the database",
			"journal", j.path, "records", moved)
	}
	switch {
	case p.fresh:
		// A new journal (or one whose creation a crash cut short): no
		// other process opens it while its lock is held, so the header
		// is written in place, once the database knows its id.
		id, err := newJournalID()
		if err != nil {
			return err
		}
		if p.stored != nil {
			st := *p.stored
			st.next = id
			if err := g.w.syncPosition(ctx, st); err != nil {
				return err
			}
		}
		err = j.f.Truncate(0)
		if err == nil {
			err = chownLike(j.f, j.dbPath)
		}
		if err == nil {
			_, err = j.f.WriteAt(journalHeader(j.gen, id), 0)
		}
		if err == nil && j.full {
			err = j.f.Sync()
		}
		if err != nil {
			return fmt.Errorf("recorder: write the journal's header: %w", err)
		}
		j.size = journalHeaderLen
		j.end.Store(journalHeaderLen)
		j.ingested.Store(journalHeaderLen)
		j.restart(id)
		return setJournalState(ctx, g.r.db, j.pos(journalHeaderLen, 0, j.hash))
	case size == journalHeaderLen:
		j.size = size
		j.restart(j.id)
		return setJournalState(ctx, g.r.db, j.pos(journalHeaderLen, 0, j.hash))
	}
	// Start from an empty journal: a torn tail must not stay in front of
	// the next frames. The database learns the new one's id first.
	next, err := newJournalID()
	if err != nil {
		return err
	}
	pos := j.pos(j.ingested.Load(), j.ingSeq, j.ingHash)
	pos.next = next
	if err := g.w.syncPosition(ctx, pos); err != nil {
		return err
	}
	nf, err := replaceJournal(j.path, j.dbPath, j.gen+1, next)
	if err != nil {
		return err
	}
	j.f.Close()
	j.gen++
	j.f, j.size = nf, journalHeaderLen
	j.end.Store(journalHeaderLen)
	j.ingested.Store(journalHeaderLen)
	j.restart(next)
	return setJournalState(ctx, g.r.db, j.pos(journalHeaderLen, 0, j.hash))
}

// RecoverResult says what Recover found and did.
type RecoverResult struct {
	// Ingested is how many records Recover moved from the journal into
	// the database.
	Ingested int
	// Pending is how many records of the journal are not in the database
	// and could not be moved there, as this process cannot write the
	// database or the journal.
	Pending int
	// Serving says that another process, a running guard, holds the
	// journal: it moves the records into the database itself, a few
	// milliseconds after their commit.
	Serving bool
	// Problems says what is wrong with the journal such that records
	// committed to it may be missing from the database: it is damaged,
	// refused, or gone. Each names the journal. The database is then read
	// as it is; a verification must fail.
	Problems []string
}

// Recover moves into the SQLite transcript at path the records committed
// to its journal that are not in it yet, which a guard that stopped
// without closing its recorder (killed, or the machine lost power)
// leaves behind. Every command that reads a transcript calls it first,
// so that it sees every committed record.
//
// It writes nothing when there is nothing to move. When a running guard
// holds the journal it leaves the records to it (Serving). When this
// process may not write the database or the journal it counts the
// records left out (Pending). A journal that is damaged, does not go
// with the database, or is missing though the database took records
// through it is reported in Problems, not as an error. opts are those of
// the Recorder it opens to move them.
func Recover(path string, opts Options) (RecoverResult, error) {
	res, err := recoverJournal(path, opts)
	if errors.Is(err, errCorrupt) || errors.Is(err, errForeignJournal) {
		res.Problems = append(res.Problems, err.Error())
		err = nil
	}
	return res, err
}

func recoverJournal(path string, opts Options) (RecoverResult, error) {
	jpath := JournalPath(path)
	fi, err := os.Lstat(jpath)
	if errors.Is(err, os.ErrNotExist) {
		lost, err := missingJournal(path)
		return RecoverResult{Problems: lost}, err
	}
	if err == nil && !fi.Mode().IsRegular() {
		return RecoverResult{}, fmt.Errorf("%w: %s is %s, which is refused",
			errForeignJournal, jpath, fileKind(fi.Mode()))
	}
	if !writable(path) || !writable(jpath) {
		f, err := openJournalFile(jpath, os.O_RDONLY)
		if err != nil {
			return RecoverResult{}, err
		}
		defer f.Close()
		n, lost, err := countPending(f, path)
		return RecoverResult{Pending: n, Problems: lost}, err
	}
	f, err := lockJournal(jpath)
	if err != nil || f == nil {
		return RecoverResult{Serving: f == nil && err == nil}, err
	}
	n, lost, err := countPending(f, path)
	if err != nil || n == 0 {
		f.Close()
		return RecoverResult{Problems: lost}, err
	}
	r, err := open(path, opts, f)
	if err != nil {
		return RecoverResult{}, err
	}
	return RecoverResult{Ingested: n}, r.Close()
}

// missingJournal returns the problem of the database at path whose
// journal is gone though the database took records through it; none
// when it never did, or there is no database either.
func missingJournal(path string) ([]string, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, nil // the caller's open of the database says what is wrong
	}
	db, err := OpenReadOnly(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	st, has, err := journalState(context.Background(), db)
	if err != nil || !has {
		return nil, err
	}
	return []string{fmt.Sprintf("the journal %s is missing though the database has "+
		"taken records through it (generation %d): any records committed to it and "+
		"not yet in the database are lost", JournalPath(path), st.gen)}, nil
}

// writable reports whether this process may write the file at path. It
// asks the kernel rather than opening the file: closing a descriptor of
// the database would drop the locks SQLite holds on it in this process.
func writable(path string) bool {
	const wOK = 2 // access(2)'s W_OK
	err := syscall.Access(path, wOK)
	return !errors.Is(err, fs.ErrPermission) && !errors.Is(err, syscall.EROFS)
}

// Pending counts the records in the journal of the SQLite transcript at
// path that are not in the database yet, reading both only. A journal
// that a running guard appends to meanwhile gives a count that is soon
// out of date.
func Pending(path string) (int, error) {
	f, err := openJournalFile(JournalPath(path), os.O_RDONLY)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, lost, err := countPending(f, path)
	if err == nil && len(lost) > 0 {
		err = fmt.Errorf("%w: %s", errCorrupt, lost[0])
	}
	return n, err
}

// countPending counts the records of the journal f beyond the position
// stored in the database at path, up to a torn tail. lost says, when the
// journal is empty though the database took records through it, that
// those not in the database are lost.
func countPending(f *os.File, path string) (n int, lost []string, err error) {
	db, err := OpenReadOnly(path)
	if err != nil {
		return 0, nil, err
	}
	defer db.Close()
	p, size, err := readPlan(context.Background(), f, db)
	if err != nil {
		return 0, nil, fmt.Errorf("%w (%s)", err, f.Name())
	}
	if p.lost {
		lost = []string{fmt.Sprintf("%s: %s", f.Name(), p.warning)}
	}
	if p.fresh {
		return 0, lost, nil
	}
	n, err = scanPending(f, p, size)
	return n, lost, err
}

// scanPending counts the records of the journal f that plan p has to
// ingest, up to size and a torn tail, and checks their frames.
func scanPending(f *os.File, p journalPlan, size int64) (int, error) {
	s := newFrameScanner(f, nil, p.from, size, p.seq, p.hash)
	n := 0
	for {
		_, err := s.next()
		var fe *frameError
		switch {
		case err == io.EOF || (errors.As(err, &fe) && fe.tail):
			return n, nil
		case errors.As(err, &fe):
			return n, fmt.Errorf("%w: %w; it and the records after it are not in the "+
				"database (%s)", errCorrupt, err, f.Name())
		case err != nil:
			return n, err
		}
		n++
	}
}
