// Package guard is the enforcement point every tool call passes through:
// it identifies the caller, validates the arguments, gathers facts, asks
// the policy, waits for approval when the policy says so, runs the tool,
// masks what comes back and records all of it. Tools know none of this.
package guard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/identity"
	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/tools"
)

// Outcomes reported to the client in structuredContent.guard.outcome when
// a call does not run.
const (
	OutcomeDenied          = "denied"
	OutcomeInvalid         = "invalid"
	OutcomeApprovalPending = "approval_pending"
	OutcomeApprovalDenied  = "approval_denied"
	OutcomeApprovalExpired = "approval_expired"
	OutcomeError           = "error"
	// OutcomeOK is recorded for calls that ran.
	OutcomeOK = "ok"
)

// Masker masks what flows back from a tool. It rewrites the result in
// place and reports how many values each rule masked.
type Masker interface {
	MaskResult(tool string, facts any, r *tools.Result, d policy.Decision) (map[string]int, error)
	// Text masks free text such as arguments before they are recorded.
	Text(s string) string
}

// Recorder commits transcript records; *recorder.Recorder is the one the
// guard runs with. Append returns only once the record is committed.
type Recorder interface {
	Append(ctx context.Context, kind, sessionID, callID string, body any) error
}

// Options configure a Guard.
type Options struct {
	Config   *config.Config
	Engine   *policy.Engine
	Recorder Recorder
	Tools    []tools.Tool
	Masker   Masker
	Approver Approver
	// ConfirmKey signs in-IDE confirmation states (at least 32 bytes);
	// nil turns confirmation off, and confirmable calls go to Approver.
	ConfirmKey []byte
	// ConfirmTTL is how long a caller has to confirm; zero means
	// DefaultConfirmTTL.
	ConfirmTTL time.Duration
	// Metrics receives measurements of the chain; nil records none.
	Metrics Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// Metrics receives measurements of the chain, for an operator's
// dashboard. Tool is a registered tool's name, or "unknown". The methods
// must be safe for concurrent use and must not block.
type Metrics interface {
	// Decided reports how long the policy took to decide a call.
	Decided(tool string, d time.Duration)
	// Ran reports how long a tool ran.
	Ran(tool string, d time.Duration)
	// Waiting reports a call starting (+1) or ending (-1) its wait for
	// approval.
	Waiting(delta int)
	// Answered reports a call's outcome once its completion is recorded.
	Answered(tool, outcome string)
}

// noMetrics is the Metrics of a guard without any.
type noMetrics struct{}

func (noMetrics) Decided(string, time.Duration) {}
func (noMetrics) Ran(string, time.Duration)     {}
func (noMetrics) Waiting(int)                   {}
func (noMetrics) Answered(string, string)       {}

// Guard runs tool calls through the chain.
type Guard struct {
	cfg      *config.Config
	engine   *policy.Engine
	rec      Recorder
	tools    map[string]tools.Tool
	order    []string
	schemas  map[string]*jsonschema.Schema
	masker   Masker
	approver Approver
	confirms *confirmations
	metrics  Metrics
	logger   *slog.Logger
	now      func() time.Time
	sessions *sessions
}

// New builds a Guard; it compiles each tool's input schema.
func New(o Options) (*Guard, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Masker == nil {
		return nil, errors.New("guard: a masker is required")
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
	confirms, err := newConfirmations(o.ConfirmKey, o.ConfirmTTL)
	if err != nil {
		return nil, err
	}
	g := &Guard{
		cfg:      o.Config,
		engine:   o.Engine,
		rec:      o.Recorder,
		tools:    map[string]tools.Tool{},
		schemas:  map[string]*jsonschema.Schema{},
		masker:   o.Masker,
		approver: o.Approver,
		confirms: confirms,
		metrics:  o.Metrics,
		logger:   o.Logger,
		now:      o.Now,
	}
	g.sessions = newSessions(g)
	c := jsonschema.NewCompiler()
	for _, t := range o.Tools {
		spec := t.Spec()
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(spec.Input))
		if err != nil {
			return nil, fmt.Errorf("guard: %s input schema: %w", spec.Name, err)
		}
		url := "mem://" + spec.Name + ".json"
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("guard: %s input schema: %w", spec.Name, err)
		}
		s, err := c.Compile(url)
		if err != nil {
			return nil, fmt.Errorf("guard: %s input schema: %w", spec.Name, err)
		}
		g.schemas[spec.Name] = s
		g.tools[spec.Name] = t
		g.order = append(g.order, spec.Name)
	}
	return g, nil
}

// Tools returns the tools in registration order.
func (g *Guard) Tools() []tools.Tool {
	out := make([]tools.Tool, 0, len(g.order))
	for _, n := range g.order {
		out = append(out, g.tools[n])
	}
	return out
}

// call is the state of one call as it moves through the chain.
type call struct {
	id        string
	session   string
	caller    identity.Caller
	tool      tools.Tool
	name      string
	args      map[string]any
	tc        *tools.Call
	factsKey  string
	facts     any
	input     map[string]any
	decision  policy.Decision
	started   time.Time
	recorded  bool // the intent record is committed
	requestID string
	policyErr string // why the policy could not decide, for the record
}

// Refusal is the guard object of a call that did not run.
type Refusal struct {
	Outcome   string `json:"outcome"`
	Reason    string `json:"reason"`
	RequestID string `json:"request_id,omitempty"`
}

// Handle runs one tool call through the chain and returns what the client
// receives. It never returns a Go error for a call that was refused: a
// refusal is a tool result with isError and structuredContent.guard.
func (g *Guard) Handle(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	c := &call{id: newID(), started: g.now(), name: req.Params.Name}
	caller, ok := identity.FromContext(ctx)
	if !ok {
		// No identity means a wiring fault; fail closed.
		g.logger.Error("call without a caller identity", "call_id", c.id, "tool", c.name)
		return g.refuse(ctx, c, Refusal{Outcome: OutcomeError, Reason: "the guard could not establish who is calling"}), nil
	}
	c.caller = caller
	c.session = g.sessions.forCall(ctx, caller)

	if ref := g.validate(req, c); ref != nil {
		return g.refuse(ctx, c, *ref), nil
	}
	if ref := g.gatherFacts(ctx, c); ref != nil {
		return g.refuse(ctx, c, *ref), nil
	}
	g.decide(ctx, c)
	return g.act(ctx, req, c), nil
}

// validate checks the arguments against the tool's input schema and
// resolves the target, before anything else looks at them.
func (g *Guard) validate(req mcp.CallToolRequest, c *call) *Refusal {
	t, ok := g.tools[c.name]
	if !ok {
		return &Refusal{Outcome: OutcomeInvalid, Reason: fmt.Sprintf("unknown tool %q", c.name)}
	}
	c.tool = t
	args, err := decodeArguments(req)
	if err != nil {
		return &Refusal{Outcome: OutcomeInvalid, Reason: err.Error()}
	}
	c.args = args
	// args is already what the validator reads: JSON decoded with
	// numbers kept as json.Number.
	if err := g.schemas[c.name].Validate(any(args)); err != nil {
		return &Refusal{Outcome: OutcomeInvalid, Reason: schemaMessage(err)}
	}
	c.tc = &tools.Call{Tool: c.name, Args: args}
	spec := t.Spec()
	if len(spec.Kinds) == 0 {
		return nil
	}
	name, _ := args["target"].(string)
	target, ok := g.cfg.Target(name)
	if !ok {
		return &Refusal{Outcome: OutcomeInvalid, Reason: fmt.Sprintf("unknown target %q; list_targets shows the targets", name)}
	}
	if !slices.Contains(spec.Kinds, target.Kind) {
		return &Refusal{Outcome: OutcomeInvalid, Reason: fmt.Sprintf("target %q is a %s target; %s works on %s targets",
			name, target.Kind, c.name, strings.Join(spec.Kinds, " and "))}
	}
	c.tc.Target = target
	return nil
}

// decodeArguments returns the call's arguments as a JSON object, refusing
// duplicate keys: the guard and the tool must read the same value.
func decodeArguments(req mcp.CallToolRequest) (map[string]any, error) {
	raw := req.Params.RawArguments
	if len(raw) == 0 {
		if req.Params.Arguments == nil {
			return map[string]any{}, nil
		}
		b, err := json.Marshal(req.Params.Arguments)
		if err != nil {
			return nil, errors.New("arguments are not a JSON object")
		}
		raw = b
	}
	if err := checkDuplicateKeys(raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errors.New("arguments are not valid JSON")
	}
	if v == nil {
		return map[string]any{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("arguments must be a JSON object")
	}
	return m, nil
}

// gatherFacts parses what the call will run.
func (g *Guard) gatherFacts(ctx context.Context, c *call) *Refusal {
	key, facts, err := c.tool.Facts(ctx, c.tc)
	if err != nil {
		var r *tools.Refusal
		if errors.As(err, &r) {
			return &Refusal{Outcome: r.Outcome, Reason: r.Reason}
		}
		g.logger.Error("gathering facts failed", "call_id", c.id, "tool", c.name, "error", err)
		return &Refusal{Outcome: OutcomeDenied, Reason: "the guard could not analyse this call"}
	}
	c.factsKey, c.facts = key, facts
	return nil
}

// decide builds the policy input and asks the policy. Any failure denies.
func (g *Guard) decide(ctx context.Context, c *call) {
	in := map[string]any{
		"tool":      c.name,
		"caller":    callerInput(c.caller),
		"arguments": c.args,
	}
	if t := c.tc.Target; t != nil {
		labels := map[string]any{}
		for k, v := range t.Labels {
			labels[k] = v
		}
		in["target"] = map[string]any{"name": t.Name, "kind": t.Kind, "labels": labels}
	} else {
		in["target"] = map[string]any{"name": "", "kind": "", "labels": map[string]any{}}
	}
	if c.factsKey != "" {
		in[c.factsKey] = c.facts
	}
	c.input = in
	start := time.Now()
	d, err := g.engine.Decide(ctx, in)
	g.metrics.Decided(c.name, time.Since(start))
	if err != nil {
		g.logger.Error("policy evaluation failed; denying", "call_id", c.id, "tool", c.name, "error", err)
		c.policyErr = err.Error()
	}
	c.decision = d
}

func callerInput(c identity.Caller) map[string]any {
	groups := make([]any, len(c.Groups))
	for i, g := range c.Groups {
		groups[i] = g
	}
	return map[string]any{"subject": c.Subject, "issuer": c.Issuer, "email": c.Email, "groups": groups}
}

// act records the intent, then denies, waits for approval, or runs.
func (g *Guard) act(ctx context.Context, req mcp.CallToolRequest, c *call) *mcp.CallToolResult {
	if err := g.recordIntent(ctx, c); err != nil {
		g.logger.Error("recording the call failed; not running it", "call_id", c.id, "error", err)
		return g.answer(ctx, c, nil, &Refusal{Outcome: OutcomeError, Reason: "the call could not be recorded, so it was not run"})
	}
	switch c.decision.Outcome {
	case policy.OutcomeAllow:
		return g.run(ctx, c)
	case policy.OutcomeApproval:
		if out, ok := g.confirm(ctx, req, c); ok {
			return out
		}
		if g.approver == nil {
			return g.answer(ctx, c, nil, &Refusal{Outcome: OutcomeApprovalDenied,
				Reason: "this call needs approval (" + strings.Join(c.decision.Reasons, "; ") +
					"), and no approval workflow is configured on this guard"})
		}
		g.metrics.Waiting(1)
		id, ref := g.approver.Approve(ctx, req, c.info(g))
		g.metrics.Waiting(-1)
		if ref != nil {
			return g.answer(ctx, c, nil, ref)
		}
		c.requestID = id
		return g.run(ctx, c)
	default:
		return g.answer(ctx, c, nil, &Refusal{Outcome: OutcomeDenied, Reason: strings.Join(c.decision.Reasons, "; ")})
	}
}

// run executes an allowed call, masks its result and records it.
func (g *Guard) run(ctx context.Context, c *call) *mcp.CallToolResult {
	lim := tools.Effective(g.cfg.Limits, c.decision.Limits)
	start := time.Now()
	res, err := c.tool.Run(ctx, c.tc, c.decision, lim)
	g.metrics.Ran(c.name, time.Since(start))
	if err != nil {
		g.logger.Error("tool failed", "call_id", c.id, "tool", c.name, "error", g.masker.Text(err.Error()))
		return g.answer(ctx, c, nil, &Refusal{Outcome: OutcomeError, Reason: "the tool failed on the server side; the operator's log has the detail"})
	}
	return g.answer(ctx, c, res, nil)
}

// refuse answers a call that stopped before policy.
func (g *Guard) refuse(ctx context.Context, c *call, r Refusal) *mcp.CallToolResult {
	if c.input == nil {
		c.decision = policy.Decision{Outcome: policy.OutcomeDeny, Reasons: []string{r.Reason}}
	}
	if err := g.recordIntent(ctx, c); err != nil {
		g.logger.Error("recording a refused call failed", "call_id", c.id, "error", err)
	}
	return g.answer(ctx, c, nil, &r)
}

// answer masks the result, records the completion and builds the reply.
// A call is answered only after its completion is committed.
func (g *Guard) answer(ctx context.Context, c *call, res *tools.Result, ref *Refusal) *mcp.CallToolResult {
	var out *mcp.CallToolResult
	var masked map[string]int
	if ref != nil {
		ref.Reason = g.masker.Text(ref.Reason)
		out = &mcp.CallToolResult{
			Content:           []mcp.Content{mcp.NewTextContent(refusalText(*ref))},
			StructuredContent: map[string]any{"guard": ref},
			IsError:           true,
		}
	} else {
		var err error
		masked, err = g.masker.MaskResult(c.name, c.facts, res, c.decision)
		if err != nil {
			g.logger.Error("masking failed; withholding the result", "call_id", c.id, "error", err)
			return g.answer(ctx, c, nil, &Refusal{Outcome: OutcomeDenied, Reason: err.Error()})
		}
		if len(masked) > 0 {
			res.Structured["masked"] = masked
		}
		text := tools.Render(c.name, res.Structured)
		if len(masked) > 0 {
			text += maskedNote(masked)
		}
		out = &mcp.CallToolResult{
			Content:           []mcp.Content{mcp.NewTextContent(text)},
			StructuredContent: res.Structured,
			IsError:           res.Failed,
		}
	}
	outcome := OutcomeOK
	if ref != nil {
		outcome = ref.Outcome
	}
	tool := "unknown"
	if c.tool != nil {
		tool = c.name // a registered name, never the client's free text
	}
	if err := g.recordCompletion(ctx, c, outcome, ref, out, masked); err != nil {
		g.metrics.Answered(tool, OutcomeError)
		if ref != nil {
			// Nothing ran, or nothing came back: the refusal says what
			// happened, and there is no result to withhold.
			g.logger.Error("recording the completion failed", "call_id", c.id, "outcome", ref.Outcome, "error", err)
			return out
		}
		g.logger.Error("recording the completion failed; withholding the result", "call_id", c.id, "error", err)
		r := Refusal{Outcome: OutcomeError, Reason: "the call ran, but its result could not be recorded, so it is withheld"}
		return &mcp.CallToolResult{
			Content:           []mcp.Content{mcp.NewTextContent(refusalText(r))},
			StructuredContent: map[string]any{"guard": r},
			IsError:           true,
		}
	}
	g.metrics.Answered(tool, outcome)
	g.logger.Info("call", "call_id", c.id, "session_id", c.session, "tool", c.name,
		"target", targetName(c), "caller", c.caller.Subject, "outcome", outcome,
		"duration_ms", g.now().Sub(c.started).Milliseconds())
	return out
}

func refusalText(r Refusal) string {
	switch r.Outcome {
	case OutcomeInvalid:
		return "Invalid call: " + r.Reason
	case OutcomeDenied:
		return "Denied by policy: " + r.Reason
	case OutcomeApprovalPending:
		return "Waiting for approval (request " + r.RequestID + "): " + r.Reason
	case OutcomeApprovalDenied:
		return "Approval denied: " + r.Reason
	case OutcomeApprovalExpired:
		return "Approval expired: " + r.Reason
	}
	return "Error: " + r.Reason
}

func maskedNote(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return "\n[masked values: " + strings.Join(parts, ", ") + "]"
}

func targetName(c *call) string {
	if c.tc != nil && c.tc.Target != nil {
		return c.tc.Target.Name
	}
	if c.args != nil {
		if s, ok := c.args["target"].(string); ok {
			return s
		}
	}
	return ""
}

func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte("null")
	}
	return b
}
