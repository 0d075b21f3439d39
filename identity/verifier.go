package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// ClockLeeway is how far in the future a token's nbf or iat may lie and
// still be accepted, to absorb clock skew between the issuer and the guard.
// Expiry gets no leeway: a token is refused from the second its exp passes.
const ClockLeeway = 30 * time.Second

// MaxTokenBytes caps the length of a bearer token. Real tokens, even Entra
// ID tokens with many groups, stay well below it.
const MaxTokenBytes = 32 << 10

// DefaultGroupsClaim is the claim read for groups when GroupsClaim is empty.
const DefaultGroupsClaim = "groups"

// discoveryTimeout bounds each request to an issuer when the caller's
// HTTP client has no timeout of its own.
const discoveryTimeout = 10 * time.Second

// ErrInvalidToken is wrapped by every error Verify returns for a token it
// refuses. The message after it names configured issuers and stable reason
// codes only, never anything read from the token, so it is safe to log.
var ErrInvalidToken = errors.New("identity: invalid token")

// IssuerConfig is one trusted OpenID Connect issuer.
type IssuerConfig struct {
	// Issuer is the issuer URL. It must equal the discovery document's
	// issuer and the tokens' iss exactly, trailing slash included. It must
	// be https; plain http is accepted only for a loopback host (tests).
	Issuer string
	// Audience is the value that must appear in the token's aud. Empty
	// means the default audience (WithDefaultAudience, the http.resource).
	Audience string
	// GroupsClaim names the claim holding the caller's groups: a top-level
	// claim name, or a dotted path into nested objects such as
	// realm_access.roles. A claim whose name itself contains dots (for
	// example a URL) is matched literally first. Empty means "groups".
	GroupsClaim string
	// GroupsPrefix is prepended to every group, so that groups from
	// different issuers cannot be confused in policy. Empty adds nothing.
	GroupsPrefix string
	// RequiredScopes must all be present in the token's scope (a
	// space-separated string) or scp (a string or an array) claim. Empty
	// requires none.
	RequiredScopes []string
	// Algorithms, when set, replaces the signing algorithms the issuer
	// publishes. Only asymmetric JOSE algorithms are allowed. Empty means
	// the published id_token_signing_alg_values_supported.
	Algorithms []string
}

// Option adjusts how NewVerifier builds a Verifier.
type Option func(*verifierOptions)

type verifierOptions struct {
	client          *http.Client
	now             func() time.Time
	log             *slog.Logger
	defaultAudience string
}

// WithHTTPClient sets the client used for discovery and key fetches. The
// default has a 10 s timeout and refuses redirects that leave https.
func WithHTTPClient(c *http.Client) Option {
	return func(o *verifierOptions) { o.client = c }
}

// WithClock sets the time source for expiry and not-before checks and for
// key refresh throttling. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *verifierOptions) { o.now = now }
}

// WithLogger sets the logger for key refresh problems. The default
// discards them.
func WithLogger(l *slog.Logger) Option {
	return func(o *verifierOptions) { o.log = l }
}

// WithDefaultAudience sets the audience used by issuers that leave
// Audience empty; pass the server's resource identifier (http.resource).
func WithDefaultAudience(aud string) Option {
	return func(o *verifierOptions) { o.defaultAudience = aud }
}

// Verifier checks bearer tokens against a fixed set of configured issuers.
// It is safe for concurrent use.
type Verifier struct {
	issuers []*issuer
	now     func() time.Time

	// calls counts Verify calls; tests use it to prove a request was
	// refused before any token work was done.
	calls atomic.Int64
}

// issuer is one configured issuer with its discovered verifier.
type issuer struct {
	cfg      IssuerConfig
	verifier *oidc.IDTokenVerifier
}

// asymmetricAlgs are the only signing algorithms a token may use. HMAC
// and "none" are absent on purpose: a public key must never double as an
// HMAC secret, and an unsigned token proves nothing.
var asymmetricAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.EdDSA,
}

// NewVerifier discovers each issuer over OpenID Connect discovery, checks
// that the discovered issuer matches the configured one exactly, fetches
// its signing keys, and builds one verifier per issuer. Discovery and key
// URLs must be https, except that plain http is allowed for loopback
// issuers (127.0.0.0/8, ::1, localhost) so that tests can run a real
// issuer in-process.
func NewVerifier(ctx context.Context, issuers []IssuerConfig, opts ...Option) (*Verifier, error) {
	o := verifierOptions{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.client == nil {
		o.client = defaultClient()
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if len(issuers) == 0 {
		return nil, errors.New("identity: no issuers configured")
	}

	v := &Verifier{now: o.now}
	seen := make(map[string]bool)
	for i, cfg := range issuers {
		if seen[cfg.Issuer] {
			return nil, fmt.Errorf("identity: issuer %q configured twice", cfg.Issuer)
		}
		seen[cfg.Issuer] = true

		is, err := newIssuer(ctx, cfg, &o)
		if err != nil {
			return nil, fmt.Errorf("identity: auth.oidc[%d]: %w", i, err)
		}
		v.issuers = append(v.issuers, is)
	}
	return v, nil
}

// newIssuer validates cfg, runs discovery and builds the verifier.
func newIssuer(ctx context.Context, cfg IssuerConfig, o *verifierOptions) (*issuer, error) {
	if cfg.Audience == "" {
		cfg.Audience = o.defaultAudience
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = DefaultGroupsClaim
	}
	if err := validateIssuerConfig(cfg); err != nil {
		return nil, err
	}

	// Discovery checks that the document's issuer equals cfg.Issuer.
	dctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	provider, err := oidc.NewProvider(oidc.ClientContext(dctx, o.client), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover issuer %q: %w", cfg.Issuer, err)
	}
	var meta struct {
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("read discovery of %q: %w", cfg.Issuer, err)
	}

	algs, err := signingAlgs(cfg.Algorithms, meta.Algs)
	if err != nil {
		return nil, fmt.Errorf("issuer %q: %w", cfg.Issuer, err)
	}
	if err := checkFetchURL(meta.JWKSURI, cfg.Issuer); err != nil {
		return nil, fmt.Errorf("issuer %q: jwks_uri: %w", cfg.Issuer, err)
	}

	keys := newKeySet(cfg.Issuer, meta.JWKSURI, algs, o.client, o.now, o.log)
	if err := keys.refresh(dctx, true); err != nil {
		return nil, fmt.Errorf("issuer %q: %w", cfg.Issuer, err)
	}

	// Time checks are ours (exp required, 30 s nbf leeway), so go-oidc's
	// own expiry check, which allows 5 min on nbf, is switched off.
	ver := oidc.NewVerifier(cfg.Issuer, keys, &oidc.Config{
		ClientID:             cfg.Audience,
		SupportedSigningAlgs: algs,
		SkipExpiryCheck:      true,
		Now:                  o.now,
	})
	return &issuer{cfg: cfg, verifier: ver}, nil
}

// validateIssuerConfig checks the fields that need no network.
func validateIssuerConfig(cfg IssuerConfig) error {
	if cfg.Issuer == "" {
		return errors.New("issuer is empty")
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("issuer %q: must not carry query, fragment or user", cfg.Issuer)
	}
	if err := checkScheme(u, isLoopbackHost(u.Hostname())); err != nil {
		return fmt.Errorf("issuer %q: %w", cfg.Issuer, err)
	}
	if cfg.Audience == "" {
		return fmt.Errorf("issuer %q: audience is empty and no default audience set",
			cfg.Issuer)
	}
	for _, p := range strings.Split(cfg.GroupsClaim, ".") {
		if p == "" {
			return fmt.Errorf("issuer %q: groups_claim %q has an empty path element",
				cfg.Issuer, cfg.GroupsClaim)
		}
	}
	for _, s := range cfg.RequiredScopes {
		if s == "" || strings.ContainsAny(s, " \t") {
			return fmt.Errorf("issuer %q: required scope %q is not a single scope",
				cfg.Issuer, s)
		}
	}
	return nil
}

// signingAlgs returns the algorithms tokens of an issuer may use: the
// configured override, or the published list, restricted to asymmetric
// algorithms. An empty result is an error rather than a silent default.
func signingAlgs(override, published []string) ([]string, error) {
	if len(override) > 0 {
		for _, a := range override {
			if !slices.Contains(asymmetricAlgs, a) {
				return nil, fmt.Errorf("algorithm %q is not an allowed asymmetric algorithm", a)
			}
		}
		return slices.Clone(override), nil
	}
	var algs []string
	for _, a := range published {
		if slices.Contains(asymmetricAlgs, a) && !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		return nil, errors.New("issuer publishes no supported asymmetric signing algorithm")
	}
	return algs, nil
}

// checkFetchURL checks a URL taken from discovery before the guard fetches
// it: https, or http on loopback when the issuer itself is on loopback.
func checkFetchURL(raw, issuerURL string) error {
	if raw == "" {
		return errors.New("missing")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	iu, err := url.Parse(issuerURL)
	if err != nil {
		return fmt.Errorf("parse issuer: %w", err)
	}
	loopback := isLoopbackHost(iu.Hostname()) && isLoopbackHost(u.Hostname())
	return checkScheme(u, loopback)
}

// checkScheme accepts https, and http only when loopbackOK.
func checkScheme(u *url.URL, loopbackOK bool) error {
	switch {
	case u.Host == "":
		return errors.New("not an absolute URL")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && loopbackOK:
		return nil
	case u.Scheme == "http":
		return errors.New("plain http is allowed only on loopback")
	default:
		return fmt.Errorf("scheme %q is not https", u.Scheme)
	}
}

// isLoopbackHost reports whether host is localhost or a loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// defaultClient is the HTTP client for issuers when none is given.
func defaultClient() *http.Client {
	return &http.Client{
		Timeout: discoveryTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			loopback := isLoopbackHost(via[0].URL.Hostname()) &&
				isLoopbackHost(req.URL.Hostname())
			return checkScheme(req.URL, loopback)
		},
	}
}

// Issuers returns the configured issuer URLs in configuration order, for
// the authorization_servers of the protected resource metadata.
func (v *Verifier) Issuers() []string {
	out := make([]string, 0, len(v.issuers))
	for _, is := range v.issuers {
		out = append(out, is.cfg.Issuer)
	}
	return out
}

// Verify checks a raw bearer token and returns the caller it names. Each
// configured issuer is tried in turn until one accepts; the unverified iss
// only decides which is tried first, and nothing in the unverified token
// chooses the key or skips a check. A token passes one issuer only if its
// signature verifies against that issuer's published keys with one of its
// allowed algorithms, its iss equals the issuer, its aud contains the
// audience, it carries an exp that has not passed, and its nbf and iat
// are no more than ClockLeeway in the future. Claims are read only after
// that. On failure the error wraps ErrInvalidToken and lists a reason per
// issuer; it never contains the token or its claims.
func (v *Verifier) Verify(ctx context.Context, raw string) (Caller, error) {
	v.calls.Add(1)
	if reason := checkShape(raw); reason != "" {
		return Caller{}, fmt.Errorf("%w (%s)", ErrInvalidToken, reason)
	}

	now := v.now()
	reasons := make([]string, 0, len(v.issuers))
	for _, is := range v.ordered(raw) {
		c, reason := is.verify(ctx, raw, now)
		if reason == "" {
			return c, nil
		}
		reasons = append(reasons, is.cfg.Issuer+": "+reason)
	}
	return Caller{}, fmt.Errorf("%w (%s)", ErrInvalidToken, strings.Join(reasons, "; "))
}

// ordered returns the issuers to try, the one named by the token's
// unverified iss first. The hint only saves a useless attempt (and a
// throttled key fetch) at the wrong issuer: every issuer still applies
// all its checks, and a token that names no issuer is tried everywhere.
func (v *Verifier) ordered(raw string) []*issuer {
	if len(v.issuers) < 2 {
		return v.issuers
	}
	hint := unverifiedIssuer(raw)
	i := slices.IndexFunc(v.issuers, func(is *issuer) bool { return is.cfg.Issuer == hint })
	if i <= 0 {
		return v.issuers
	}
	out := make([]*issuer, 0, len(v.issuers))
	out = append(out, v.issuers[i])
	out = append(out, v.issuers[:i]...)
	return append(out, v.issuers[i+1:]...)
}

// unverifiedIssuer reads iss from a token whose shape checkShape accepted,
// or returns "" when it cannot. Its result must only order attempts.
func unverifiedIssuer(raw string) string {
	parts := strings.Split(raw, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return ""
	}
	return c.Iss
}

// VerifyStartupToken verifies a token handed to the process at start-up,
// for example from an environment variable when serving stdio. It accepts
// surrounding whitespace and an optional "Bearer " prefix, then applies
// exactly the checks of Verify. The caller is fixed for the life of the
// process, so the integrator should stop serving once the token expires.
func (v *Verifier) VerifyStartupToken(ctx context.Context, raw string) (Caller, error) {
	tok := strings.TrimSpace(raw)
	if scheme, rest, ok := strings.Cut(tok, " "); ok && strings.EqualFold(scheme, "bearer") {
		tok = strings.TrimSpace(rest)
	}
	if tok == "" {
		return Caller{}, fmt.Errorf("%w (startup token is empty)", ErrInvalidToken)
	}
	c, err := v.Verify(ctx, tok)
	if err != nil {
		return Caller{}, fmt.Errorf("startup token: %w", err)
	}
	return c, nil
}

// checkShape refuses anything that is not a compact JWS of three
// non-empty base64url parts. This turns away unsigned tokens (empty
// signature) and the JSON serialization before any parsing.
func checkShape(raw string) string {
	switch {
	case raw == "":
		return "empty"
	case len(raw) > MaxTokenBytes:
		return "too_large"
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "malformed"
	}
	for _, p := range parts {
		if p == "" || strings.IndexFunc(p, notBase64URL) >= 0 {
			return "malformed"
		}
	}
	return ""
}

func notBase64URL(r rune) bool {
	switch {
	case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		return false
	case r == '-' || r == '_':
		return false
	}
	return true
}
