package guard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-guard/mcp-guard/approvals"
	"github.com/mcp-guard/mcp-guard/identity"
	"github.com/mcp-guard/mcp-guard/recorder"
)

// In-IDE confirmation. When the policy sends a call for approval and marks
// it confirmable (approval.confirmable), the caller may confirm the call
// themself, through MCP elicitation, instead of waiting for an approver.
// Confirmable therefore means "the caller's own yes is enough": a policy
// sets it only where that is true. A client that cannot elicit goes through
// the ordinary approval flow.
//
// The exchange uses mcp-go's multi round-trip requests: the first call is
// answered with an elicitation request and a state; the client asks the
// user and calls again with the answer and the state. Both travel through
// the client, which may forge or replay them, so the state is signed
// (approvals.SignState) over the caller, the call's digest and an expiry,
// and each state runs at most one call.

const (
	// OutcomeConfirmationAsked is recorded for a call answered with a
	// request for the caller's confirmation. It is never a guard outcome
	// the client sees: the client sees the elicitation request.
	OutcomeConfirmationAsked = "confirmation_asked"

	// DefaultConfirmTTL is how long the caller has to answer.
	DefaultConfirmTTL = 5 * time.Minute

	// confirmInput is the key of the confirmation in the input requests.
	confirmInput = "confirm"
	// confirmField is the boolean the caller sets to confirm.
	confirmField = "confirm"
)

// Events of the confirmation records in the transcript.
const (
	confirmAccepted = "confirmation_accepted"
	confirmDeclined = "confirmation_declined"
	confirmRefused  = "confirmation_refused"
)

// ConfirmationBody is the transcript record (kind approval) of a judged
// confirmation answer. It shares the call id of the call it judged.
type ConfirmationBody struct {
	Event   string          `json:"event"`
	CallID  string          `json:"call_id"`
	Via     string          `json:"via"`
	Caller  identity.Caller `json:"caller"`
	Tool    string          `json:"tool"`
	Target  string          `json:"target"`
	Display string          `json:"display"`
	Digest  string          `json:"digest"`
	Action  string          `json:"action,omitempty"`
	Reason  string          `json:"reason,omitempty"`
}

// confirmations signs confirmation states and remembers the ones spent.
type confirmations struct {
	key []byte
	ttl time.Duration

	// mu guards used: spent states, kept until they expire.
	mu   sync.Mutex
	used map[string]time.Time
}

func newConfirmations(key []byte, ttl time.Duration) (*confirmations, error) {
	if len(key) == 0 {
		return nil, nil
	}
	if len(key) < 32 {
		return nil, errors.New("guard: the confirmation key must be at least 32 bytes")
	}
	if ttl <= 0 {
		ttl = DefaultConfirmTTL
	}
	return &confirmations{key: key, ttl: ttl, used: map[string]time.Time{}}, nil
}

// spend marks state as used and reports whether it was still unused.
func (cs *confirmations) spend(state string, now time.Time) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for s, exp := range cs.used {
		if now.After(exp) {
			delete(cs.used, s)
		}
	}
	if _, ok := cs.used[state]; ok {
		return false
	}
	// A verified state expires within ttl; keep it a little longer.
	cs.used[state] = now.Add(cs.ttl + time.Minute)
	return true
}

// confirm handles a confirmable call. It reports false when confirmation
// does not apply (not confirmable, disabled, or a client that cannot ask
// its user and sent no answer); the call then goes to the approval flow.
func (g *Guard) confirm(ctx context.Context, req mcp.CallToolRequest,
	c *call) (*mcp.CallToolResult, bool) {
	if g.confirms == nil || !c.decision.Approval.Confirmable {
		return nil, false
	}
	mrt := req.Params.MultiRoundTripParams
	answered := len(mrt.InputResponses) > 0 || mrt.RequestState != ""
	if !answered && !canElicit(ctx) {
		return nil, false
	}

	digest, err := approvals.Digest(c.name, targetName(c), mustJSON(c.args))
	if err != nil {
		g.logger.Error("digest for confirmation failed", "call_id", c.id, "error", err)
		return g.answer(ctx, c, nil, &Refusal{Outcome: OutcomeError,
			Reason: "the confirmation could not be prepared"}), true
	}
	if !answered {
		return g.askConfirmation(ctx, c, digest), true
	}
	return g.judgeConfirmation(ctx, c, digest, mrt), true
}

// askConfirmation answers the first call with an elicitation request
// carrying a signed state.
func (g *Guard) askConfirmation(ctx context.Context, c *call, digest string) *mcp.CallToolResult {
	state, err := approvals.SignState(g.confirms.key, c.caller, digest,
		g.now().Add(g.confirms.ttl))
	if err != nil {
		g.logger.Error("signing the confirmation failed", "call_id", c.id, "error", err)
		return g.answer(ctx, c, nil, &Refusal{Outcome: OutcomeError,
			Reason: "the confirmation could not be prepared"})
	}
	out := server.NewInputRequestBuilder(state).Elicit(confirmInput, mcp.ElicitationParams{
		Message: confirmMessage(c, g),
		RequestedSchema: map[string]any{
			"type": "object",
			"properties": map[string]any{
				confirmField: map[string]any{
					"type":        "boolean",
					"title":       "Run this call",
					"description": "Set to true to run the call exactly as shown.",
				},
			},
			"required": []string{confirmField},
		},
	}).ToolResult()

	if err := g.recordCompletion(ctx, c, OutcomeConfirmationAsked, nil, out, nil); err != nil {
		g.logger.Error("recording the completion failed; not asking", "call_id", c.id, "error", err)
		return g.answer(ctx, c, nil, &Refusal{Outcome: OutcomeError,
			Reason: "the call could not be recorded, so it was not run"})
	}
	g.logger.Info("call", "call_id", c.id, "session_id", c.session, "tool", c.name,
		"target", targetName(c), "caller", c.caller.Subject,
		"outcome", OutcomeConfirmationAsked,
		"duration_ms", g.now().Sub(c.started).Milliseconds())
	return out
}

// confirmMessage is what the caller's client shows when asking.
func confirmMessage(c *call, g *Guard) string {
	var b strings.Builder
	fmt.Fprintf(&b, "mcp-guard asks you to confirm this %s call", c.name)
	if t := targetName(c); t != "" {
		fmt.Fprintf(&b, " on target %s", t)
	}
	b.WriteString(":\n\n")
	b.WriteString(g.redactText(c.tool.Display(c.tc)))
	if len(c.decision.Reasons) > 0 {
		b.WriteString("\n\nWhy it needs confirmation: ")
		b.WriteString(strings.Join(c.decision.Reasons, "; "))
	}
	return b.String()
}

// judgeConfirmation checks an answer and runs the call when the caller
// confirmed it with a valid, unused state made for this call.
func (g *Guard) judgeConfirmation(ctx context.Context, c *call, digest string,
	mrt mcp.MultiRoundTripParams) *mcp.CallToolResult {
	now := g.now()
	body := ConfirmationBody{CallID: c.id, Via: approvals.ViaElicitation,
		Caller: c.caller, Tool: c.name, Target: targetName(c),
		Display: g.redactText(c.tool.Display(c.tc)), Digest: digest}
	refuse := func(outcome, reason string) *mcp.CallToolResult {
		body.Event, body.Reason = confirmRefused, reason
		if outcome == OutcomeApprovalDenied {
			body.Event = confirmDeclined
		}
		if err := g.recordConfirmation(ctx, c, body); err != nil {
			g.logger.Error("recording a confirmation failed", "call_id", c.id, "error", err)
		}
		return g.answer(ctx, c, nil, &Refusal{Outcome: outcome, Reason: reason})
	}

	err := approvals.VerifyState(g.confirms.key, mrt.RequestState, c.caller, digest, now)
	switch {
	case errors.Is(err, approvals.ErrStateExpired):
		return refuse(OutcomeDenied, "the confirmation expired; call again to be asked again")
	case err != nil:
		g.logger.Warn("confirmation answer without a valid state", "call_id", c.id,
			"tool", c.name, "caller", c.caller.Subject)
		return refuse(OutcomeDenied, "the confirmation answer was not asked for this "+
			"call; call again without an answer to be asked")
	}
	ans := server.ElicitationResponse(mrt.InputResponses, confirmInput)
	if ans == nil {
		return refuse(OutcomeDenied, "the call carries no answer to the confirmation")
	}
	if !g.confirms.spend(mrt.RequestState, now) {
		return refuse(OutcomeDenied,
			"this confirmation was already used; call again to be asked again")
	}
	body.Action = string(ans.Action)
	if !confirmed(ans) {
		return refuse(OutcomeApprovalDenied, "you did not confirm the call, so it was not run")
	}

	body.Event = confirmAccepted
	if err := g.recordConfirmation(ctx, c, body); err != nil {
		g.logger.Error("recording a confirmation failed; not running",
			"call_id", c.id, "error", err)
		return g.answer(ctx, c, nil, &Refusal{Outcome: OutcomeError,
			Reason: "the confirmation could not be recorded, so the call was not run"})
	}
	return g.run(ctx, c)
}

// confirmed reports whether the answer accepts with confirm set to true.
func confirmed(ans *mcp.ElicitationResult) bool {
	if ans.Action != mcp.ElicitationResponseActionAccept {
		return false
	}
	content, ok := ans.Content.(map[string]any)
	if !ok {
		return false
	}
	yes, ok := content[confirmField].(bool)
	return ok && yes
}

// recordConfirmation commits the confirmation record before anything runs.
func (g *Guard) recordConfirmation(ctx context.Context, c *call, body ConfirmationBody) error {
	return g.rec.Append(context.WithoutCancel(ctx), recorder.KindApproval, c.session, c.id, body)
}

// canElicit reports whether the client declared that it can ask its user.
func canElicit(ctx context.Context) bool {
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern {
		return info.ClientCapabilities != nil && info.ClientCapabilities.Elicitation != nil
	}
	s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo)
	return ok && s.GetClientCapabilities().Elicitation != nil
}
