package recorder

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The journal is a file beside a SQLite transcript that records are
// committed to first: a commit there is one write(2) of the batch's
// frames (and an fdatasync with synchronous "full"), where a SQLite
// commit costs ten times as much. The file grows a megabyte of zeros at a
// time, which later commits overwrite: an fdatasync of a write that does
// not change the file's size need not write its metadata, and cost a
// third less here. The Recorder's ingester moves the
// records into SQLite in the background, where they are chained. See
// ingest.go, and docs/audit.md for the whole story.
//
// The file is a header, then frames:
//
//	header: "mcpgjnl2" | generation (uint64) | journal id (16 bytes) |
//	        CRC-32C of the 32 bytes before
//	frame:  payload length (uint32) | CRC-32C of the rest of the frame (uint32) |
//	        frame seq (uint64) | hash (32 bytes) | payload
//	payload: at (int64, Unix ns) | kind | session_id | call_id | body
//
// Integers are little-endian; kind, session_id and call_id are each
// preceded by their length as a uvarint; the body is the rest. Zeros
// follow the last frame. The CRC tells a write a crash cut short. The
// frame seq counts the frames of a journal from 1, and the hash is
// SHA-256 of the hash of the frame before, the frame seq and the
// payload; the first frame's "hash before" is derived from the journal
// id (startHash). Ingestion checks both, so a frame swapped, duplicated,
// dropped or edited, or a journal of another database, is refused
// rather than chained. They do not stop someone who can write both the
// journal and the database: the id and hashes are in the clear, like the
// unsigned records at the database's end. A frame holds no record seq
// and no record hash: the chain is assigned when the record goes into
// SQLite, so that other processes appending there meanwhile (the
// approvals command, a prune) never fork it.
//
// The database keeps, in journal_state, the generation and id of the
// journal, the offset up to which its frames are in the database with
// the frame seq and hash there, updated in the transaction that inserts
// them, so each frame goes in exactly once and the check goes on from
// there. When a journal is wholly ingested it is replaced by an empty
// one of the next generation, whose id the database stores (next_id)
// before the file is swapped (see rotateNow).

const (
	journalMagic = "mcpgjnl2"
	// journalMagicV1 is the magic of the journal of earlier versions,
	// with a 20-byte header and frames without seq or hash.
	journalMagicV1   = "mcpgjnl1"
	journalV1Header  = 20
	journalHeaderLen = 36
	frameHeaderLen   = 48
	// minPayload is the payload of a record with every field empty.
	minPayload = 8 + 3
	// maxPayload bounds a frame's payload (SQLite's own limit on a value
	// is about 1 GB).
	maxPayload = 1 << 30
)

// journalID identifies one journal file: a new one gets a random id.
type journalID [16]byte

// frameHash is the running hash of a journal's frames.
type frameHash [32]byte

// newJournalID returns a random journal id.
func newJournalID() (journalID, error) {
	var id journalID
	if _, err := rand.Read(id[:]); err != nil {
		return id, fmt.Errorf("recorder: make a journal id: %w", err)
	}
	return id, nil
}

// startHash is the hash before the first frame of the journal id.
func startHash(id journalID) frameHash {
	h := sha256.New()
	h.Write([]byte("mcp-guard journal start\x00"))
	h.Write(id[:])
	return frameHash(h.Sum(nil))
}

// chainHash is the hash of the frame of seq and payload p after the
// frame whose hash is prev.
func chainHash(prev frameHash, seq uint64, p []byte) frameHash {
	h := sha256.New()
	h.Write(prev[:])
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seq)
	h.Write(b[:])
	h.Write(p)
	var out frameHash
	h.Sum(out[:0])
	return out
}

// growBy is how much the file grows by when a commit reaches its end.
const growBy = 1 << 20

// zeros is what the file grows with.
var zeros = make([]byte, growBy)

// rotateAt is the size past which a journal whose records are all in the
// database is replaced by an empty one.
const rotateAt = 4 << 20

// maxBacklog is how many bytes of records the journal may hold that are
// not yet in the database. Past it appends wait for the ingester, and
// fail while it fails: the guard stops rather than let the journal grow
// without bound, or readers fall far behind.
const maxBacklog = 64 << 20

// backlogWait is how long an append waits for room in the backlog.
const backlogWait = 30 * time.Second

// journalStateSchema holds where the journal's records stop being in the
// database: its generation and the offset past the last frame ingested.
// journal_id and next_id are the ids of the journal of that generation
// and of the next one; frame_seq and frame_hash those of the frame
// before the offset. Databases of earlier versions lack those columns
// until addJournalColumns adds them.
const journalStateSchema = `
CREATE TABLE IF NOT EXISTS journal_state (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	generation INTEGER NOT NULL,
	ingested   INTEGER NOT NULL,
	journal_id BLOB,
	next_id    BLOB,
	frame_seq  INTEGER NOT NULL DEFAULT 0,
	frame_hash BLOB
);
`

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// JournalPath returns the journal of the SQLite transcript at dbPath. It
// is not dbPath + "-journal": SQLite takes a file of that name for its
// own rollback journal and deletes it when it opens the database.
func JournalPath(dbPath string) string { return dbPath + ".journal" }

// journalHeader returns the header of the journal id of generation gen.
func journalHeader(gen uint64, id journalID) []byte {
	b := make([]byte, 0, journalHeaderLen)
	b = append(b, journalMagic...)
	b = binary.LittleEndian.AppendUint64(b, gen)
	b = append(b, id[:]...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// parseJournalHeader returns the generation and id of the journal header
// b.
func parseJournalHeader(b []byte) (uint64, journalID, error) {
	var id journalID
	if len(b) < journalHeaderLen || string(b[:8]) != journalMagic ||
		binary.LittleEndian.Uint32(b[32:36]) != crc32.Checksum(b[:32], castagnoli) {
		return 0, id, errors.New("recorder: the journal's header is not a journal header")
	}
	copy(id[:], b[16:32])
	return binary.LittleEndian.Uint64(b[8:16]), id, nil
}

// appendFrame appends rec's frame to buf, unsealed: sealFrames fills in
// its seq, hash and CRC.
func appendFrame(buf []byte, rec *Record) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, frameHeaderLen)...)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(rec.At.UnixNano()))
	for _, s := range []string{rec.Kind, rec.SessionID, rec.CallID} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	buf = append(buf, rec.Body...)
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(buf)-start-frameHeaderLen))
	return buf
}

// sealFrames fills in the seq, hash and CRC of the frames in buf, which
// follow the frame of seq and hash prev, and returns the last frame's.
func sealFrames(buf []byte, seq uint64, prev frameHash) (uint64, frameHash) {
	for len(buf) > 0 {
		n := int(binary.LittleEndian.Uint32(buf))
		hdr, p := buf[:frameHeaderLen], buf[frameHeaderLen:frameHeaderLen+n]
		seq++
		prev = chainHash(prev, seq, p)
		binary.LittleEndian.PutUint64(hdr[8:], seq)
		copy(hdr[16:], prev[:])
		binary.LittleEndian.PutUint32(hdr[4:], frameCRC(hdr, p))
		buf = buf[frameHeaderLen+n:]
	}
	return seq, prev
}

// frameCRC is the CRC of the frame with header hdr and payload p.
func frameCRC(hdr, p []byte) uint32 {
	crc := crc32.Update(0, castagnoli, hdr[:4])
	crc = crc32.Update(crc, castagnoli, hdr[8:])
	return crc32.Update(crc, castagnoli, p)
}

// decodePayload returns the record a frame's payload holds; the body
// shares p's memory.
func decodePayload(p []byte) (Record, error) {
	bad := errors.New("recorder: a journal frame's payload does not parse")
	if len(p) < minPayload {
		return Record{}, bad
	}
	rec := Record{At: time.Unix(0, int64(binary.LittleEndian.Uint64(p))).UTC()}
	p = p[8:]
	for _, s := range []*string{&rec.Kind, &rec.SessionID, &rec.CallID} {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return Record{}, bad
		}
		*s, p = string(p[k:k+int(n)]), p[k+int(n):]
	}
	rec.Body = p
	return rec, nil
}

// frameError is a frame that is cut short or fails its check.
type frameError struct {
	off    int64
	reason string
	// tail says that nothing but zero bytes follows the frame's start
	// within its declared length or the data read, so it may be a write
	// that a crash cut short rather than damage.
	tail bool
}

func (e *frameError) Error() string {
	return fmt.Sprintf("recorder: the journal frame at offset %d %s", e.off, e.reason)
}

// frameScanner reads the frames of a journal between two offsets.
type frameScanner struct {
	f   *os.File
	rd  *bufio.Reader
	off int64 // offset past the last whole frame read
	end int64
	hdr [frameHeaderLen]byte
	// seq and hash are those of the last frame read: the next must
	// follow them.
	seq  uint64
	hash frameHash
}

// newFrameScanner reads f from offset from, where the frame before has
// seq and hash, to offset end.
func newFrameScanner(f *os.File, rd *bufio.Reader, from, end int64, seq uint64,
	hash frameHash) *frameScanner {
	if rd == nil {
		rd = bufio.NewReaderSize(nil, 64<<10)
	}
	rd.Reset(io.NewSectionReader(f, from, end-from))
	return &frameScanner{f: f, rd: rd, off: from, end: end, seq: seq, hash: hash}
}

// next returns the next record, io.EOF at the end (or where only zeros
// follow), or a *frameError for a frame that is cut short or damaged.
func (s *frameScanner) next() (Record, error) {
	if s.off == s.end {
		return Record{}, io.EOF
	}
	left := s.end - s.off
	if left < frameHeaderLen {
		if s.zeroFrom(s.off) {
			return Record{}, io.EOF
		}
		return Record{}, s.bad("is cut short in its header", left)
	}
	if _, err := io.ReadFull(s.rd, s.hdr[:]); err != nil {
		return Record{}, fmt.Errorf("recorder: read the journal: %w", err)
	}
	if s.hdr == [frameHeaderLen]byte{} {
		// Where the frames end, the zeros the file grew with begin. Data
		// after zeros is what a crash left of writes the disk took out
		// of order: the last ones, which did not all finish, so whoever
		// appended them was not answered that they were recorded.
		if s.zeroFrom(s.off + frameHeaderLen) {
			return Record{}, io.EOF
		}
		return Record{}, &frameError{off: s.off, tail: true,
			reason: "is zeros with data after them"}
	}
	n := int64(binary.LittleEndian.Uint32(s.hdr[:4]))
	if n < minPayload || n > maxPayload {
		// A cut write leaves its length whole or not at all: a wrong
		// one is damage, unless only zeros follow.
		return Record{}, s.bad(fmt.Sprintf("declares %d bytes", n), frameHeaderLen)
	}
	if n > left-frameHeaderLen {
		return Record{}, s.bad(fmt.Sprintf("declares %d bytes and %d follow", n,
			left-frameHeaderLen), left)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(s.rd, p); err != nil {
		return Record{}, fmt.Errorf("recorder: read the journal: %w", err)
	}
	if frameCRC(s.hdr[:], p) != binary.LittleEndian.Uint32(s.hdr[4:]) {
		return Record{}, s.bad("fails its check", frameHeaderLen+n)
	}
	// A whole frame that does not follow the one before was put there:
	// never a cut write.
	seq := binary.LittleEndian.Uint64(s.hdr[8:])
	if seq != s.seq+1 {
		return Record{}, &frameError{off: s.off, reason: fmt.Sprintf("is frame %d "+
			"where frame %d is due: frames were swapped, duplicated or dropped",
			seq, s.seq+1)}
	}
	hash := chainHash(s.hash, seq, p)
	if !bytes.Equal(hash[:], s.hdr[16:]) {
		return Record{}, &frameError{off: s.off, reason: fmt.Sprintf("(frame %d) does "+
			"not chain to the frame before it: it was edited, or comes from another "+
			"journal", seq)}
	}
	rec, err := decodePayload(p)
	if err != nil {
		return Record{}, s.bad("fails to parse", frameHeaderLen+n)
	}
	s.off += frameHeaderLen + n
	s.seq, s.hash = seq, hash
	return rec, nil
}

// bad returns the error for the frame at s.off; span is how far the
// frame reaches. It is a tail when the frame reaches the end of the data,
// or only zero bytes follow it (what a file system may leave of writes a
// power loss cut short). A length damaged so that the frame reaches past
// the end looks the same as a cut write: a CRC that its frame cannot be
// read for cannot tell them apart.
func (s *frameScanner) bad(reason string, span int64) error {
	e := &frameError{off: s.off, reason: reason}
	rest := s.off + span
	e.tail = rest >= s.end || s.zeroFrom(rest)
	return e
}

// zeroFrom reports whether every byte from off to the end is zero.
func (s *frameScanner) zeroFrom(off int64) bool {
	buf := make([]byte, 64<<10)
	for off < s.end {
		n, err := s.f.ReadAt(buf[:min(int64(len(buf)), s.end-off)], off)
		if n == 0 || (err != nil && err != io.EOF) {
			return false
		}
		if !bytes.Equal(buf[:n], zeros[:n]) {
			return false
		}
		off += int64(n)
	}
	return true
}

// journal is an open journal whose lock this process holds.
type journal struct {
	path string
	// dbPath is the database's path, whose owner a new journal takes.
	dbPath string
	// full syncs the data of every append to the disk (synchronous
	// "full").
	full bool

	// mu is the append lock: a leader holds it while it writes, and
	// rotate holds it while it replaces the file.
	mu sync.Mutex
	// f is the journal, with its lock held. Writes and replacements
	// hold mu; the ingester, which alone replaces it, reads it without.
	f *os.File
	// size is the file's size: end, then zeros. It is guarded by mu.
	size int64
	// gen and id are the generation and id of f; only the ingester
	// reads or changes them after Open.
	gen uint64
	id  journalID
	// seq and hash are those of the last frame written, guarded by mu.
	seq  uint64
	hash frameHash
	// ingSeq and ingHash are those of the last frame ingested; only the
	// ingester reads or changes them after Open.
	ingSeq  uint64
	ingHash frameHash
	// err, once set, fails every append: the file's content past end
	// is in doubt.
	err error

	// end is the offset past the last whole frame written, ingested the
	// offset past the last frame in the database. Both are reset by
	// rotate.
	end, ingested atomic.Int64
	// appended counts the records written since Open.
	appended atomic.Int64
}

// lockJournal opens the journal at path, creating it empty if needed,
// and takes its lock. It returns nil, nil when another process holds the
// lock.
func lockJournal(path string) (*os.File, error) {
	// The lock holder replaces the file when it rotates it; a lock taken
	// on the file it replaced must be taken again on the new one.
	for range 10 {
		f, err := openJournalFile(path, os.O_RDWR|os.O_CREATE)
		if err != nil {
			return nil, err
		}
		locked, err := tryLock(f)
		if err != nil || !locked {
			f.Close()
			return nil, err
		}
		if same, err := isFileAt(f, path); err != nil || same {
			if err != nil {
				f.Close()
				return nil, err
			}
			return f, nil
		}
		f.Close()
	}
	return nil, errors.New("recorder: the journal keeps being replaced while it is locked")
}

// tryLock takes f's exclusive lock if nobody holds it.
func tryLock(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("recorder: lock the journal: %w", err)
	}
	return true, nil
}

// isFileAt reports whether f is the file at path.
func isFileAt(f *os.File, path string) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("recorder: stat the journal: %w", err)
	}
	pi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("recorder: stat the journal: %w", err)
	}
	return os.SameFile(fi, pi), nil
}

// write seals the frames in buf, which hold records records, after the
// last frame, and writes them as one write, and grows the file when they
// reach its end. On failure nothing of it stays in the file, or the
// journal is failed for good.
func (j *journal) write(buf []byte, records int) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	seq, hash := sealFrames(buf, j.seq, j.hash)
	end := j.end.Load()
	need := end + int64(len(buf))
	_, err := j.f.WriteAt(buf, end)
	if err == nil && need > j.size {
		if _, err = j.f.WriteAt(zeros, need); err == nil {
			j.size = need + growBy
		}
	}
	if err != nil {
		err = fmt.Errorf("recorder: write the journal: %w", err)
		if zerr := zeroRange(j.f, end, need); zerr != nil {
			j.err = fmt.Errorf("%w; and the write could not be undone: %v", err, zerr)
		}
		return err
	}
	if j.full {
		if err := datasync(j.f); err != nil {
			// Whether the data reached the disk is unknown, and a later
			// sync may report success over the same loss: stop here.
			j.err = fmt.Errorf("recorder: sync the journal: %w", err)
			return j.err
		}
	}
	j.seq, j.hash = seq, hash
	j.end.Store(end + int64(len(buf)))
	j.appended.Add(int64(records))
	return nil
}

// zeroRange writes zeros over f from offset from to offset to.
func zeroRange(f *os.File, from, to int64) error {
	for from < to {
		n, err := f.WriteAt(zeros[:min(int64(len(zeros)), to-from)], from)
		if err != nil {
			return err
		}
		from += int64(n)
	}
	return nil
}

// fail fails every later append with err.
func (j *journal) fail(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err == nil {
		j.err = err
	}
}

// replaceJournal writes an empty journal of generation gen and id id,
// locked, in place of the file at path, durably, and returns it. It takes
// the owner of the database at dbPath.
func replaceJournal(path, dbPath string, gen uint64, id journalID) (*os.File, error) {
	tmp := path + ".tmp"
	f, err := createJournalTemp(tmp, dbPath)
	if err != nil {
		return nil, err
	}
	err = func() error {
		// Locked before it takes the journal's name, so that nobody
		// else can lock it.
		if ok, err := tryLock(f); err != nil || !ok {
			return errors.Join(errors.New("recorder: lock the new journal"), err)
		}
		if _, err := f.Write(journalHeader(gen, id)); err != nil {
			return fmt.Errorf("recorder: write the new journal: %w", err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("recorder: sync the new journal: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("recorder: put the new journal in place: %w", err)
		}
		return syncDir(filepath.Dir(path))
	}()
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	return f, nil
}

// rotate replaces the journal with an empty one of the next generation,
// of id next, when every record in it is in the database; it reports
// whether it did.
// Leaders wait meanwhile. The caller then records the new generation in
// the database; should that fail, the next Open still knows the journal
// of the generation after the one recorded for one to ingest from its
// start.
func (j *journal) rotate(next journalID) (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil || j.ingested.Load() != j.end.Load() || j.end.Load() == journalHeaderLen {
		return false, j.err
	}
	f, err := replaceJournal(j.path, j.dbPath, j.gen+1, next)
	if err != nil {
		return false, err
	}
	old := j.f
	j.f, j.gen, j.size = f, j.gen+1, journalHeaderLen
	j.restart(next)
	j.end.Store(journalHeaderLen)
	j.ingested.Store(journalHeaderLen)
	old.Close() // releases its lock; the file is gone
	return true, nil
}

// restart sets the frame seqs and hashes for the empty journal id.
func (j *journal) restart(id journalID) {
	j.id = id
	j.seq, j.hash = 0, startHash(id)
	j.ingSeq, j.ingHash = 0, j.hash
}

// close releases the journal and its lock.
func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	if j.err == nil {
		j.err = ErrClosed
	}
	return err
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("recorder: open the journal's directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("recorder: sync the journal's directory: %w", err)
	}
	return nil
}
