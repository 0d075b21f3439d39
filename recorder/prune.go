package recorder

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// PruneOptions configure Prune.
type PruneOptions struct {
	// Before is the cut-off: the records older than it, from the start
	// of the chain up to the first record that is not, are deleted.
	Before time.Time
	// SigningKey signs a checkpoint right after the prune record; nil
	// leaves that to the next checkpoint the guard writes.
	SigningKey ed25519.PrivateKey
	// PublicKey is the trusted key for the verification that runs first.
	PublicKey ed25519.PublicKey
	// Now is the clock for the prune record (default time.Now).
	Now func() time.Time
	// DryRun does everything but commit, to report what would go.
	DryRun bool
}

// PruneResult says what Prune did.
type PruneResult struct {
	Deleted   int64 // records deleted
	FirstKept int64 // seq of the first remaining record
	PruneSeq  int64 // seq of the prune record; 0 when nothing was deleted
}

// ErrUnverified is returned by Prune for a transcript that does not
// verify: pruning it would destroy the evidence.
var ErrUnverified = errors.New("recorder: the transcript does not verify")

// Prune deletes whole records older than o.Before from the start of the
// chain, in one transaction that also appends a prune record naming the
// first record kept and the hash it chains to. Verify accepts a chain
// that starts after seq 1 only when the latest prune record says so, so
// a later deletion of old records is still detected, and the prune
// record itself is chained and signed like any other. db must be
// writable (OpenDB). The chain is verified first; Prune refuses one that
// does not verify. Deleted pages are reused by SQLite but the file does
// not shrink until VACUUM.
func Prune(ctx context.Context, db *sql.DB, o PruneOptions) (PruneResult, error) {
	if o.Before.IsZero() {
		return PruneResult{}, errors.New("recorder: prune needs a cut-off time")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	rep, err := Verify(ctx, db, VerifyOptions{PublicKey: o.PublicKey, MaxProblems: 1})
	if err != nil {
		return PruneResult{}, err
	}
	if !rep.OK() {
		return PruneResult{}, fmt.Errorf("%w (%s); not pruning", ErrUnverified, rep.Problems[0])
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return PruneResult{}, fmt.Errorf("recorder: prune: begin: %w", err)
	}
	defer tx.Rollback()
	if err := lockChain(ctx, db, tx); err != nil {
		return PruneResult{}, err
	}
	cut, cutHash, err := findCut(ctx, tx, o.Before)
	if err != nil {
		return PruneResult{}, err
	}
	if cut == 0 {
		return PruneResult{}, nil
	}
	ch, err := openChain(ctx, tx, o.Now().UTC())
	if err != nil {
		return PruneResult{}, err
	}
	defer ch.close()

	del, err := tx.ExecContext(ctx, `DELETE FROM records WHERE seq <= ?`, cut)
	if err != nil {
		return PruneResult{}, fmt.Errorf("recorder: prune: delete: %w", err)
	}
	deleted, err := del.RowsAffected()
	if err != nil {
		return PruneResult{}, fmt.Errorf("recorder: prune: %w", err)
	}
	body, err := json.Marshal(PruneBody{
		Before:            FormatTime(o.Before),
		Deleted:           deleted,
		FirstKeptSeq:      cut + 1,
		FirstKeptPrevHash: cutHash,
	})
	if err != nil {
		return PruneResult{}, fmt.Errorf("recorder: prune: %w", err)
	}
	rec := Record{Kind: KindPrune, Body: body}
	if err := ch.append(ctx, &rec); err != nil {
		return PruneResult{}, err
	}
	if o.SigningKey != nil {
		if err := ch.checkpoint(ctx, o.SigningKey); err != nil {
			return PruneResult{}, err
		}
	}
	if !isPostgres(db) {
		if err := pruneKeys(ctx, tx, cut, ch.seq); err != nil {
			return PruneResult{}, err
		}
	}
	res := PruneResult{Deleted: deleted, FirstKept: cut + 1, PruneSeq: rec.Seq}
	if o.DryRun {
		return res, nil // the deferred rollback undoes it all
	}
	if err := tx.Commit(); err != nil {
		return PruneResult{}, fmt.Errorf("recorder: prune: commit: %w", err)
	}
	return res, nil
}

// pruneKeys deletes the key rows of the records pruned, up to seq cut,
// and catches up record_keys to seq head, in the prune's transaction. It
// creates record_keys for a transcript no guard of this version opened.
func pruneKeys(ctx context.Context, tx *sql.Tx, cut, head int64) error {
	if _, err := tx.ExecContext(ctx, keysSchema); err != nil {
		return fmt.Errorf("recorder: prune: create record keys: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM record_keys WHERE seq <= ?`, cut); err != nil {
		return fmt.Errorf("recorder: prune: delete record keys: %w", err)
	}
	return catchUpKeys(ctx, tx, head)
}

// findCut returns the last seq of the leading run of records older than
// before, and its hash; 0 when the first record is not older. Times are
// compared parsed, since their text does not sort.
func findCut(ctx context.Context, tx *sql.Tx, before time.Time) (int64, string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, at, hash FROM records ORDER BY seq`)
	if err != nil {
		return 0, "", fmt.Errorf("recorder: prune: %w", err)
	}
	defer rows.Close()
	var cut int64
	var cutHash string
	for rows.Next() {
		var seq int64
		var at, hash string
		if err := rows.Scan(&seq, &at, &hash); err != nil {
			return 0, "", fmt.Errorf("recorder: prune: %w", err)
		}
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return 0, "", fmt.Errorf("recorder: prune: record %d: bad time %q", seq, at)
		}
		if !t.Before(before) {
			break
		}
		cut, cutHash = seq, hash
	}
	if err := rows.Err(); err != nil {
		return 0, "", fmt.Errorf("recorder: prune: %w", err)
	}
	return cut, cutHash, nil
}
