package guard

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/mcp-guard/mcp-guard/identity"
	"github.com/mcp-guard/mcp-guard/recorder"
	"github.com/mcp-guard/mcp-guard/sqlfacts"
)

// IntentBody is the record written before a call runs (or is refused).
type IntentBody struct {
	CallID        string            `json:"call_id"`
	SessionID     string            `json:"session_id"`
	Caller        identity.Caller   `json:"caller"`
	Tool          string            `json:"tool"`
	Target        string            `json:"target"`
	TargetKind    string            `json:"target_kind,omitempty"`
	TargetLabels  map[string]string `json:"target_labels,omitempty"`
	Arguments     any               `json:"arguments"`
	Facts         any               `json:"facts,omitempty"`
	Decision      any               `json:"decision"`
	PolicyVersion string            `json:"policy_version"`
	PolicyError   string            `json:"policy_error,omitempty"`
	StartedAt     string            `json:"started_at"`
}

// CompletionBody is the record written before a call is answered.
type CompletionBody struct {
	CallID     string         `json:"call_id"`
	Outcome    string         `json:"outcome"`
	Reason     string         `json:"reason,omitempty"`
	RequestID  string         `json:"request_id,omitempty"`
	IsError    bool           `json:"is_error"`
	Result     any            `json:"result,omitempty"`
	ResultSize int            `json:"result_size"`
	Truncated  bool           `json:"truncated"`
	Masked     map[string]int `json:"masked,omitempty"`
	DurationMS int64          `json:"duration_ms"`
}

func (g *Guard) recordIntent(ctx context.Context, c *call) error {
	if c.recorded {
		return nil
	}
	body := IntentBody{
		CallID:        c.id,
		SessionID:     c.session,
		Caller:        c.caller,
		Tool:          c.name,
		Target:        targetName(c),
		Arguments:     g.redactArgs(c.args, c.facts),
		Facts:         g.redactValue(c.facts),
		Decision:      c.decision,
		PolicyVersion: g.engine.Version(),
		PolicyError:   g.redactText(c.policyErr),
		StartedAt:     c.started.UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
	}
	if c.tc != nil && c.tc.Target != nil {
		body.TargetKind = c.tc.Target.Kind
		body.TargetLabels = c.tc.Target.Labels
	}
	if err := g.rec.Append(ctx, recorder.KindCallIntent, c.session, c.id, body); err != nil {
		return err
	}
	c.recorded = true
	return nil
}

func (g *Guard) recordCompletion(ctx context.Context, c *call, outcome string, ref *Refusal, out *mcp.CallToolResult, masked map[string]int) error {
	body := CompletionBody{
		CallID:     c.id,
		Outcome:    outcome,
		IsError:    out.IsError,
		Masked:     masked,
		DurationMS: g.now().Sub(c.started).Milliseconds(),
		RequestID:  c.requestID,
	}
	if ref != nil {
		body.Reason = ref.Reason
		if ref.RequestID != "" {
			body.RequestID = ref.RequestID
		}
	}
	// The result as the model received it (already masked), capped.
	raw, err := json.Marshal(out.StructuredContent)
	if err != nil {
		return fmt.Errorf("encode the result: %w", err)
	}
	body.ResultSize = len(raw)
	limit := g.cfg.Recorder.MaxResultBytes
	if len(raw) > limit {
		body.Truncated = true
		body.Result = strings.ToValidUTF8(string(raw[:limit]), "")
		return g.rec.Append(context.WithoutCancel(ctx), recorder.KindCallCompletion, c.session, c.id, body)
	}
	enc, err := completionJSON(body, raw)
	if err != nil {
		return err
	}
	return g.rec.Append(context.WithoutCancel(ctx), recorder.KindCallCompletion, c.session, c.id, enc)
}

// completionJSON encodes body with result, the result's compact JSON as
// json.Marshal wrote it, as its last field. Handing encoding/json the
// result again, as a json.RawMessage, would check and copy it once more.
func completionJSON(body CompletionBody, result []byte) (recorder.Encoded, error) {
	body.Result = nil
	head, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode the completion: %w", err)
	}
	enc := make([]byte, 0, len(head)+len(`,"result":`)+len(result))
	enc = append(enc, head[:len(head)-1]...)
	enc = append(enc, `,"result":`...)
	enc = append(enc, result...)
	return append(enc, '}'), nil
}

// secretAssignment finds NAME=value words whose name says they hold a
// secret, as in PGPASSWORD=... before a command.
var secretAssignment = regexp.MustCompile(`(?i)\b([A-Z0-9_]*(?:PASS|PWD|TOKEN|SECRET|KEY|AUTH|CRED)[A-Z0-9_]*=)('[^']*'|"[^"]*"|[^\s;&|]+)`)

// sqlPassword finds texts that may carry a password in a literal. It only
// judges texts the parser cannot read, which never run.
var sqlPassword = regexp.MustCompile(`(?i)password|secret|user\s+mapping|server|subscription|conninfo`)

// redactText removes from s what must never be stored or logged: secret
// assignments, and whatever the masker detects.
func (g *Guard) redactText(s string) string {
	if mayAssign(s) {
		s = secretAssignment.ReplaceAllString(s, "${1}[REDACTED]")
	}
	return g.masker.Text(s)
}

// mayAssign reports whether s has an "=" right after a character a name
// can end with, as every match of secretAssignment does. It spares most
// strings (table names, SQL with "a = b") the regular expression, which
// cost more than the rest of recording an intent. Case folding lets
// secretAssignment match a few non-ASCII letters (ſ, K), so any byte of a
// multi-byte character counts as a name's end too.
func mayAssign(s string) bool {
	for i := 1; i < len(s); i++ {
		if s[i] != '=' {
			continue
		}
		c := s[i-1]
		if c == '_' || '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' ||
			'a' <= c && c <= 'z' || c >= 0x80 {
			return true
		}
	}
	return false
}

// redactArgs is redactText over the arguments, except the SQL: a
// statement that carries credentials is recorded with its literals
// replaced, any other exactly as sent, through the masker only. facts are
// the call's SQL facts, or nil when there are none.
func (g *Guard) redactArgs(args map[string]any, facts any) any {
	out := make(map[string]any, len(args))
	for k, v := range args {
		if s, ok := v.(string); ok && k == "sql" {
			out[k] = g.redactSQL(s, facts)
			continue
		}
		out[k] = g.redactValue(v)
	}
	return out
}

// redactSQL is what the transcript and approvers see of a statement.
// Literals are blanked only where the statement itself holds credentials;
// words in a literal or a comment of any other statement cannot blind
// the record. The masker still masks password=... and known secrets.
func (g *Guard) redactSQL(sql string, facts any) string {
	if carriesCredentials(sql, facts) {
		return g.redactText(sqlfacts.Redact(sql))
	}
	return g.masker.Text(sql)
}

// carriesCredentials reports whether sql is a statement whose literals may
// hold a password: CREATE or ALTER ROLE (and USER), USER MAPPING, SERVER,
// SUBSCRIPTION, and ALTER SYSTEM (primary_conninfo). The facts answer
// without a parse for anything but DDL; a text the parser rejects is
// judged by its words, as it never runs.
func carriesCredentials(sql string, facts any) bool {
	if sf, ok := facts.(*sqlfacts.Facts); ok && sf != nil {
		if slices.Contains(sf.RoleOptions, "password") ||
			slices.Contains(sf.Kinds, sqlfacts.KindAlterRole) ||
			slices.Contains(sf.Kinds, sqlfacts.KindCreateRole) {
			return true
		}
		if !slices.Contains(sf.Kinds, sqlfacts.KindDDL) {
			return false
		}
	}
	if len(sql) > sqlfacts.MaxLength {
		// Too long to analyze, so refused; parsing it would cost more
		// than recording the refusal is worth.
		return sqlPassword.MatchString(sql)
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return sqlPassword.MatchString(sql)
	}
	for _, raw := range tree.GetStmts() {
		switch raw.GetStmt().GetNode().(type) {
		case *pg_query.Node_CreateRoleStmt, *pg_query.Node_AlterRoleStmt,
			*pg_query.Node_CreateUserMappingStmt, *pg_query.Node_AlterUserMappingStmt,
			*pg_query.Node_CreateForeignServerStmt, *pg_query.Node_AlterForeignServerStmt,
			*pg_query.Node_CreateSubscriptionStmt, *pg_query.Node_AlterSubscriptionStmt,
			*pg_query.Node_AlterSystemStmt:
			return true
		}
	}
	return false
}

// redactValue returns v with redactText applied to every string inside
// it: a string as a string, anything else as its JSON text, so that
// structs are covered too. It is nil when v is nil or cannot be encoded.
func (g *Guard) redactValue(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return g.redactText(x)
	case bool, float64:
		return x
	}
	raw, err := json.Marshal(v)
	if err != nil || string(raw) == "null" {
		return nil
	}
	return json.RawMessage(g.redactJSON(raw))
}

// redactJSON applies redactText to every string value in raw, compact
// JSON text as json.Marshal writes it, and returns the text, raw itself
// when nothing changed. Object keys are names, not data, and stay as
// they are. Working on the text spares the decoding into generic values
// and the encoding back that redacting a struct would otherwise take.
func (g *Guard) redactJSON(raw []byte) []byte {
	var out []byte // nil until a string changes
	last := 0
	for i := 0; i < len(raw); i++ {
		if raw[i] != '"' {
			continue
		}
		end, escaped := i+1, false
		for ; end < len(raw) && raw[end] != '"'; end++ {
			if raw[end] == '\\' {
				escaped = true
				end++
			}
		}
		if end+1 < len(raw) && raw[end+1] == ':' {
			i = end // a key
			continue
		}
		s, ok := string(raw[i+1:end]), true
		if escaped {
			ok = json.Unmarshal(raw[i:end+1], &s) == nil
		}
		r := "[REDACTED]" // a string that does not decode cannot be checked
		if ok {
			r = g.redactText(s)
		}
		if !ok || r != s {
			enc, _ := json.Marshal(r)
			out = append(append(out, raw[last:i]...), enc...)
			last = end + 1
		}
		i = end
	}
	if out == nil {
		return raw
	}
	return append(out, raw[last:]...)
}

// RedactArgs returns the arguments as they may be stored or shown: secret
// assignments, detected secrets and the literals of SQL that carries
// credentials removed. The SQL is parsed here to tell.
func (g *Guard) RedactArgs(args map[string]any) any { return g.redactArgs(args, nil) }
