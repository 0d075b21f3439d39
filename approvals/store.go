package approvals

import (
	"context"
	"time"

	"github.com/mcp-guard/mcp-guard/identity"
)

// Store keeps requests and their decisions. Every method is atomic on its
// own; Update is the only read-modify-write and must run in one transaction
// that no other writer can interleave with (an immediate transaction in
// SQLite, SELECT ... FOR UPDATE in PostgreSQL).
type Store interface {
	// Migrate creates the tables if they do not exist.
	Migrate(ctx context.Context) error
	// Insert stores a new request.
	Insert(ctx context.Context, r *Request) error
	// Get returns a request with its decisions, or ErrNotFound.
	Get(ctx context.Context, id string) (*Request, error)
	// Latest returns the newest request of the caller (subject and issuer)
	// with this digest, or ErrNotFound.
	Latest(ctx context.Context, c identity.Caller, digest string) (*Request, error)
	// List returns requests, newest first.
	List(ctx context.Context, f ListFilter) ([]Request, error)
	// Due returns the ids of pending or approved requests whose ExpiresAt is
	// not after now.
	Due(ctx context.Context, now time.Time) ([]string, error)
	// Update loads a request, lets fn change its State, ExpiresAt,
	// Acknowledged, DecidedAt and ExecutedAt and optionally return a new
	// decision, and writes both back in the same transaction. When fn
	// returns an error nothing is written and Update returns the request as
	// loaded together with that error.
	Update(ctx context.Context, id string, fn func(r *Request) (*Decision, error)) (*Request, error)
	// SetMessage records where the Slack message of a request lives.
	SetMessage(ctx context.Context, id string, m Message) error
}

// ListFilter selects requests for List. Zero fields select everything.
type ListFilter struct {
	// State keeps requests in this state, judged at Now: a pending request
	// past its deadline counts as expired.
	State State
	// Subject keeps requests of this caller subject.
	Subject string
	// Limit caps the number of requests; zero means 100.
	Limit int
	// Now is the time states are judged at; the service sets it.
	Now time.Time
}
