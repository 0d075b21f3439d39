// Package policy evaluates the guard's Rego policy. The policy is compiled
// once and evaluated per call; a policy that is undefined, errors or returns
// a malformed decision yields a denial, never an allow.
package policy

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/util"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed default/*.rego
var bundled embed.FS

// Query is the Rego query whose value is the decision object.
const Query = "data.mcpguard.decision"

// Outcomes a decision can have.
const (
	OutcomeAllow    = "allow"
	OutcomeDeny     = "deny"
	OutcomeApproval = "approval"
)

// Decision is the policy's answer for one call.
type Decision struct {
	// Outcome is allow, deny or approval.
	Outcome string `json:"outcome"`
	// Reasons explain a deny or an approval; shown to the model and to
	// approvers, and recorded.
	Reasons []string `json:"reasons"`
	// Approval says who may approve when Outcome is approval.
	Approval Approval `json:"approval"`
	// Limits lower the configured ceilings for this call; zero keeps them.
	Limits Limits `json:"limits"`
	// Mask names result columns to mask and how.
	Mask []MaskRule `json:"mask"`
	// Writes lets query_database run outside a read-only transaction.
	Writes bool `json:"writes"`
	// Detectors enables optional value detectors (e.g. national IDs).
	Detectors []string `json:"detectors"`
}

// Approval names who may approve a call and how many must.
type Approval struct {
	Groups   []string `json:"groups"`
	Emails   []string `json:"emails"`
	Required int      `json:"required"`
	Channel  string   `json:"channel"`
	// Confirmable lets the caller confirm the call themself in the IDE.
	Confirmable bool `json:"confirmable"`
}

// Limits are per-call ceilings.
type Limits struct {
	MaxRows        int `json:"max_rows"`
	TimeoutSeconds int `json:"timeout_seconds"`
	MaxOutputBytes int `json:"max_output_bytes"`
}

// MaskRule masks a result column by its source table and column, or by a
// tag the policy attached to columns.
type MaskRule struct {
	Table    string `json:"table"`
	Column   string `json:"column"`
	Strategy string `json:"strategy"` // redact, last, hash
	Keep     int    `json:"keep"`
	// Transformed says what to do when the column feeds an expression:
	// "mask" (default) masks the whole expression, "deny" refuses the call.
	Transformed string `json:"transformed"`
}

// Deny returns a denial decision with the given reason.
func Deny(reason string) Decision {
	return Decision{Outcome: OutcomeDeny, Reasons: []string{reason}}
}

// Engine evaluates calls against a compiled policy. It is safe for
// concurrent use; Reload swaps the policy atomically.
type Engine struct {
	mu      sync.RWMutex
	query   rego.PreparedEvalQuery
	version string
	files   map[string]string

	dir    string
	logger *slog.Logger
	// bundle is set on an engine fed by a BundleSource: Reload has no
	// directory to read then.
	bundle bool

	// literal compiles the policy as written, without writing constant
	// rules into the rules that use them (see inlineConstants).
	literal bool

	// schema is the input's JSON Schema: the policy is type-checked
	// against it and every input validated against it.
	schemaSet *ast.SchemaSet
	validator *jsonschema.Schema
	// checker is the schema compiled for the walk that converts the
	// input (see prepareInput); nil when the schema uses keywords the
	// walk does not check, which validator then checks.
	checker *inputSchema
}

// Option configures an Engine.
type Option func(*Engine) error

// WithInputSchema type-checks the policy against the input's JSON Schema
// when it compiles (a rule reading a field the input does not have fails
// to compile) and validates every input against it before evaluation.
func WithInputSchema(schema []byte) Option {
	return func(e *Engine) error {
		set, err := SchemaSet(schema)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(schema)))
		if err != nil {
			return fmt.Errorf("policy: input schema: %w", err)
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource("mem://input.json", doc); err != nil {
			return fmt.Errorf("policy: input schema: %w", err)
		}
		v, err := c.Compile("mem://input.json")
		if err != nil {
			return fmt.Errorf("policy: input schema: %w", err)
		}
		checker, err := compileInputSchema(doc, true)
		switch {
		case errors.Is(err, errSchemaUnsupported):
			checker = nil
		case err != nil:
			return err
		}
		e.schemaSet, e.validator, e.checker = set, v, checker
		return nil
	}
}

// SchemaSet returns the OPA schema set that types input with schema.
func SchemaSet(schema []byte) (*ast.SchemaSet, error) {
	var s any
	if err := util.UnmarshalJSON(schema, &s); err != nil {
		return nil, fmt.Errorf("policy: input schema: %w", err)
	}
	set := ast.NewSchemaSet()
	set.Put(ast.SchemaRootRef, s)
	return set, nil
}

// Module is one policy source file.
type Module struct {
	Name   string
	Source string
}

// Bundled returns the modules of the default policy, tests included.
func Bundled() []Module {
	mods, err := readFS(bundled, "default")
	if err != nil {
		panic(fmt.Sprintf("policy: bundled policy unreadable: %v", err))
	}
	return mods
}

// New compiles the policy in dir, or the bundled default policy when dir
// is empty. Test files (*_test.rego) are not part of the decision.
func New(ctx context.Context, dir string, logger *slog.Logger, opts ...Option) (*Engine, error) {
	if logger == nil {
		logger = slog.Default()
	}
	e := &Engine{dir: dir, logger: logger}
	for _, o := range opts {
		if err := o(e); err != nil {
			return nil, err
		}
	}
	mods, err := e.load()
	if err != nil {
		return nil, err
	}
	if err := e.compile(ctx, mods); err != nil {
		return nil, err
	}
	return e, nil
}

// Load reads the modules of a policy directory (test files included).
func Load(dir string) ([]Module, error) {
	return readFS(os.DirFS(dir), ".")
}

func (e *Engine) load() ([]Module, error) {
	if e.bundle {
		return nil, errors.New("policy: the policy comes from a bundle, which reloads itself")
	}
	if e.dir == "" {
		return Bundled(), nil
	}
	mods, err := Load(e.dir)
	if err != nil {
		return nil, err
	}
	if len(policyModules(mods)) == 0 {
		return nil, fmt.Errorf("policy: no .rego files in %s", e.dir)
	}
	return mods, nil
}

func readFS(fsys fs.FS, root string) ([]Module, error) {
	var mods []Module
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".rego") {
			return nil
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		mods = append(mods, Module{Name: p, Source: string(src)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policy: read modules: %w", err)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Name < mods[j].Name })
	return mods, nil
}

func policyModules(mods []Module) []Module {
	var out []Module
	for _, m := range mods {
		if !strings.HasSuffix(m.Name, "_test.rego") {
			out = append(out, m)
		}
	}
	return out
}

// Version identifies a set of modules: a digest over names and sources.
func Version(mods []Module) string {
	h := sha256.New()
	for _, m := range policyModules(mods) {
		fmt.Fprintf(h, "%s\x00%d\x00%s", m.Name, len(m.Source), m.Source)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}

// compile prepares mods for evaluation and puts them in force. The policy
// is compiled as written first, so that whether it compiles, and what the
// errors say, is OPA's own judgement; then again with constant rules
// written into the rules that use them (see inlineConstants), which is the
// form evaluated. Should that second compilation fail where the first
// passed, the policy as written is evaluated and the log says why.
func (e *Engine) compile(ctx context.Context, mods []Module) error {
	files := map[string]string{}
	for _, m := range policyModules(mods) {
		name := m.Name
		if e.dir != "" {
			name = filepath.Join(e.dir, m.Name)
		}
		files[name] = m.Source
	}
	pq, err := e.prepare(ctx, files, false)
	if err != nil {
		return fmt.Errorf("policy does not compile: %w", err)
	}
	if !e.literal {
		inlined, err := e.prepare(ctx, files, true)
		if err != nil {
			e.logger.Warn("policy: compiling with constants inlined failed; evaluating the policy as written",
				"policy_version", Version(mods), "error", err)
		} else {
			pq = inlined
		}
	}
	e.mu.Lock()
	e.query = pq
	e.version = Version(mods)
	e.files = files
	e.mu.Unlock()
	return nil
}

// prepare compiles the named sources for the decision query.
func (e *Engine) prepare(ctx context.Context, files map[string]string, inline bool) (rego.PreparedEvalQuery, error) {
	opts := []func(*rego.Rego){
		rego.Query(Query),
		rego.SetRegoVersion(ast.RegoV1),
		rego.StrictBuiltinErrors(true),
	}
	if inline {
		opts = append(opts, rego.CompilerHook(func(c *ast.Compiler) {
			c.WithStageAfterID(ast.StageResolveRefs, inlineConstantsStage)
		}))
	}
	if e.schemaSet != nil {
		opts = append(opts, rego.Schemas(e.schemaSet))
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		opts = append(opts, rego.Module(name, files[name]))
	}
	return rego.New(opts...).PrepareForEval(ctx)
}

// Version returns the digest of the policy in force.
func (e *Engine) Version() string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.version
}

// Reload recompiles the policy directory. On failure the policy in force
// is kept and the error returned.
func (e *Engine) Reload(ctx context.Context) error {
	mods, err := e.load()
	if err != nil {
		return err
	}
	if Version(mods) == e.Version() {
		return nil
	}
	return e.compile(ctx, mods)
}

// Watch polls the policy directory every interval until ctx ends and
// reloads it when it changes, keeping the last good policy (and logging
// why) when the new one does not compile.
func (e *Engine) Watch(ctx context.Context, interval time.Duration) {
	if e.dir == "" {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		before := e.Version()
		if err := e.Reload(ctx); err != nil {
			e.logger.Error("policy reload failed; keeping the last good policy",
				"policy_version", before, "error", err)
			continue
		}
		if after := e.Version(); after != before {
			e.logger.Info("policy reloaded", "policy_version", after)
		}
	}
}

// ErrUndefined means the policy produced no decision for an input.
var ErrUndefined = errors.New("policy: decision is undefined")

// Decide evaluates input. On any failure it returns a denial together
// with the error, so a caller that ignores the error still fails closed.
func (e *Engine) Decide(ctx context.Context, input any) (Decision, error) {
	e.mu.RLock()
	pq := e.query
	e.mu.RUnlock()

	value, err := e.prepareInput(input)
	if err != nil {
		return Deny("the policy input does not match its schema"), err
	}
	if err := ctx.Err(); err != nil {
		return Deny("the policy could not be evaluated"), fmt.Errorf("policy: evaluate: %w", err)
	}
	// OPA starts a goroutine per evaluation to watch ctx unless it is
	// given a cancel of its own; context.AfterFunc watches without one.
	cancel := topdown.NewCancel()
	stop := context.AfterFunc(ctx, cancel.Cancel)
	defer stop()
	rs, err := pq.Eval(ctx, rego.EvalParsedInput(value), rego.EvalExternalCancel(cancel))
	if err != nil {
		return Deny("the policy could not be evaluated"), fmt.Errorf("policy: evaluate: %w", err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return Deny("the policy gave no decision"), ErrUndefined
	}
	d, err := parseDecision(rs[0].Expressions[0].Value)
	if err != nil {
		return Deny("the policy gave a malformed decision"), err
	}
	return d, nil
}

// prepareInput converts input to OPA's value once, validating it against
// the input schema on the way: in the same walk when the schema keeps to
// the keywords the walk checks (the guard's does), else with the
// JSON Schema library first.
func (e *Engine) prepareInput(input any) (ast.Value, error) {
	if e.validator == nil || e.checker != nil {
		checker := e.checker
		if checker == nil {
			checker = anySchema // no schema: convert only
		}
		v, err := inputValue(input, checker)
		var bad *InputError
		if errors.As(err, &bad) {
			return nil, fmt.Errorf("policy: input does not match its schema: %w", err)
		}
		return v, err
	}
	// The schema uses a keyword the walk does not know: the general
	// validator checks the input's JSON form instead, at a higher cost.
	generic, err := roundTrip(input)
	if err != nil {
		return nil, err
	}
	if e.validator != nil {
		if err := e.validator.Validate(generic); err != nil {
			return nil, fmt.Errorf("policy: input does not match its schema: %w", err)
		}
	}
	v, err := ast.InterfaceToValue(generic)
	if err != nil {
		return nil, fmt.Errorf("policy: convert input: %w", err)
	}
	return v, nil
}

func parseDecision(v any) (Decision, error) {
	d, err := decodeDecision(v)
	if err != nil {
		return Decision{}, fmt.Errorf("policy: decision does not match the contract: %w", err)
	}
	switch d.Outcome {
	case OutcomeAllow:
	case OutcomeDeny, OutcomeApproval:
		if len(d.Reasons) == 0 {
			return Decision{}, fmt.Errorf("policy: %s decision without reasons", d.Outcome)
		}
	default:
		return Decision{}, fmt.Errorf("policy: unknown outcome %q", d.Outcome)
	}
	if d.Approval.Required < 0 || d.Limits.MaxRows < 0 ||
		d.Limits.TimeoutSeconds < 0 || d.Limits.MaxOutputBytes < 0 {
		return Decision{}, errors.New("policy: negative limit in decision")
	}
	for _, m := range d.Mask {
		switch m.Strategy {
		case "redact", "last", "hash":
		default:
			return Decision{}, fmt.Errorf("policy: unknown mask strategy %q", m.Strategy)
		}
	}
	return d, nil
}

// decodeDecision reads the decision object as OPA returns it (maps, slices,
// json.Number), refusing unknown fields and wrong types, without a JSON
// round trip.
func decodeDecision(v any) (Decision, error) {
	var d Decision
	m, ok := v.(map[string]any)
	if !ok {
		return d, fmt.Errorf("decision is %T, not an object", v)
	}
	for k, val := range m {
		var err error
		switch k {
		case "outcome":
			d.Outcome, err = asString(k, val)
		case "reasons":
			d.Reasons, err = asStrings(k, val)
		case "detectors":
			d.Detectors, err = asStrings(k, val)
		case "writes":
			d.Writes, err = asBool(k, val)
		case "approval":
			d.Approval, err = decodeApproval(val)
		case "limits":
			d.Limits, err = decodeLimits(val)
		case "mask":
			d.Mask, err = decodeMask(val)
		default:
			err = fmt.Errorf("unknown field %q", k)
		}
		if err != nil {
			return Decision{}, err
		}
	}
	return d, nil
}

func decodeApproval(v any) (Approval, error) {
	var a Approval
	m, ok := v.(map[string]any)
	if !ok {
		return a, errors.New("approval is not an object")
	}
	for k, val := range m {
		var err error
		switch k {
		case "groups":
			a.Groups, err = asStrings(k, val)
		case "emails":
			a.Emails, err = asStrings(k, val)
		case "required":
			a.Required, err = asInt(k, val)
		case "channel":
			a.Channel, err = asString(k, val)
		case "confirmable":
			a.Confirmable, err = asBool(k, val)
		default:
			err = fmt.Errorf("unknown field approval.%s", k)
		}
		if err != nil {
			return a, err
		}
	}
	return a, nil
}

func decodeLimits(v any) (Limits, error) {
	var l Limits
	m, ok := v.(map[string]any)
	if !ok {
		return l, errors.New("limits is not an object")
	}
	for k, val := range m {
		var err error
		switch k {
		case "max_rows":
			l.MaxRows, err = asInt(k, val)
		case "timeout_seconds":
			l.TimeoutSeconds, err = asInt(k, val)
		case "max_output_bytes":
			l.MaxOutputBytes, err = asInt(k, val)
		default:
			err = fmt.Errorf("unknown field limits.%s", k)
		}
		if err != nil {
			return l, err
		}
	}
	return l, nil
}

func decodeMask(v any) ([]MaskRule, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, errors.New("mask is not an array")
	}
	out := make([]MaskRule, 0, len(list))
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, errors.New("a mask rule is not an object")
		}
		var r MaskRule
		for k, val := range m {
			var err error
			switch k {
			case "table":
				r.Table, err = asString(k, val)
			case "column":
				r.Column, err = asString(k, val)
			case "strategy":
				r.Strategy, err = asString(k, val)
			case "keep":
				r.Keep, err = asInt(k, val)
			case "transformed":
				r.Transformed, err = asString(k, val)
			default:
				err = fmt.Errorf("unknown field mask.%s", k)
			}
			if err != nil {
				return nil, err
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func asString(k string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s is not a string", k)
	}
	return s, nil
}

func asBool(k string, v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%s is not a boolean", k)
	}
	return b, nil
}

func asInt(k string, v any) (int, error) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			return 0, fmt.Errorf("%s is not an integer", k)
		}
		return int(i), nil
	case float64:
		if n != float64(int(n)) {
			return 0, fmt.Errorf("%s is not an integer", k)
		}
		return int(n), nil
	case int:
		return n, nil
	case int64:
		return int(n), nil
	}
	return 0, fmt.Errorf("%s is not a number", k)
}

func asStrings(k string, v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s is not an array", k)
	}
	out := make([]string, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%s holds a non-string", k)
		}
		out[i] = s
	}
	return out, nil
}
