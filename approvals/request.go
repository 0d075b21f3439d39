// Package approvals lets a person other than the caller approve or deny one
// exact tool call before it runs.
//
// A call that the policy sends for approval becomes a Request, keyed by the
// caller and a digest of the call (tool, target and canonical arguments). The
// request is stored, shown to approvers (usually in Slack), decided by them,
// and finally claimed once by the guard right before the call runs with the
// stored arguments. Requests expire when nobody decides them in time.
package approvals

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mcp-guard/mcp-guard/identity"
)

// State is where a request stands in its life.
type State string

// The states of a request. Pending is the only state a decision can change;
// approved leads to executed through Claim; denied, expired and executed are
// final.
const (
	StatePending  State = "pending"
	StateApproved State = "approved"
	StateDenied   State = "denied"
	StateExpired  State = "expired"
	StateExecuted State = "executed"
)

// The channels a decision can arrive through.
const (
	ViaSlack       = "slack"
	ViaCLI         = "cli"
	ViaElicitation = "elicitation"
)

// Approvers says who may decide a request: anyone whose email is listed, or
// anyone the directory (Options.People) puts in a listed group. Empty means
// nobody, never everybody.
type Approvers struct {
	Emails []string `json:"emails,omitempty"`
	Groups []string `json:"groups,omitempty"`
}

// Person is an entry of the approver directory, or the identity of someone
// deciding a request. Subject and Issuer are optional OIDC identifiers that
// help to recognise a requester who clicks their own request in Slack.
type Person struct {
	Email     string   `json:"email" yaml:"email"`
	SlackUser string   `json:"slack_user,omitempty" yaml:"slack_user"`
	Groups    []string `json:"groups,omitempty" yaml:"groups"`
	Subject   string   `json:"subject,omitempty" yaml:"subject"`
	Issuer    string   `json:"issuer,omitempty" yaml:"issuer"`
}

// Decision is one approver's answer to a request.
type Decision struct {
	// Approver is the lower-cased email of the person who decided; it is the
	// key that makes each approver count once.
	Approver  string    `json:"approver"`
	SlackUser string    `json:"slack_user,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	Issuer    string    `json:"issuer,omitempty"`
	Approve   bool      `json:"approve"`
	Via       string    `json:"via"`
	At        time.Time `json:"at"`
}

// Message locates the Slack message that shows a request.
type Message struct {
	Channel string `json:"channel,omitempty"`
	TS      string `json:"ts,omitempty"`
}

// Request is one call waiting for, or having had, a human decision.
type Request struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is, while pending, the deadline for a decision. Once the
	// request is approved or denied it is moved to the decision time plus
	// Options.Expiry: until then an approval can be claimed and a denial is
	// repeated to re-calls.
	ExpiresAt time.Time `json:"expires_at"`

	Caller identity.Caller `json:"caller"`
	Tool   string          `json:"tool"`
	Target string          `json:"target"`
	// Arguments is the canonical JSON of the call's arguments; the guard
	// runs an approved call with exactly these.
	Arguments json.RawMessage `json:"arguments"`
	// Digest is the hex SHA-256 that Digest computes over tool, target and
	// arguments.
	Digest string `json:"digest"`
	// Display is the full SQL or command text shown to approvers, already
	// masked by whoever opened the request.
	Display string   `json:"display"`
	Reasons []string `json:"reasons,omitempty"`

	Approvers Approvers `json:"approvers"`
	// Required is how many distinct approvers must approve; zero means one.
	Required int `json:"required"`
	// Channel is the Slack channel to post in; empty means the notifier's
	// default.
	Channel string `json:"channel,omitempty"`

	State     State      `json:"state"`
	Decisions []Decision `json:"decisions,omitempty"`
	// Acknowledged is set once the caller has been told that the request
	// expired; the next call then opens a new request.
	Acknowledged bool      `json:"acknowledged,omitempty"`
	DecidedAt    time.Time `json:"decided_at,omitzero"`
	ExecutedAt   time.Time `json:"executed_at,omitzero"`
	Message      Message   `json:"message,omitzero"`
}

// Approvals returns the approving decisions of r.
func (r *Request) Approvals() []Decision {
	var out []Decision
	for _, d := range r.Decisions {
		if d.Approve {
			out = append(out, d)
		}
	}
	return out
}

// clone returns a deep copy of r, so callers and events cannot change what
// the service holds.
func (r *Request) clone() *Request {
	c := *r
	c.Arguments = append([]byte(nil), r.Arguments...)
	c.Reasons = append([]string(nil), r.Reasons...)
	c.Approvers.Emails = append([]string(nil), r.Approvers.Emails...)
	c.Approvers.Groups = append([]string(nil), r.Approvers.Groups...)
	c.Decisions = append([]Decision(nil), r.Decisions...)
	c.Caller.Groups = append([]string(nil), r.Caller.Groups...)
	return &c
}

// due reports whether r has passed its deadline without reaching a final
// state: a pending request nobody decided, or an approval nobody claimed.
func (r *Request) due(now time.Time) bool {
	live := r.State == StatePending || r.State == StateApproved
	return live && !now.Before(r.ExpiresAt)
}

// Errors returned by the service. Callers branch on them with errors.Is.
var (
	ErrNotFound        = errors.New("approvals: request not found")
	ErrNotPending      = errors.New("approvals: request is not pending")
	ErrNotApproved     = errors.New("approvals: request is not approved")
	ErrSelfApproval    = errors.New("approvals: the requester cannot decide their own request")
	ErrNotApprover     = errors.New("approvals: not an approver for this request")
	ErrAlreadyDecided  = errors.New("approvals: approver already decided this request")
	ErrExpired         = errors.New("approvals: request expired")
	ErrAlreadyExecuted = errors.New("approvals: request already executed")
	ErrNoApprovers     = errors.New("approvals: nobody can approve this call")
	ErrTooLong         = errors.New("approvals: command too long to show approvers in full")
)

// StateError reports that a request is not in the state an operation needs.
// It matches ErrNotPending or ErrNotApproved, whichever state was wanted.
type StateError struct {
	ID    string
	State State
	want  State
}

// Error says which state the request is in.
func (e *StateError) Error() string {
	return fmt.Sprintf("approvals: request %s is %s, not %s", e.ID, e.State, e.want)
}

// Is matches the sentinel for the wanted state.
func (e *StateError) Is(target error) bool {
	switch e.want {
	case StatePending:
		return target == ErrNotPending
	case StateApproved:
		return target == ErrNotApproved
	}
	return false
}
