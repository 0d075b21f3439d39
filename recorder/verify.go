package recorder

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Problem types Verify reports.
const (
	// ProblemEdited: the record's content no longer matches its hash.
	ProblemEdited = "edited"
	// ProblemDeleted: records are missing (a gap in seq, or records
	// before the first one that no prune record accounts for).
	ProblemDeleted = "deleted"
	// ProblemReordered: the record is intact but sits at another seq
	// than the one it was written at.
	ProblemReordered = "reordered"
	// ProblemBrokenLink: the record is intact but does not chain to the
	// record before it: that record was rewritten with a fresh hash, or
	// records were removed and the rest renumbered.
	ProblemBrokenLink = "broken_link"
	// ProblemBadCheckpoint: a checkpoint does not name the head it
	// follows, or cannot be read.
	ProblemBadCheckpoint = "bad_checkpoint"
	// ProblemBadSignature: a checkpoint's signature does not verify.
	ProblemBadSignature = "bad_signature"
	// ProblemUnknownKey: a checkpoint is signed by another key than the
	// trusted one.
	ProblemUnknownKey = "unknown_key"
)

// Problem is one thing wrong with the chain, located at a record.
type Problem struct {
	Seq    int64  `json:"seq"`
	Kind   string `json:"kind,omitempty"` // empty when the record is gone
	Type   string `json:"type"`
	Detail string `json:"detail"`
}

// String says where the problem is and what it is, on one line.
func (p Problem) String() string {
	kind := p.Kind
	if kind == "" {
		kind = "missing"
	}
	return fmt.Sprintf("seq %d (%s): %s: %s", p.Seq, kind, p.Type, p.Detail)
}

// CheckpointInfo locates a checkpoint.
type CheckpointInfo struct {
	Seq       int64  `json:"seq"`
	UptoSeq   int64  `json:"upto_seq"`
	PublicKey string `json:"public_key"`
}

// KeyChange is a checkpoint signed by another key than the one before it.
type KeyChange struct {
	Seq  int64  `json:"seq"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Report is what Verify found.
type Report struct {
	Records  int64  `json:"records"`
	FirstSeq int64  `json:"first_seq"`
	LastSeq  int64  `json:"last_seq"`
	HeadHash string `json:"head_hash"`
	// PrunedThrough is the last seq removed by a prune that a prune
	// record accounts for; 0 when nothing was pruned.
	PrunedThrough int64 `json:"pruned_through,omitempty"`
	Checkpoints   int64 `json:"checkpoints"`
	// SignedThrough is the highest seq a valid checkpoint signs; records
	// after it are chained but not yet signed.
	SignedThrough  int64           `json:"signed_through"`
	LastCheckpoint *CheckpointInfo `json:"last_checkpoint,omitempty"`
	// TrustedKey says whether signatures were checked against a key the
	// caller supplied (true) or only against the keys the checkpoints
	// name, which proves nothing against someone who can write the
	// database and sign with a key of their own.
	TrustedKey bool        `json:"trusted_key"`
	KeyChanges []KeyChange `json:"key_changes,omitempty"`
	// Problems are the first problems found, in seq order; ProblemCount
	// counts them all.
	Problems     []Problem `json:"problems,omitempty"`
	ProblemCount int       `json:"problem_count"`
}

// OK reports whether the chain verified without a problem.
func (r Report) OK() bool { return r.ProblemCount == 0 }

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// PublicKey is the trusted checkpoint key; nil checks each
	// signature against the key its checkpoint names and reports
	// changes of key in KeyChanges.
	PublicKey ed25519.PublicKey
	// FromSeq starts the walk at this seq, trusting that record's link to
	// the one before; 0 walks the whole chain.
	FromSeq int64
	// MaxProblems caps Report.Problems (default 20).
	MaxProblems int
}

// maxDiagnoses caps the extra look-ups made to tell a moved record from
// an edited one; each is a scan of the table.
const maxDiagnoses = 3

// Verify walks the chain in seq order and checks every hash, every link,
// seq contiguity, the prune anchor and every checkpoint signature. It
// streams, so memory stays bounded whatever the size of the transcript.
// An error means the database could not be read; what is wrong with the
// chain is in the report.
func Verify(ctx context.Context, db *sql.DB, opts VerifyOptions) (Report, error) {
	if opts.MaxProblems <= 0 {
		opts.MaxProblems = 20
	}
	v := &verifier{db: db, opts: opts}
	v.rep.TrustedKey = opts.PublicKey != nil
	rows, err := db.QueryContext(ctx, `SELECT seq, at, kind, session_id, call_id,
		body, prev_hash, hash FROM records WHERE seq >= ? ORDER BY seq`, opts.FromSeq)
	if err != nil {
		return Report{}, fmt.Errorf("recorder: verify: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r row
		var body sql.RawBytes
		err := rows.Scan(&r.seq, &r.at, &r.kind, &r.session, &r.call, &body, &r.prev, &r.hash)
		if err != nil {
			return Report{}, fmt.Errorf("recorder: verify: read record: %w", err)
		}
		r.body = body
		v.step(ctx, r)
	}
	if err := rows.Err(); err != nil {
		return Report{}, fmt.Errorf("recorder: verify: %w", err)
	}
	v.finish()
	return v.rep, nil
}

// row is a record as stored; body is only valid during one step.
type row struct {
	seq                     int64
	at, kind, session, call string
	body                    []byte
	prev, hash              string
}

type verifier struct {
	db   *sql.DB
	opts VerifyOptions
	rep  Report

	firstPrev, firstKind string
	lastSeq              int64
	lastHash, lastKind   string
	lastBad              bool // the previous record already had a problem
	lastKey              ed25519.PublicKey
	prune                *PruneBody
	diagnoses            int
}

func (v *verifier) step(ctx context.Context, r row) {
	v.rep.Records++
	first := v.rep.Records == 1
	bad := false
	problem := func(p Problem) {
		bad = true
		v.add(p)
	}

	selfOK := hashText(r.seq, r.at, r.kind, r.session, r.call, r.prev, r.body) == r.hash &&
		!strings.ContainsAny(r.at+r.kind+r.session+r.call+r.prev, "\r\n")
	switch {
	case first:
		v.rep.FirstSeq, v.firstPrev, v.firstKind = r.seq, r.prev, r.kind
		if !selfOK {
			problem(v.diagnose(ctx, r))
		} else if r.seq == 1 && r.prev != GenesisHash {
			problem(Problem{Seq: r.seq, Kind: r.kind, Type: ProblemBrokenLink,
				Detail: "the first record does not start from the genesis hash"})
		}
	case r.seq != v.lastSeq+1:
		problem(Problem{Seq: v.lastSeq + 1, Type: ProblemDeleted,
			Detail: fmt.Sprintf("%s missing between seq %d (%s) and seq %d (%s)",
				missing(v.lastSeq+1, r.seq-1), v.lastSeq, v.lastKind, r.seq, r.kind)})
		if !selfOK {
			problem(v.diagnose(ctx, r))
		}
	case !selfOK:
		problem(v.diagnose(ctx, r))
	case r.prev != v.lastHash && !v.lastBad:
		problem(Problem{Seq: r.seq, Kind: r.kind, Type: ProblemBrokenLink,
			Detail: fmt.Sprintf("its prev_hash is not the hash of seq %d (%s): that record "+
				"was rewritten with a fresh hash, or records were removed and renumbered",
				v.lastSeq, v.lastKind)})
	}

	switch r.kind {
	case KindCheckpoint:
		if !v.checkpoint(r) {
			bad = true
		}
	case KindPrune:
		if pb, err := ParsePruneBody(r.body); err == nil {
			v.prune = &pb
		}
	}
	v.lastSeq, v.lastHash, v.lastKind, v.lastBad = r.seq, r.hash, r.kind, bad
	v.rep.LastSeq, v.rep.HeadHash = r.seq, r.hash
}

// checkpoint checks a checkpoint record; false when it has a problem.
func (v *verifier) checkpoint(r row) bool {
	v.rep.Checkpoints++
	fail := func(typ, detail string) bool {
		v.add(Problem{Seq: r.seq, Kind: r.kind, Type: typ, Detail: detail})
		return false
	}
	c, err := ParseCheckpoint(r.body)
	if err != nil {
		return fail(ProblemBadCheckpoint, "its body is not a checkpoint")
	}
	v.rep.LastCheckpoint = &CheckpointInfo{Seq: r.seq, UptoSeq: c.UptoSeq, PublicKey: c.PublicKey}
	if v.rep.Records > 1 && (c.UptoSeq != v.lastSeq || c.HeadHash != v.lastHash) {
		return fail(ProblemBadCheckpoint, fmt.Sprintf("it signs seq %d with hash %.12s…, "+
			"but the record before it is seq %d with hash %.12s…: records up to it "+
			"were changed after it was signed", c.UptoSeq, c.HeadHash, v.lastSeq, v.lastHash))
	}
	named, err := c.Key()
	if err != nil {
		return fail(ProblemBadCheckpoint, err.Error())
	}
	key := named
	if v.opts.PublicKey != nil {
		if !bytes.Equal(named, v.opts.PublicKey) {
			return fail(ProblemUnknownKey, fmt.Sprintf(
				"signed by key %.16s…, not the trusted key %.16s…",
				c.PublicKey, hex.EncodeToString(v.opts.PublicKey)))
		}
		key = v.opts.PublicKey
	} else if v.lastKey != nil && !bytes.Equal(v.lastKey, named) && len(v.rep.KeyChanges) < 100 {
		v.rep.KeyChanges = append(v.rep.KeyChanges, KeyChange{Seq: r.seq,
			From: hex.EncodeToString(v.lastKey), To: c.PublicKey})
	}
	v.lastKey = named
	if !c.Check(key) {
		return fail(ProblemBadSignature, fmt.Sprintf("the signature over seq %d does not verify", c.UptoSeq))
	}
	if c.UptoSeq > v.rep.SignedThrough {
		v.rep.SignedThrough = c.UptoSeq
	}
	return true
}

// diagnose names a record whose hash does not match: moved from another
// seq when its hash matches there, edited otherwise.
func (v *verifier) diagnose(ctx context.Context, r row) Problem {
	edited := Problem{Seq: r.seq, Kind: r.kind, Type: ProblemEdited,
		Detail: "its content does not match its hash"}
	var candidates []int64
	if r.prev == GenesisHash {
		candidates = append(candidates, 1)
	} else if v.diagnoses < maxDiagnoses {
		v.diagnoses++
		// The record written before this one has its prev_hash as hash.
		// No index has hashes: this scans records, which maxDiagnoses
		// bounds.
		var q int64
		err := v.db.QueryRowContext(ctx, `SELECT seq FROM records WHERE hash = ? LIMIT 1`,
			r.prev).Scan(&q)
		if err == nil {
			candidates = append(candidates, q+1, q)
		}
	}
	for _, s := range candidates {
		if s != r.seq && hashText(s, r.at, r.kind, r.session, r.call, r.prev, r.body) == r.hash {
			return Problem{Seq: r.seq, Kind: r.kind, Type: ProblemReordered,
				Detail: fmt.Sprintf("it was written as seq %d", s)}
		}
	}
	return edited
}

// finish checks the prune anchor: a chain that does not start at seq 1
// must start where the latest prune record says it does.
func (v *verifier) finish() {
	if v.opts.FromSeq > 0 || v.rep.Records == 0 || v.rep.FirstSeq == 1 {
		return
	}
	p := v.prune
	if p != nil && p.FirstKeptSeq == v.rep.FirstSeq && p.FirstKeptPrevHash == v.firstPrev {
		v.rep.PrunedThrough = v.rep.FirstSeq - 1
		return
	}
	switch {
	case p == nil:
		v.add(Problem{Seq: 1, Type: ProblemDeleted,
			Detail: missing(1, v.rep.FirstSeq-1) + " missing before the first record " +
				"and no prune record accounts for that"})
	case p.FirstKeptSeq < v.rep.FirstSeq:
		v.add(Problem{Seq: p.FirstKeptSeq, Type: ProblemDeleted,
			Detail: fmt.Sprintf("%s missing: the latest prune record kept seq %d onwards",
				missing(p.FirstKeptSeq, v.rep.FirstSeq-1), p.FirstKeptSeq)})
	default:
		v.add(Problem{Seq: v.rep.FirstSeq, Kind: v.firstKind, Type: ProblemBrokenLink,
			Detail: fmt.Sprintf("the first record is not the one the latest prune record "+
				"kept (seq %d, after hash %.12s…)", p.FirstKeptSeq, p.FirstKeptPrevHash)})
	}
}

// add keeps the first MaxProblems problems in seq order.
func (v *verifier) add(p Problem) {
	v.rep.ProblemCount++
	ps := append(v.rep.Problems, p)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Seq < ps[j].Seq })
	if len(ps) > v.opts.MaxProblems {
		ps = ps[:v.opts.MaxProblems]
	}
	v.rep.Problems = ps
}

// missing says which seqs are gone, as the start of a sentence.
func missing(from, to int64) string {
	if from == to {
		return fmt.Sprintf("record %d is", from)
	}
	return fmt.Sprintf("records %d-%d are", from, to)
}

// PruneBody is the body of a prune record.
type PruneBody struct {
	// Before is the cut-off: records older than it were deleted (RFC 3339).
	Before string `json:"before"`
	// Deleted is how many records the prune removed.
	Deleted int64 `json:"deleted"`
	// FirstKeptSeq and FirstKeptPrevHash anchor the chain: the first
	// remaining record and the hash of the last deleted one.
	FirstKeptSeq      int64  `json:"first_kept_seq"`
	FirstKeptPrevHash string `json:"first_kept_prev_hash"`
}

// ParsePruneBody decodes a prune record's body.
func ParsePruneBody(body []byte) (PruneBody, error) {
	var p PruneBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return PruneBody{}, fmt.Errorf("recorder: prune body: %w", err)
	}
	return p, nil
}
