package identity

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Defaults for HTTPOptions fields left at zero.
const (
	DefaultMaxBodyBytes  = 1 << 20
	DefaultMaxJSONDepth  = 64
	DefaultMaxJSONTokens = 100_000
)

// Log keys used by this package.
const (
	keyError   = "error"
	keyIssuer  = "issuer"
	keySubject = "subject"
	keyReason  = "reason"
	keyRemote  = "remote_addr"
	keyMethod  = "method"
	keyPath    = "path"
)

// wellKnownPRM is the RFC 9728 well-known path prefix.
const wellKnownPRM = "/.well-known/oauth-protected-resource"

// HTTPOptions configures the authenticating front of the HTTP transport.
type HTTPOptions struct {
	// Resource is this server's resource identifier (http.resource), for
	// example https://guard.example.com/mcp. Required.
	Resource string
	// ResourceMetadataURL is where clients find the protected resource
	// metadata. Empty means derived from Resource (see
	// ResourceMetadataURL).
	ResourceMetadataURL string
	// AuthorizationServers are listed in the metadata. Empty means the
	// Verifier's issuers.
	AuthorizationServers []string
	// ScopesSupported is listed in the metadata when not empty.
	ScopesSupported []string
	// Verifier checks bearer tokens. Nil means no issuer is configured
	// and every request runs as Anonymous.
	Verifier *Verifier
	// Anonymous is the caller used when Verifier is nil. It must have a
	// Subject. The integrator must allow this only on a loopback listener.
	Anonymous *Caller
	// MaxBodyBytes caps a request body; larger bodies get 413 before the
	// token is looked at (when Content-Length says so) or while reading.
	// Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxJSONDepth and MaxJSONTokens bound a POST body (see CheckJSON).
	// Zero means DefaultMaxJSONDepth and DefaultMaxJSONTokens.
	MaxJSONDepth  int
	MaxJSONTokens int
	// RateLimit is the sustained request rate allowed per caller (issuer
	// plus subject), with Burst requests at once. Zero means no limit;
	// Burst below 1 is taken as 1.
	RateLimit rate.Limit
	Burst     int
	// Logger receives request refusals. Nil discards them.
	Logger *slog.Logger
	// Now is the clock for rate limiting. Nil means time.Now.
	Now func() time.Time
}

// Validate checks the options and fills in derived values; Middleware
// calls it too, but the integrator should call it at start-up to fail
// early.
func (o *HTTPOptions) Validate() error {
	if o.Resource == "" {
		return errors.New("identity: http.resource is empty")
	}
	if o.ResourceMetadataURL == "" {
		u, err := ResourceMetadataURL(o.Resource)
		if err != nil {
			return err
		}
		o.ResourceMetadataURL = u
	}
	if strings.ContainsAny(o.ResourceMetadataURL, "\"\\\r\n") {
		return errors.New("identity: resource metadata URL has characters unfit for a header")
	}
	if o.Verifier == nil && (o.Anonymous == nil || o.Anonymous.Subject == "") {
		return errors.New("identity: no verifier and no anonymous caller with a subject")
	}
	if len(o.AuthorizationServers) == 0 && o.Verifier != nil {
		o.AuthorizationServers = o.Verifier.Issuers()
	}
	switch {
	case o.MaxBodyBytes < 0, o.MaxJSONDepth < 0, o.MaxJSONTokens < 0:
		return errors.New("identity: negative body or json limit")
	case o.RateLimit < 0, o.Burst < 0:
		return errors.New("identity: negative rate limit or burst")
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxJSONDepth == 0 {
		o.MaxJSONDepth = DefaultMaxJSONDepth
	}
	if o.MaxJSONTokens == 0 {
		o.MaxJSONTokens = DefaultMaxJSONTokens
	}
	if o.Burst < 1 {
		o.Burst = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// ResourceMetadataURL derives the RFC 9728 metadata URL of a resource by
// putting the well-known path between host and path:
// https://guard.example.com/mcp gives
// https://guard.example.com/.well-known/oauth-protected-resource/mcp.
func ResourceMetadataURL(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil {
		return "", fmt.Errorf("identity: parse http.resource: %w", err)
	}
	if u.Scheme == "" || u.Host == "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("identity: http.resource %q is not an absolute URL "+
			"without fragment", resource)
	}
	m := url.URL{Scheme: u.Scheme, Host: u.Host, Path: wellKnownPRM}
	if p := strings.TrimSuffix(u.Path, "/"); p != "" {
		m.Path += p
	}
	return m.String(), nil
}

// Middleware wraps the MCP handler. In order it: refuses bodies over
// MaxBodyBytes with 413; authenticates the bearer token (401 with a
// WWW-Authenticate header naming the resource metadata, and a fixed
// body); rate-limits per caller (429 with Retry-After); on POST reads the
// body and checks it with CheckJSON (400 with a JSON-RPC error); and
// calls next with the Caller in the request context. Invalid options give
// a handler that answers every request with 500 and logs why.
func Middleware(o HTTPOptions, next http.Handler) http.Handler {
	if err := o.Validate(); err != nil {
		log := o.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			log.Error("identity middleware misconfigured", keyError, err)
			writeJSON(w, http.StatusInternalServerError, bodyServerError)
		})
	}
	return &front{o: o, next: next, limits: newLimiters(o.RateLimit, o.Burst)}
}

// front is the validated middleware.
type front struct {
	o      HTTPOptions
	next   http.Handler
	limits *limiters
}

// Fixed response bodies. Nothing request-specific goes to the client.
var (
	bodyUnauthorized = []byte(`{"error":"unauthorized"}` + "\n")
	bodyInvalidToken = []byte(`{"error":"invalid_token"}` + "\n")
	bodyTooLarge     = []byte(`{"error":"request_too_large"}` + "\n")
	bodyRateLimited  = []byte(`{"error":"rate_limited"}` + "\n")
	bodyServerError  = []byte(`{"error":"server_error"}` + "\n")
	bodyParseError   = []byte(`{"jsonrpc":"2.0","id":null,` +
		`"error":{"code":-32700,"message":"Parse error"}}` + "\n")
	bodyInvalidRequest = []byte(`{"jsonrpc":"2.0","id":null,` +
		`"error":{"code":-32600,"message":"Invalid Request"}}` + "\n")
)

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The cap comes first: no token work for a body we will not read.
	if r.ContentLength > f.o.MaxBodyBytes {
		f.refuse(r, "body too large", nil)
		writeJSON(w, http.StatusRequestEntityTooLarge, bodyTooLarge)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, f.o.MaxBodyBytes)

	c, ok := f.authenticate(w, r)
	if !ok {
		return
	}
	if !f.allow(w, r, c) {
		return
	}
	if r.Method == http.MethodPost && !f.checkBody(w, r) {
		return
	}
	f.next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), c)))
}

// authenticate returns the caller, or writes a 401 and returns false.
func (f *front) authenticate(w http.ResponseWriter, r *http.Request) (Caller, bool) {
	if f.o.Verifier == nil {
		return *f.o.Anonymous, true
	}

	tok, sent, ok := bearerToken(r)
	if !ok {
		f.unauthorized(w, sent)
		if sent {
			f.refuse(r, "malformed authorization header", nil)
		}
		return Caller{}, false
	}
	c, err := f.o.Verifier.Verify(r.Context(), tok)
	if err != nil {
		// err names configured issuers and reason codes only.
		f.refuse(r, "token rejected", err)
		f.unauthorized(w, true)
		return Caller{}, false
	}
	return c, true
}

// bearerToken extracts the token from the one Authorization header. sent
// reports whether the client sent any Authorization header at all.
func bearerToken(r *http.Request) (tok string, sent, ok bool) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		return "", false, false
	}
	if len(vals) > 1 {
		return "", true, false
	}
	scheme, rest, found := strings.Cut(vals[0], " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", true, false
	}
	tok = strings.TrimLeft(rest, " ")
	return tok, true, tok != ""
}

// unauthorized writes the 401 of RFC 6750 with the RFC 9728 pointer.
func (f *front) unauthorized(w http.ResponseWriter, tokenSent bool) {
	h := `Bearer resource_metadata="` + f.o.ResourceMetadataURL + `"`
	body := bodyUnauthorized
	if tokenSent {
		h += `, error="invalid_token"`
		body = bodyInvalidToken
	}
	w.Header().Set("WWW-Authenticate", h)
	writeJSON(w, http.StatusUnauthorized, body)
}

// allow applies the per-caller rate limit, writing a 429 when exceeded.
func (f *front) allow(w http.ResponseWriter, r *http.Request, c Caller) bool {
	wait, ok := f.limits.take(c.Issuer+"\x00"+c.Subject, f.o.Now())
	if ok {
		return true
	}
	secs := int64((wait + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	f.o.Logger.Warn("request rate limited",
		keyIssuer, c.Issuer, keySubject, c.Subject,
		keyRemote, r.RemoteAddr, keyMethod, r.Method, keyPath, r.URL.Path)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	writeJSON(w, http.StatusTooManyRequests, bodyRateLimited)
	return false
}

// checkBody reads the capped body, runs CheckJSON, and puts the bytes
// back for next. It writes the error response and returns false on
// failure.
func (f *front) checkBody(w http.ResponseWriter, r *http.Request) bool {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if _, big := errors.AsType[*http.MaxBytesError](err); big {
			f.refuse(r, "body too large", nil)
			writeJSON(w, http.StatusRequestEntityTooLarge, bodyTooLarge)
			return false
		}
		f.refuse(r, "body read failed", err)
		writeJSON(w, http.StatusBadRequest, bodyParseError)
		return false
	}

	err = CheckJSON(bytes.NewReader(body), f.o.MaxJSONDepth, f.o.MaxJSONTokens)
	switch {
	case errors.Is(err, ErrMalformedJSON):
		f.refuse(r, "json rejected", err)
		writeJSON(w, http.StatusBadRequest, bodyParseError)
		return false
	case err != nil:
		f.refuse(r, "json rejected", err)
		writeJSON(w, http.StatusBadRequest, bodyInvalidRequest)
		return false
	}

	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return true
}

// refuse logs a refused request. err must be safe to log.
func (f *front) refuse(r *http.Request, msg string, err error) {
	attrs := []any{keyRemote, r.RemoteAddr, keyMethod, r.Method, keyPath, r.URL.Path}
	if err != nil {
		attrs = append(attrs, keyReason, err.Error())
	}
	f.o.Logger.Warn(msg, attrs...)
}

// writeJSON writes a fixed JSON body with status.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
