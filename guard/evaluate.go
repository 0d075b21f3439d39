package guard

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-guard/mcp-guard/identity"
	"github.com/mcp-guard/mcp-guard/policy"
)

// Evaluation is what the guard decides about a call without running it.
type Evaluation struct {
	// Refusal is set when the call stops before policy (invalid arguments,
	// unknown target, unparsable SQL or command).
	Refusal  *Refusal        `json:"refusal,omitempty"`
	Facts    any             `json:"facts,omitempty"`
	Input    map[string]any  `json:"input,omitempty"`
	Decision policy.Decision `json:"decision"`
}

// Evaluate runs the chain up to the decision for a call by caller: it
// validates, gathers facts and asks the policy, but records and runs
// nothing. Policy authors and audit replay use it.
func (g *Guard) Evaluate(ctx context.Context, caller identity.Caller, tool string, args map[string]any) Evaluation {
	c := &call{id: newID(), started: g.now(), name: tool, caller: caller}
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	if ref := g.validate(req, c); ref != nil {
		return Evaluation{Refusal: ref, Decision: policy.Deny(ref.Reason)}
	}
	if ref := g.gatherFacts(ctx, c); ref != nil {
		return Evaluation{Refusal: ref, Decision: policy.Deny(ref.Reason)}
	}
	g.decide(ctx, c)
	return Evaluation{Facts: c.facts, Input: c.input, Decision: c.decision}
}
