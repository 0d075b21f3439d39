package identity

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// fixture is a guard front with two configured issuers on loopback.
type fixture struct {
	a     *testIssuer // mockoidc's shared key; audience = resource
	b     *testIssuer // own key; audience mcp-guard-b, nested groups, scope
	clock *testClock
	v     *Verifier
	logs  *logBuffer
	srv   *httptest.Server
	meta  string // the resource metadata URL
}

func newFixture(t *testing.T, mod func(*HTTPOptions)) *fixture {
	t.Helper()
	f := &fixture{
		a:     startIssuer(t, nil),
		b:     startIssuer(t, newRSAKey(t)),
		clock: newTestClock(),
		logs:  &logBuffer{},
	}
	v, err := NewVerifier(context.Background(), []IssuerConfig{
		{Issuer: f.a.Issuer()},
		{
			Issuer:         f.b.Issuer(),
			Audience:       "mcp-guard-b",
			GroupsClaim:    "realm_access.roles",
			GroupsPrefix:   "kc:",
			RequiredScopes: []string{"mcp"},
		},
	}, WithDefaultAudience(testResource), WithClock(f.clock.Now),
		WithLogger(f.logs.logger()))
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	f.v = v
	o := HTTPOptions{
		Resource: testResource,
		Verifier: v,
		Logger:   f.logs.logger(),
		Now:      f.clock.Now,
	}
	if mod != nil {
		mod(&o)
	}
	f.srv = serve(t, o)
	f.meta = "https://guard.example.com/.well-known/oauth-protected-resource/mcp"
	return f
}

// publicKeyBytes returns the issuer's public key as PEM and as DER, the
// bytes an attacker would try as an HMAC secret.
func publicKeyBytes(t *testing.T, ti *testIssuer) (pemBytes, der []byte) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(ti.Keypair.PublicKey)
	if err != nil {
		t.Fatalf("marshal public key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), der
}

// hmacToken signs claims with HS256 under secret, claiming the issuer's kid.
func hmacToken(t *testing.T, ti *testIssuer, claims jwt.MapClaims, secret []byte) string {
	t.Helper()
	kid, err := ti.Keypair.KeyID()
	if err != nil {
		t.Fatalf("kid: %v", err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatalf("sign hs256: %v", err)
	}
	return s
}

func TestMiddlewareTokens(t *testing.T) {
	f := newFixture(t, nil)
	other := startIssuer(t, newRSAKey(t)) // not configured, own key
	twin := startIssuer(t, nil)           // not configured, same key as a
	pemKey, derKey := publicKeyBytes(t, f.a)
	const email = "leak-check@example.com"

	type row struct {
		name   string
		token  func(now time.Time, sub string) string
		want   *Caller     // nil: expect 401
		reason string      // wanted in the log for a refusal
		at     *testIssuer // the issuer whose reason is checked; nil: shape
	}
	aClaims := func(now time.Time, sub string, extra jwt.MapClaims) jwt.MapClaims {
		c := f.a.claims(now, testResource, sub)
		c["email"] = email
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	aToken := func(extra jwt.MapClaims) func(time.Time, string) string {
		return func(now time.Time, sub string) string {
			return f.a.sign(t, aClaims(now, sub, extra))
		}
	}
	bToken := func(extra jwt.MapClaims) func(time.Time, string) string {
		return func(now time.Time, sub string) string {
			c := f.b.claims(now, "mcp-guard-b", sub)
			c["scope"] = "openid mcp"
			for k, v := range extra {
				c[k] = v
			}
			return f.b.sign(t, c)
		}
	}

	rows := []row{
		{
			name: "valid token with groups and verified email",
			token: aToken(jwt.MapClaims{
				"email_verified": true, "groups": []string{"ops", "dev", "dev", ""},
			}),
			want: &Caller{Email: email, Groups: []string{"dev", "ops"}},
		},
		{
			name:  "second issuer with nested groups path and prefix",
			token: bToken(jwt.MapClaims{"realm_access": map[string]any{"roles": []string{"admin"}}}),
			want:  &Caller{Groups: []string{"kc:admin"}},
		},
		{
			name:  "second issuer scope as scp array",
			token: bToken(jwt.MapClaims{"scope": nil, "scp": []string{"mcp"}}),
			want:  &Caller{Groups: []string{}},
		},
		{
			name:  "groups as a single string",
			token: aToken(jwt.MapClaims{"groups": "dev"}),
			want:  &Caller{Groups: []string{"dev"}},
		},
		{
			name:  "email_verified false drops email",
			token: aToken(jwt.MapClaims{"email_verified": false}),
			want:  &Caller{Groups: []string{}},
		},
		{
			name:  "email_verified missing drops email",
			token: aToken(nil),
			want:  &Caller{Groups: []string{}},
		},
		{
			name:  "email_verified as string drops email",
			token: aToken(jwt.MapClaims{"email_verified": "true"}),
			want:  &Caller{Groups: []string{}},
		},
		{
			name: "nbf inside the leeway",
			token: func(now time.Time, sub string) string {
				return f.a.sign(t, aClaims(now, sub, jwt.MapClaims{
					"nbf": now.Add(20 * time.Second).Unix(),
				}))
			},
			want: &Caller{Groups: []string{}},
		},
		{
			name: "wrong audience",
			token: func(now time.Time, sub string) string {
				return f.a.sign(t, aClaims(now, sub, jwt.MapClaims{"aud": "other-client"}))
			},
			reason: "wrong_audience",
			at:     f.a,
		},
		{
			name: "issuer not configured, own key",
			token: func(now time.Time, sub string) string {
				return other.sign(t, other.claims(now, testResource, sub))
			},
			reason: "bad_signature",
			at:     f.a,
		},
		{
			name: "issuer not configured, same key as a configured one",
			token: func(now time.Time, sub string) string {
				return twin.sign(t, twin.claims(now, testResource, sub))
			},
			reason: "wrong_issuer",
			at:     f.a,
		},
		{
			name: "alg none with empty signature",
			token: func(now time.Time, sub string) string {
				return unsignedToken(t, aClaims(now, sub, nil), "")
			},
			reason: "malformed",
		},
		{
			name: "alg none with a signature part",
			token: func(now time.Time, sub string) string {
				return unsignedToken(t, aClaims(now, sub, nil), "c2ln")
			},
			reason: "alg_not_allowed",
			at:     f.a,
		},
		{
			name: "HS256 keyed with the issuer public key PEM",
			token: func(now time.Time, sub string) string {
				return hmacToken(t, f.a, aClaims(now, sub, nil), pemKey)
			},
			reason: "alg_not_allowed",
			at:     f.a,
		},
		{
			name: "HS256 keyed with the issuer public key DER",
			token: func(now time.Time, sub string) string {
				return hmacToken(t, f.a, aClaims(now, sub, nil), derKey)
			},
			reason: "alg_not_allowed",
			at:     f.a,
		},
		{
			name: "expired ten minutes ago",
			token: func(now time.Time, sub string) string {
				return f.a.sign(t, aClaims(now, sub, jwt.MapClaims{
					"iat": now.Add(-time.Hour).Unix(),
					"exp": now.Add(-10 * time.Minute).Unix(),
				}))
			},
			reason: "expired",
			at:     f.a,
		},
		{
			name: "missing exp",
			token: func(now time.Time, sub string) string {
				c := aClaims(now, sub, nil)
				delete(c, "exp")
				return f.a.sign(t, c)
			},
			reason: "missing_exp",
			at:     f.a,
		},
		{
			name:   "exp as a string",
			token:  aToken(jwt.MapClaims{"exp": "99999999999"}),
			reason: "malformed_claims",
			at:     f.a,
		},
		{
			name: "nbf two minutes in the future",
			token: func(now time.Time, sub string) string {
				return f.a.sign(t, aClaims(now, sub, jwt.MapClaims{
					"nbf": now.Add(2 * time.Minute).Unix(),
				}))
			},
			reason: "not_yet_valid",
			at:     f.a,
		},
		{
			name: "iat an hour in the future",
			token: func(now time.Time, sub string) string {
				return f.a.sign(t, aClaims(now, sub, jwt.MapClaims{
					"iat": now.Add(time.Hour).Unix(),
				}))
			},
			reason: "issued_in_future",
			at:     f.a,
		},
		{
			name:   "second issuer without the required scope",
			token:  bToken(jwt.MapClaims{"scope": "openid"}),
			reason: "missing_scope",
			at:     f.b,
		},
		{
			name:   "groups of the wrong type",
			token:  aToken(jwt.MapClaims{"groups": []any{"dev", 7}}),
			reason: "bad_groups_claim",
			at:     f.a,
		},
		{
			name: "groups overage marker instead of groups",
			token: aToken(jwt.MapClaims{
				"_claim_names":   map[string]any{"groups": "src1"},
				"_claim_sources": map[string]any{"src1": map[string]any{"endpoint": "https://graph.invalid/x"}},
			}),
			reason: "groups_overage",
			at:     f.a,
		},
		{
			name: "missing subject",
			token: func(now time.Time, sub string) string {
				c := aClaims(now, sub, nil)
				delete(c, "sub")
				return f.a.sign(t, c)
			},
			reason: "missing_subject",
			at:     f.a,
		},
		{
			name:   "not a JWT",
			token:  func(time.Time, string) string { return "not-a-jwt" },
			reason: "malformed",
		},
	}

	for i, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			f.logs.Reset()
			sub := "subject-" + strings.Repeat("x", i) + "-7f3a"
			tok := r.token(f.clock.Now(), sub)
			got := do(t, http.MethodGet, f.srv.URL+"/mcp", tok, "")

			if r.want != nil {
				if got.status != http.StatusOK {
					t.Fatalf("status = %d, want 200; log: %s", got.status, f.logs)
				}
				e := decodeEcho(t, got.body)
				want := *r.want
				want.Subject = sub
				if want.Issuer == "" {
					want.Issuer = f.a.Issuer()
					if strings.HasPrefix(r.name, "second issuer") {
						want.Issuer = f.b.Issuer()
					}
				}
				if !e.Found || !equalCaller(e.Caller, want) {
					t.Fatalf("caller = %+v (found %v), want %+v", e.Caller, e.Found, want)
				}
				return
			}

			if got.status != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401", got.status)
			}
			if got.body != string(bodyInvalidToken) {
				t.Errorf("body = %q, want the fixed invalid_token body", got.body)
			}
			wantHdr := `Bearer resource_metadata="` + f.meta + `", error="invalid_token"`
			if h := got.header.Get("WWW-Authenticate"); h != wantHdr {
				t.Errorf("WWW-Authenticate = %q, want %q", h, wantHdr)
			}
			log := f.logs.String()
			frag := "(" + r.reason + ")"
			if r.at != nil {
				frag = r.at.Issuer() + ": " + r.reason
			}
			if !strings.Contains(log, frag) {
				t.Errorf("log lacks %q: %s", frag, log)
			}
			leaks := append([]string{sub, email, tok}, strings.Split(tok, ".")...)
			for _, s := range leaks {
				if s != "" && len(s) > 3 && strings.Contains(log, s) {
					t.Errorf("log contains %q from the refused token: %s", s, log)
				}
			}
		})
	}

	// None of the refused tokens made the guard refetch keys: the clock
	// stood still, so every refresh was throttled.
	if a, b := f.a.jwksHits.Load(), f.b.jwksHits.Load(); a != 1 || b != 1 {
		t.Errorf("jwks fetches = %d, %d; want 1 each (start-up only)", a, b)
	}
}

func equalCaller(a, b Caller) bool {
	return a.Subject == b.Subject && a.Issuer == b.Issuer && a.Email == b.Email &&
		slices.Equal(a.Groups, b.Groups)
}

func TestMiddlewareAuthorizationHeader(t *testing.T) {
	f := newFixture(t, nil)
	valid := f.a.sign(t, f.a.claims(f.clock.Now(), testResource, "alice"))

	tests := []struct {
		name    string
		headers []string // Authorization values
		status  int
		header  string
		body    []byte
	}{
		{
			name:   "missing",
			status: http.StatusUnauthorized,
			header: `Bearer resource_metadata="` + f.meta + `"`,
			body:   bodyUnauthorized,
		},
		{
			name:    "basic scheme",
			headers: []string{"Basic YWxpY2U6cHc="},
			status:  http.StatusUnauthorized,
			header:  `Bearer resource_metadata="` + f.meta + `", error="invalid_token"`,
			body:    bodyInvalidToken,
		},
		{
			name:    "bearer without token",
			headers: []string{"Bearer "},
			status:  http.StatusUnauthorized,
			header:  `Bearer resource_metadata="` + f.meta + `", error="invalid_token"`,
			body:    bodyInvalidToken,
		},
		{
			name:    "two headers, one valid",
			headers: []string{"Bearer " + valid, "Bearer junk"},
			status:  http.StatusUnauthorized,
			header:  `Bearer resource_metadata="` + f.meta + `", error="invalid_token"`,
			body:    bodyInvalidToken,
		},
		{
			name:    "lowercase scheme",
			headers: []string{"bearer " + valid},
			status:  http.StatusOK,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, f.srv.URL+"/mcp", nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range tt.headers {
				req.Header.Add("Authorization", h)
			}
			got := send(t, req)
			if got.status != tt.status {
				t.Fatalf("status = %d, want %d", got.status, tt.status)
			}
			if tt.status != http.StatusOK {
				if h := got.header.Get("WWW-Authenticate"); h != tt.header {
					t.Errorf("WWW-Authenticate = %q, want %q", h, tt.header)
				}
				if got.body != string(tt.body) {
					t.Errorf("body = %q, want %q", got.body, tt.body)
				}
			}
		})
	}
}

func TestMiddlewareBodyCap(t *testing.T) {
	f := newFixture(t, func(o *HTTPOptions) { o.MaxBodyBytes = 64 })
	tok := f.a.sign(t, f.a.claims(f.clock.Now(), testResource, "alice"))
	big := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` +
		strings.Repeat("a", 100) + `"}}`

	t.Run("declared length over the cap is refused before auth", func(t *testing.T) {
		before := f.v.calls.Load()
		got := do(t, http.MethodPost, f.srv.URL+"/mcp", tok, big)
		if got.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status = %d, want 413", got.status)
		}
		if n := f.v.calls.Load() - before; n != 0 {
			t.Errorf("verifier called %d times for an oversized body, want 0", n)
		}
	})

	t.Run("oversized body without a length is cut while reading", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/mcp",
			struct{ *strings.Reader }{strings.NewReader(big)}) // hides the length
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		got := send(t, req)
		if got.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status = %d, want 413", got.status)
		}
	})

	t.Run("body under the cap reaches the handler unchanged", func(t *testing.T) {
		small := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
		got := do(t, http.MethodPost, f.srv.URL+"/mcp", tok, small)
		if got.status != http.StatusOK {
			t.Fatalf("status = %d, want 200: %s", got.status, got.body)
		}
		if e := decodeEcho(t, got.body); e.Body != small {
			t.Errorf("handler saw body %q, want %q", e.Body, small)
		}
	})
}

func TestMiddlewareRateLimit(t *testing.T) {
	f := newFixture(t, func(o *HTTPOptions) {
		o.RateLimit = rate.Every(time.Hour)
		o.Burst = 2
	})
	now := f.clock.Now()
	alice := f.a.sign(t, f.a.claims(now, testResource, "alice"))
	bob := f.a.sign(t, f.a.claims(now, testResource, "bob"))
	// Same subject at another issuer is another caller.
	aliceB := f.b.sign(t, jwt.MapClaims{
		"iss": f.b.Issuer(), "aud": "mcp-guard-b", "sub": "alice", "scope": "mcp",
		"exp": now.Add(3 * time.Hour).Unix(),
	})
	url := f.srv.URL + "/mcp"

	for i := range 2 {
		if got := do(t, http.MethodGet, url, alice, ""); got.status != http.StatusOK {
			t.Fatalf("request %d: status = %d, want 200", i+1, got.status)
		}
	}
	got := do(t, http.MethodGet, url, alice, "")
	if got.status != http.StatusTooManyRequests {
		t.Fatalf("third request: status = %d, want 429", got.status)
	}
	if ra := got.header.Get("Retry-After"); ra != "3600" {
		t.Errorf("Retry-After = %q, want 3600 (an hour to the next token)", ra)
	}
	if got.body != string(bodyRateLimited) {
		t.Errorf("body = %q", got.body)
	}

	for name, tok := range map[string]string{"bob": bob, "alice at b": aliceB} {
		if got := do(t, http.MethodGet, url, tok, ""); got.status != http.StatusOK {
			t.Errorf("%s: status = %d, want 200 (own bucket)", name, got.status)
		}
	}

	f.clock.Advance(time.Hour)
	alice = f.a.sign(t, f.a.claims(f.clock.Now(), testResource, "alice"))
	if got := do(t, http.MethodGet, url, alice, ""); got.status != http.StatusOK {
		t.Errorf("after an hour: status = %d, want 200", got.status)
	}
}

func TestMiddlewareJSONChecks(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.a.sign(t, f.a.claims(f.clock.Now(), testResource, "alice"))
	url := f.srv.URL + "/mcp"

	tests := []struct {
		name   string
		body   string
		status int
		want   []byte
	}{
		{
			name: "duplicate key in arguments",
			body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":` +
				`{"name":"run_shell","arguments":{"cmd":"ls","cmd":"rm -rf /"}}}`,
			status: http.StatusBadRequest,
			want:   bodyInvalidRequest,
		},
		{
			name:   "malformed",
			body:   `{"jsonrpc":"2.0","id":1,`,
			status: http.StatusBadRequest,
			want:   bodyParseError,
		},
		{
			name:   "valid request after the refusals",
			body:   `{"jsonrpc":"2.0","id":1,"method":"ping"}`,
			status: http.StatusOK,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, http.MethodPost, url, tok, tt.body)
			if got.status != tt.status {
				t.Fatalf("status = %d, want %d: %s", got.status, tt.status, got.body)
			}
			if tt.want != nil && got.body != string(tt.want) {
				t.Errorf("body = %q, want %q", got.body, tt.want)
			}
		})
	}
}

func TestMiddlewareAnonymous(t *testing.T) {
	logs := &logBuffer{}
	anon := &Caller{Subject: "local", Groups: []string{"local"}}
	tests := []struct {
		name   string
		opts   HTTPOptions
		status int
	}{
		{
			name:   "anonymous caller when no verifier",
			opts:   HTTPOptions{Resource: testResource, Anonymous: anon},
			status: http.StatusOK,
		},
		{
			name:   "no verifier and no anonymous caller fails closed",
			opts:   HTTPOptions{Resource: testResource, Logger: logs.logger()},
			status: http.StatusInternalServerError,
		},
		{
			name:   "missing resource fails closed",
			opts:   HTTPOptions{Anonymous: anon},
			status: http.StatusInternalServerError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, tt.opts)
			got := do(t, http.MethodGet, srv.URL+"/mcp", "", "")
			if got.status != tt.status {
				t.Fatalf("status = %d, want %d", got.status, tt.status)
			}
			if tt.status == http.StatusOK {
				e := decodeEcho(t, got.body)
				if !e.Found || !equalCaller(e.Caller, *anon) {
					t.Errorf("caller = %+v, want %+v", e.Caller, *anon)
				}
			}
		})
	}
	if !strings.Contains(logs.String(), "misconfigured") {
		t.Errorf("misconfiguration not logged: %s", logs)
	}
}

func TestMiddlewareIssuerOrder(t *testing.T) {
	f := newFixture(t, nil)
	url := f.srv.URL + "/mcp"
	// Past the throttle window, an attempt at the wrong issuer would make
	// it refetch its keys.
	f.clock.Advance(jwksMinRefresh + time.Second)
	now := f.clock.Now()

	tokB := f.b.sign(t, jwt.MapClaims{
		"iss": f.b.Issuer(), "aud": "mcp-guard-b", "sub": "bob", "scope": "mcp",
		"exp": now.Add(time.Minute).Unix(),
	})
	if got := do(t, http.MethodGet, url, tokB, ""); got.status != http.StatusOK {
		t.Fatalf("token of the second issuer: status = %d, want 200", got.status)
	}
	if n := f.a.jwksHits.Load(); n != 1 {
		t.Errorf("first issuer fetched keys %d times, want 1: it was tried for "+
			"a token naming the second", n)
	}

	// A token signed by b that names a as its issuer is tried at a first
	// and still checked at b, where its iss does not match.
	forged := f.b.sign(t, jwt.MapClaims{
		"iss": f.a.Issuer(), "aud": []string{testResource, "mcp-guard-b"},
		"sub": "mallory", "scope": "mcp", "exp": now.Add(time.Minute).Unix(),
	})
	f.logs.Reset()
	if got := do(t, http.MethodGet, url, forged, ""); got.status != http.StatusUnauthorized {
		t.Fatalf("forged iss: status = %d, want 401", got.status)
	}
	want := f.a.Issuer() + ": bad_signature; " + f.b.Issuer() + ": wrong_issuer"
	if log := f.logs.String(); !strings.Contains(log, want) {
		t.Errorf("log lacks %q: %s", want, log)
	}
}
