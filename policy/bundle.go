package policy

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/download"
	"github.com/open-policy-agent/opa/v1/keys"
	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/plugins/rest"
)

// Defaults for BundleOptions.
const (
	DefaultBundlePoll      = time.Minute
	DefaultBundleFirstWait = 30 * time.Second
	DefaultBundleMaxBytes  = 16 << 20
	// DefaultBundleKeyID is the key id opa build --signing-key writes.
	DefaultBundleKeyID = "default"
)

// notLoaded is the policy in force until the first bundle is activated:
// every call is denied.
const notLoaded = `package mcpguard

decision := {
	"outcome": "deny",
	"reasons": ["the policy bundle has not been loaded yet"],
}
`

// BundleOptions configure a policy distributed as a signed OPA bundle.
type BundleOptions struct {
	// URL is where the bundle (OPA's .tar.gz format) is served.
	URL string
	// PublicKeyFile holds the PEM public key the bundle's signature must
	// verify with. Unsigned bundles, and delta bundles, are refused.
	PublicKeyFile string
	// KeyID is the key id the signature names (DefaultBundleKeyID).
	KeyID string
	// Algorithm is the signature algorithm, RS256 when empty; RS*, PS*
	// and ES* are accepted.
	Algorithm string
	// Poll is how often the bundle is fetched again (DefaultBundlePoll);
	// it is rounded to whole seconds, at least one.
	Poll time.Duration
	// FirstWait bounds how long NewBundleEngine waits for the first
	// bundle (DefaultBundleFirstWait).
	FirstWait time.Duration
	// MaxBytes caps the size of a bundle file (DefaultBundleMaxBytes).
	MaxBytes int64
}

// BundleSource keeps an Engine's policy in step with a signed OPA bundle
// served over HTTP, so that every replica runs the same policy. A bundle
// that does not verify, carries data documents or does not compile is
// refused and the policy in force is kept; until a first bundle is
// activated every call is denied and Ready reports false.
type BundleSource struct {
	eng *Engine
	dl  *download.Downloader
	log *slog.Logger
	url string

	// first is closed after the first update, good or bad.
	first     chan struct{}
	firstOnce sync.Once

	// mu guards the fields below.
	mu       sync.Mutex
	revision string
	loaded   bool
	lastErr  error
}

// NewBundleEngine returns an engine whose policy comes from the signed
// bundle at o.URL, and the source that keeps it current until Close. It
// waits up to o.FirstWait for the first bundle; if none could be
// activated by then it still returns, with a policy that denies every
// call, and the source keeps trying. It fails on options that can never
// work, such as a missing or unparsable public key. Do not call Reload or
// Watch on the engine: the bundle replaces them.
func NewBundleEngine(ctx context.Context, o BundleOptions, logger *slog.Logger,
	opts ...Option) (*Engine, *BundleSource, error) {
	if logger == nil {
		logger = slog.Default()
	}
	o, err := o.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	vc, err := verification(o)
	if err != nil {
		return nil, nil, err
	}
	base, path, err := splitBundleURL(o.URL)
	if err != nil {
		return nil, nil, err
	}

	e := &Engine{logger: logger, bundle: true}
	for _, opt := range opts {
		if err := opt(e); err != nil {
			return nil, nil, err
		}
	}
	placeholder := []Module{{Name: "mcp-guard/not-loaded.rego", Source: notLoaded}}
	if err := e.compile(ctx, placeholder); err != nil {
		return nil, nil, err
	}

	client, err := restClient(base)
	if err != nil {
		return nil, nil, err
	}
	secs := int64(o.Poll.Round(time.Second) / time.Second)
	trigger := plugins.TriggerPeriodic
	dcfg := download.Config{Trigger: &trigger, Polling: download.PollingConfig{
		MinDelaySeconds: &secs, MaxDelaySeconds: &secs}}
	if err := dcfg.ValidateAndInjectDefaults(); err != nil {
		return nil, nil, fmt.Errorf("policy: bundle polling: %w", err)
	}

	s := &BundleSource{eng: e, log: logger, url: redactURL(o.URL),
		first: make(chan struct{})}
	s.dl = download.New(dcfg, client, path).
		WithBundleVerificationConfig(vc).
		WithSizeLimitBytes(o.MaxBytes).
		WithBundleParserOpts(ast.ParserOptions{RegoVersion: ast.RegoV1}).
		WithCallback(s.update)
	s.dl.Start(ctx)

	t := time.NewTimer(o.FirstWait)
	defer t.Stop()
	select {
	case <-s.first:
	case <-t.C:
	case <-ctx.Done():
		s.Close()
		return nil, nil, fmt.Errorf("policy: wait for the first bundle: %w", ctx.Err())
	}
	if !s.Ready() {
		logger.Error("no policy bundle yet; denying every call until one is activated",
			"url", s.url, "error", s.Err())
	}
	return e, s, nil
}

// withDefaults fills in the defaults and checks what can be checked.
func (o BundleOptions) withDefaults() (BundleOptions, error) {
	if o.KeyID == "" {
		o.KeyID = DefaultBundleKeyID
	}
	if o.Algorithm == "" {
		o.Algorithm = "RS256"
	}
	if o.Poll == 0 {
		o.Poll = DefaultBundlePoll
	}
	if o.Poll < time.Second {
		return o, errors.New("policy: bundle poll must be at least 1s")
	}
	if o.FirstWait == 0 {
		o.FirstWait = DefaultBundleFirstWait
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultBundleMaxBytes
	}
	if !keys.IsSupportedAlgorithm(o.Algorithm) || strings.HasPrefix(o.Algorithm, "HS") {
		return o, fmt.Errorf("policy: bundle algorithm %q is not a public-key "+
			"algorithm OPA supports (RS*, PS*, ES*)", o.Algorithm)
	}
	return o, nil
}

// verification reads the public key and builds OPA's verification
// config; a signature is then required on every bundle.
func verification(o BundleOptions) (*bundle.VerificationConfig, error) {
	raw, err := os.ReadFile(o.PublicKeyFile)
	if err != nil {
		return nil, fmt.Errorf("policy: bundle public key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("policy: bundle public key %s is not PEM", o.PublicKeyFile)
	}
	if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
		return nil, fmt.Errorf("policy: bundle public key %s: %w", o.PublicKeyFile, err)
	}
	kc := &keys.Config{Key: string(raw), Algorithm: o.Algorithm}
	return bundle.NewVerificationConfig(map[string]*keys.Config{o.KeyID: kc},
		o.KeyID, "", nil), nil
}

// splitBundleURL splits a bundle URL into the service root and the path
// the downloader asks for.
func splitBundleURL(raw string) (base, path string, err error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", fmt.Errorf("policy: bundle url %q is not an http or https URL",
			redactURL(raw))
	}
	if u.User != nil {
		return "", "", errors.New("policy: bundle url must not carry credentials")
	}
	path = strings.TrimPrefix(u.EscapedPath(), "/")
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	if path == "" {
		return "", "", errors.New("policy: bundle url names no bundle file")
	}
	return u.Scheme + "://" + u.Host, path, nil
}

// restClient is OPA's HTTP client for the service root.
func restClient(base string) (rest.Client, error) {
	timeout := int64(10)
	cfg, err := json.Marshal(map[string]any{
		"url": base, "response_header_timeout_seconds": timeout})
	if err != nil {
		return rest.Client{}, fmt.Errorf("policy: bundle client: %w", err)
	}
	c, err := rest.New(cfg, nil, rest.Logger(logging.NewNoOpLogger()))
	if err != nil {
		return rest.Client{}, fmt.Errorf("policy: bundle client: %w", err)
	}
	return c, nil
}

// redactURL drops credentials and the query from a URL for logs and
// errors.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// update receives each download: it activates a new bundle or records
// why there is none.
func (s *BundleSource) update(ctx context.Context, u download.Update) error {
	defer s.firstOnce.Do(func() { close(s.first) })
	if u.Error != nil {
		s.fail(fmt.Errorf("download: %w", u.Error))
		return nil
	}
	if u.Bundle == nil {
		return nil // not modified
	}
	if err := s.activate(ctx, u.Bundle); err != nil {
		s.fail(err)
		return err
	}
	return nil
}

// activate compiles the bundle's modules and puts them in force.
func (s *BundleSource) activate(ctx context.Context, b *bundle.Bundle) error {
	if len(b.Data) > 0 {
		return errors.New("the bundle carries data documents; the guard's " +
			"policy takes none")
	}
	if len(b.WasmModules) > 0 || len(b.PlanModules) > 0 {
		return errors.New("the bundle carries wasm or plan modules; only " +
			"Rego is accepted")
	}
	mods := BundleModules(b)
	if len(policyModules(mods)) == 0 {
		return errors.New("the bundle holds no .rego policy")
	}
	before := s.eng.Version()
	if err := s.eng.compile(ctx, mods); err != nil {
		return err
	}

	s.mu.Lock()
	s.revision, s.loaded, s.lastErr = b.Manifest.Revision, true, nil
	s.mu.Unlock()
	if after := s.eng.Version(); after != before {
		s.log.Info("policy bundle activated", "url", s.url,
			"revision", b.Manifest.Revision, "policy_version", after)
	}
	return nil
}

// fail records and logs a refused or failed update; the policy in force
// stays.
func (s *BundleSource) fail(err error) {
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
	s.log.Error("policy bundle not activated; keeping the policy in force",
		"url", s.url, "policy_version", s.eng.Version(), "error", err)
}

// BundleModules returns the Rego modules of a bundle, named by their path
// inside it, so that Version over them matches Version over the same
// files read from a directory (audit replay).
func BundleModules(b *bundle.Bundle) []Module {
	mods := make([]Module, 0, len(b.Modules))
	for _, m := range b.Modules {
		name := strings.TrimPrefix(m.Path, "/")
		if name == "" {
			name = strings.TrimPrefix(m.URL, "/")
		}
		mods = append(mods, Module{Name: name, Source: string(m.Raw)})
	}
	return mods
}

// Ready reports whether a bundle has been activated.
func (s *BundleSource) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loaded
}

// Revision returns the manifest revision of the bundle in force, "" before
// the first.
func (s *BundleSource) Revision() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revision
}

// Err returns why the latest update was refused or failed; nil after a
// good one.
func (s *BundleSource) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// Close stops polling.
func (s *BundleSource) Close() {
	s.dl.Stop(context.Background())
}
