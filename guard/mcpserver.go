package guard

import (
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Instructions tell the model how to work with the guard.
const Instructions = "mcp-guard runs SQL, shell commands and file reads on configured targets " +
	"for you. Call list_targets first. Every call is checked against policy and recorded; " +
	"a call that does not run comes back with isError and structuredContent.guard saying " +
	"why (denied, invalid, approval_pending, approval_denied, approval_expired, error). " +
	"After approval_pending, call again with exactly the same arguments to continue."

// NewMCPServer returns an MCP server that offers the guard's tools, each
// call going through g.Handle.
func NewMCPServer(g *Guard, version string) *server.MCPServer {
	s := server.NewMCPServer("mcp-guard", version,
		server.WithToolCapabilities(false),
		server.WithRecovery(),
		server.WithInstructions(Instructions),
	)
	for _, t := range g.Tools() {
		spec := t.Spec()
		readOnly := spec.ReadOnly
		destructive := !spec.ReadOnly
		openWorld := false
		s.AddTool(mcp.Tool{
			Name:            spec.Name,
			Title:           spec.Title,
			Description:     spec.Description,
			RawInputSchema:  spec.Input,
			RawOutputSchema: spec.Output,
			Annotations: mcp.ToolAnnotation{
				Title:           spec.Title,
				ReadOnlyHint:    &readOnly,
				DestructiveHint: &destructive,
				OpenWorldHint:   &openWorld,
			},
		}, g.Handle)
	}
	return s
}
