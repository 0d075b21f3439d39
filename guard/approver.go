package guard

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-guard/mcp-guard/identity"
	"github.com/mcp-guard/mcp-guard/policy"
)

// CallInfo is what an approval workflow knows of a call.
type CallInfo struct {
	ID        string
	SessionID string
	Caller    identity.Caller
	Tool      string
	Target    string
	Arguments map[string]any
	// Display is the exact SQL, command or path, masked as the model and
	// the transcript see it.
	Display  string
	Decision policy.Decision
}

// Approver asks people to approve a call. Approve blocks until the call
// may run, returning the request id, or returns the refusal to answer
// (approval_pending, approval_denied, approval_expired).
type Approver interface {
	Approve(ctx context.Context, req mcp.CallToolRequest, info CallInfo) (requestID string, refusal *Refusal)
}

func (c *call) info(g *Guard) CallInfo {
	return CallInfo{
		ID:        c.id,
		SessionID: c.session,
		Caller:    c.caller,
		Tool:      c.name,
		Target:    targetName(c),
		Arguments: c.args,
		Display:   g.redactText(c.tool.Display(c.tc)),
		Decision:  c.decision,
	}
}
