package guard

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-guard/mcp-guard/approvals"
)

// ApprovalFlow is the Approver backed by the approvals service: it opens
// (or resumes) the request for this exact call, reports progress while it
// waits, and lets the call run once, when approved.
type ApprovalFlow struct {
	Service *approvals.Service
	// Channel picks the Slack channel for a target when the decision
	// names none; it may return "" for the default channel.
	Channel func(target string) string
	// Key binds a request to the exact arguments without storing them:
	// the stored arguments are redacted, so an HMAC of the real ones
	// is stored beside them and covered by the request's digest.
	Key    []byte
	Redact func(args map[string]any) any
	Logger *slog.Logger
}

// pendingMessage is what the model reads when the wait ends first.
const pendingMessage = "call again with the same arguments to continue"

// Approve implements Approver.
func (f *ApprovalFlow) Approve(ctx context.Context, req mcp.CallToolRequest, info CallInfo) (string, *Refusal) {
	spec := info.Decision.Approval
	args, err := f.storedArguments(info.Arguments)
	if err != nil {
		return "", &Refusal{Outcome: OutcomeError, Reason: "the approval request could not be prepared"}
	}
	channel := spec.Channel
	if channel == "" && f.Channel != nil {
		channel = f.Channel(info.Target)
	}
	r, err := f.Service.Open(ctx, approvals.Request{
		Caller:    info.Caller,
		Tool:      info.Tool,
		Target:    info.Target,
		Arguments: args,
		Display:   info.Display,
		Reasons:   info.Decision.Reasons,
		Approvers: approvals.Approvers{Emails: spec.Emails, Groups: spec.Groups},
		Required:  spec.Required,
		Channel:   channel,
	})
	switch {
	case errors.Is(err, approvals.ErrNoApprovers):
		return "", &Refusal{Outcome: OutcomeApprovalDenied, Reason: "this call needs approval (" +
			strings.Join(info.Decision.Reasons, "; ") + "), and nobody configured may approve it"}
	case errors.Is(err, approvals.ErrTooLong):
		return "", &Refusal{Outcome: OutcomeDenied, Reason: "the command is too long to show approvers in full; split it into shorter calls"}
	case err != nil:
		f.Logger.Error("opening an approval request failed", "call_id", info.ID, "error", err)
		return "", &Refusal{Outcome: OutcomeError, Reason: "the approval request could not be opened"}
	}
	if r.State == approvals.StatePending {
		// Wait may return a nil request with its error; keep the id.
		id := r.ID
		r, err = f.Service.Wait(ctx, id, f.progress(ctx, req, id))
		if err != nil {
			if ctx.Err() != nil {
				return "", &Refusal{Outcome: OutcomeApprovalPending, RequestID: id,
					Reason: "the call was cancelled while waiting for approval; " + pendingMessage}
			}
			f.Logger.Error("waiting for approval failed", "request_id", id, "error", err)
			return "", &Refusal{Outcome: OutcomeError, RequestID: id, Reason: "waiting for approval failed"}
		}
	}
	return f.settle(ctx, r)
}

// settle turns the request's state into a go-ahead or a refusal.
func (f *ApprovalFlow) settle(ctx context.Context, r *approvals.Request) (string, *Refusal) {
	switch r.State {
	case approvals.StatePending:
		return "", &Refusal{Outcome: OutcomeApprovalPending, RequestID: r.ID,
			Reason: fmt.Sprintf("approval request %s is waiting for a decision (expires %s); %s",
				r.ID, r.ExpiresAt.UTC().Format(time.RFC3339), pendingMessage)}
	case approvals.StateApproved:
		claimed, err := f.Service.Claim(ctx, r.ID)
		if err != nil {
			if errors.Is(err, approvals.ErrAlreadyExecuted) {
				return "", &Refusal{Outcome: OutcomeApprovalExpired, RequestID: r.ID,
					Reason: "this approval was already used; call again to ask for a new one"}
			}
			// The approval ran out between reading and claiming it.
			if errors.Is(err, approvals.ErrExpired) {
				return "", &Refusal{Outcome: OutcomeApprovalExpired, RequestID: r.ID,
					Reason: "the approval expired before the call could run; call again to ask for a new one"}
			}
			f.Logger.Error("claiming an approval failed", "request_id", r.ID, "error", err)
			return "", &Refusal{Outcome: OutcomeError, RequestID: r.ID, Reason: "the approval could not be claimed"}
		}
		return claimed.ID, nil
	case approvals.StateDenied:
		by := []string{}
		for _, d := range r.Decisions {
			if !d.Approve {
				by = append(by, d.Approver)
			}
		}
		return "", &Refusal{Outcome: OutcomeApprovalDenied, RequestID: r.ID,
			Reason: "denied by " + strings.Join(by, ", ")}
	case approvals.StateExpired:
		return "", &Refusal{Outcome: OutcomeApprovalExpired, RequestID: r.ID,
			Reason: "nobody decided in time; call again to ask for a new approval"}
	}
	return "", &Refusal{Outcome: OutcomeError, RequestID: r.ID, Reason: "the approval request is in an unexpected state"}
}

// storedArguments returns what the request keeps of the arguments: the
// redacted form people may read, and an HMAC of the exact arguments, so
// that a call with any other arguments is another request.
func (f *ApprovalFlow) storedArguments(args map[string]any) (json.RawMessage, error) {
	exact, err := approvals.Canonical(mustJSON(args))
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, f.Key)
	mac.Write(exact)
	stored := map[string]any{
		"arguments": f.Redact(args),
		"binding":   "hmac-sha256:" + hex.EncodeToString(mac.Sum(nil)),
	}
	return json.Marshal(stored)
}

// progress returns a callback that sends MCP progress notifications while
// the call waits, when the client asked for them.
func (f *ApprovalFlow) progress(ctx context.Context, req mcp.CallToolRequest, id string) func(elapsed, total time.Duration) {
	if req.Params.Meta == nil || req.Params.Meta.ProgressToken == nil {
		return nil
	}
	token := req.Params.Meta.ProgressToken
	srv := server.ServerFromContext(ctx)
	if srv == nil {
		return nil
	}
	return func(elapsed, total time.Duration) {
		err := srv.SendNotificationToClient(ctx, "notifications/progress", map[string]any{
			"progressToken": token,
			"progress":      elapsed.Seconds(),
			"total":         total.Seconds(),
			"message":       "waiting for approval of request " + id,
		})
		if err != nil {
			f.Logger.Debug("progress notification failed", "request_id", id, "error", err)
		}
	}
}
