// Package tools implements the guarded tools: query_database, run_shell,
// read_file and list_targets. Each tool declares its schemas, gathers the
// facts the policy decides on, and runs a call once the guard allows it.
// Tools know nothing of policy, approvals or recording: the guard chain
// wraps them.
package tools

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/policy"
)

// Tool names.
const (
	ListTargets   = "list_targets"
	QueryDatabase = "query_database"
	RunShell      = "run_shell"
	ReadFile      = "read_file"
)

// Spec describes a tool to MCP clients.
type Spec struct {
	Name        string
	Title       string
	Description string
	// Input and Output are JSON Schemas. Output accepts the guard's
	// refusal object too, since clients validate error results against it.
	Input  json.RawMessage
	Output json.RawMessage
	// Kinds are the target kinds the tool accepts; empty for none.
	Kinds    []string
	ReadOnly bool
}

// Call is one validated tool call.
type Call struct {
	Tool   string
	Target *config.Target // nil for list_targets
	Args   map[string]any
}

// String returns the string argument name, or "".
func (c *Call) String(name string) string {
	s, _ := c.Args[name].(string)
	return s
}

// Int returns the integer argument name, or def when absent.
func (c *Call) Int(name string, def int) int {
	switch v := c.Args[name].(type) {
	case float64:
		return int(v)
	case int:
		return v
	case json.Number:
		n, err := v.Int64()
		if err == nil {
			return int(n)
		}
	}
	return def
}

// Limits are the effective ceilings for one call: the configured ones,
// lowered by the policy decision.
type Limits struct {
	MaxRows        int
	TimeoutSeconds int
	MaxOutputBytes int
	MaxFileBytes   int
}

// Effective combines configured ceilings with a decision's limits, taking
// the lower of each; a call's own argument can lower them further.
func Effective(cfg config.Limits, d policy.Limits) Limits {
	l := Limits{
		MaxRows:        cfg.MaxRows,
		TimeoutSeconds: int(cfg.Timeout.Seconds()),
		MaxOutputBytes: cfg.MaxOutputBytes,
		MaxFileBytes:   cfg.MaxFileBytes,
	}
	l.MaxRows = lower(l.MaxRows, d.MaxRows)
	l.TimeoutSeconds = lower(l.TimeoutSeconds, d.TimeoutSeconds)
	l.MaxOutputBytes = lower(l.MaxOutputBytes, d.MaxOutputBytes)
	l.MaxFileBytes = lower(l.MaxFileBytes, d.MaxOutputBytes)
	if l.TimeoutSeconds < 1 {
		l.TimeoutSeconds = 1
	}
	return l
}

func lower(ceiling, v int) int {
	if v > 0 && v < ceiling {
		return v
	}
	return ceiling
}

// Result is what a tool returns. Its readable text is made by Render from
// the structured content, after the guard has masked it.
type Result struct {
	Structured map[string]any
	// Failed marks a result of the tool's own shape that reports a failure
	// (a non-zero exit is not one; a SQL error is).
	Failed bool
	// Columns describes query_database result columns, with the table
	// column each was read from where PostgreSQL reports it.
	Columns []Column
	// TableColumns returns the column names of a table named as the SQL
	// facts name it ("customers", "public.customers"), read from the
	// target's catalogue and cached; ok is false when the table is unknown
	// or the catalogue could not be read. The masker needs it for
	// whole-row values. Nil for tools other than query_database.
	TableColumns func(table string) (cols []string, ok bool)
}

// Refusal stops a call before it runs. Outcome is "invalid" or "denied";
// Reason is safe to show to the model.
type Refusal struct {
	Outcome string
	Reason  string
}

func (r *Refusal) Error() string { return r.Outcome + ": " + r.Reason }

// Invalid returns a Refusal for bad arguments.
func Invalid(format string, args ...any) *Refusal {
	return &Refusal{Outcome: "invalid", Reason: fmt.Sprintf(format, args...)}
}

// Denied returns a Refusal that the guard reports as denied.
func Denied(format string, args ...any) *Refusal {
	return &Refusal{Outcome: "denied", Reason: fmt.Sprintf(format, args...)}
}

// Tool is a guarded tool.
type Tool interface {
	Spec() Spec
	// Facts parses the call and returns what the policy sees, under the
	// input key named by the first result ("sql", "shell", "file"). A
	// *Refusal stops the call before policy.
	Facts(ctx context.Context, c *Call) (key string, facts any, err error)
	// Display is the exact text an approver is shown (SQL, command or
	// path), or "" when the tool has none.
	Display(c *Call) string
	// Run executes an allowed call. A returned error is internal: the
	// model gets a generic message and the detail goes to the log.
	Run(ctx context.Context, c *Call, d policy.Decision, l Limits) (*Result, error)
}

// guardSchema is the refusal object every output schema accepts.
const guardSchema = `"guard": {
	"type": "object",
	"description": "Present when the guard did not run the call: why, and what to do next.",
	"properties": {
		"outcome": {"type": "string", "enum": ["denied", "invalid", "approval_pending", "approval_denied", "approval_expired", "error"]},
		"reason": {"type": "string"},
		"request_id": {"type": "string"}
	},
	"required": ["outcome", "reason"]
}`

// outputSchema wraps a tool's result properties so that a refusal with
// only the guard object also validates.
func outputSchema(props string) json.RawMessage {
	return json.RawMessage(`{"type": "object", "properties": {` + props + `, ` + guardSchema + `}}`)
}

const notice = " Every call is checked against the organisation's policy, may need a person's approval, and is recorded."
