package identity

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// fakeDiscovery serves a discovery document with the given algorithms and
// jwks_uri on loopback; "{self}" in jwksURI becomes the server's URL.
func fakeDiscovery(t *testing.T, algs []string, jwksURI string) string {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]any{
				"issuer":                                srv.URL,
				"jwks_uri":                              strings.ReplaceAll(jwksURI, "{self}", srv.URL),
				"id_token_signing_alg_values_supported": algs,
			})
		case "/keys":
			_, _ = w.Write([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","alg":"HS256"}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestNewVerifierRefusesBadConfig(t *testing.T) {
	ti := startIssuer(t, nil)
	ctx := context.Background()
	aud := WithDefaultAudience(testResource)

	tests := []struct {
		name    string
		issuers []IssuerConfig
		opts    []Option
		want    string
	}{
		{name: "no issuers", want: "no issuers"},
		{name: "empty issuer", issuers: []IssuerConfig{{}}, opts: []Option{aud},
			want: "issuer is empty"},
		{name: "plain http off loopback", opts: []Option{aud},
			issuers: []IssuerConfig{{Issuer: "http://login.example.com"}},
			want:    "only on loopback"},
		{name: "issuer with query", opts: []Option{aud},
			issuers: []IssuerConfig{{Issuer: "https://login.example.com/?tenant=x"}},
			want:    "query"},
		{name: "no audience and no default",
			issuers: []IssuerConfig{{Issuer: ti.Issuer()}},
			want:    "audience is empty"},
		{name: "groups path with an empty element", opts: []Option{aud},
			issuers: []IssuerConfig{{Issuer: ti.Issuer(), GroupsClaim: "realm_access..roles"}},
			want:    "empty path element"},
		{name: "required scope with a space", opts: []Option{aud},
			issuers: []IssuerConfig{{Issuer: ti.Issuer(), RequiredScopes: []string{"a b"}}},
			want:    "not a single scope"},
		{name: "HMAC algorithm override", opts: []Option{aud},
			issuers: []IssuerConfig{{Issuer: ti.Issuer(), Algorithms: []string{"HS256"}}},
			want:    "not an allowed asymmetric algorithm"},
		{name: "issuer configured twice", opts: []Option{aud},
			issuers: []IssuerConfig{{Issuer: ti.Issuer()}, {Issuer: ti.Issuer()}},
			want:    "configured twice"},
		{name: "issuer differs from discovery by a trailing slash", opts: []Option{aud},
			issuers: []IssuerConfig{{Issuer: ti.Issuer() + "/"}},
			want:    "did not match"},
		{name: "issuer publishes only HMAC and none", opts: []Option{aud},
			issuers: []IssuerConfig{{Issuer: fakeDiscovery(t, []string{"HS256", "none"}, "{self}/keys")}},
			want:    "no supported asymmetric signing algorithm"},
		{name: "jwks_uri leaves loopback over http", opts: []Option{aud},
			issuers: []IssuerConfig{{
				Issuer: fakeDiscovery(t, []string{"RS256"}, "http://keys.example.com/jwks"),
			}},
			want: "jwks_uri: plain http is allowed only on loopback"},
		{name: "key set holds only a symmetric key", opts: []Option{aud},
			issuers: []IssuerConfig{{Issuer: fakeDiscovery(t, []string{"RS256"}, "{self}/keys")}},
			want:    "no usable public signing key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(ctx, tt.issuers, tt.opts...)
			if err == nil {
				t.Fatalf("NewVerifier = %v, want error containing %q", v, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewVerifier error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestVerifierAlgorithmOverride(t *testing.T) {
	ti := startIssuer(t, nil)
	now := time.Now()
	tests := []struct {
		name string
		algs []string
		ok   bool
	}{
		{name: "RS256 allowed", algs: []string{"RS256"}, ok: true},
		{name: "only ES256 allowed refuses an RS256 token", algs: []string{"ES256"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(context.Background(), []IssuerConfig{
				{Issuer: ti.Issuer(), Audience: "aud-1", Algorithms: tt.algs},
			})
			if err != nil {
				t.Fatalf("NewVerifier: %v", err)
			}
			_, err = v.Verify(context.Background(), ti.sign(t, ti.claims(now, "aud-1", "alice")))
			if (err == nil) != tt.ok {
				t.Fatalf("Verify error = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestVerifierKeyRotationAndThrottle(t *testing.T) {
	ti := startIssuer(t, newRSAKey(t))
	clock := newTestClock()
	v, err := NewVerifier(context.Background(),
		[]IssuerConfig{{Issuer: ti.Issuer(), Audience: "aud-1"}}, WithClock(clock.Now))
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	if n := ti.jwksHits.Load(); n != 1 {
		t.Fatalf("jwks fetches after start-up = %d, want 1", n)
	}

	// The issuer rotates to a new key and publishes only that one.
	next, err := mockoidc.NewKeypair(newRSAKey(t))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := next.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	ti.jwks.Store(&doc)
	sign := func(kp *mockoidc.Keypair) string {
		tok, err := kp.SignJWT(ti.claims(clock.Now(), "aud-1", "alice"))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	verify := func(tok string) error {
		_, err := v.Verify(context.Background(), tok)
		return err
	}

	steps := []struct {
		name    string
		advance time.Duration
		token   func() string
		ok      bool
		fetches int64 // total jwks fetches after the step
	}{
		{name: "new key within the throttle window is refused without a fetch",
			token: func() string { return sign(next) }, fetches: 1},
		{name: "again, still no fetch",
			token: func() string { return sign(next) }, fetches: 1},
		{name: "after the window an unknown key id triggers one fetch",
			advance: jwksMinRefresh + time.Second,
			token:   func() string { return sign(next) }, ok: true, fetches: 2},
		{name: "old key is no longer trusted once withdrawn",
			token: func() string { return sign(ti.Keypair) }, fetches: 2},
		{name: "old key again, later, costs one throttled fetch",
			advance: jwksMinRefresh + time.Second,
			token:   func() string { return sign(ti.Keypair) }, fetches: 3},
		{name: "keys older than the max age are refetched",
			advance: jwksMaxAge + time.Minute,
			token:   func() string { return sign(next) }, ok: true, fetches: 4},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		err := verify(s.token())
		if (err == nil) != s.ok {
			t.Fatalf("%s: Verify error = %v, want ok=%v", s.name, err, s.ok)
		}
		if n := ti.jwksHits.Load(); n != s.fetches {
			t.Fatalf("%s: jwks fetches = %d, want %d", s.name, n, s.fetches)
		}
	}
}

func TestVerifyStartupToken(t *testing.T) {
	ti := startIssuer(t, nil)
	v, err := NewVerifier(context.Background(),
		[]IssuerConfig{{Issuer: ti.Issuer(), Audience: "aud-1"}})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	now := time.Now()
	good := ti.sign(t, ti.claims(now, "aud-1", "alice"))
	expired := ti.sign(t, jwt.MapClaims{
		"iss": ti.Issuer(), "aud": "aud-1", "sub": "alice",
		"exp": now.Add(-time.Minute).Unix(),
	})

	tests := []struct {
		name string
		raw  string
		ok   bool
	}{
		{name: "bare token", raw: good, ok: true},
		{name: "with Bearer prefix and newline", raw: "Bearer " + good + "\n", ok: true},
		{name: "empty", raw: " \n"},
		{name: "Bearer and nothing", raw: "Bearer "},
		{name: "expired", raw: expired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.VerifyStartupToken(context.Background(), tt.raw)
			if tt.ok {
				if err != nil || c.Subject != "alice" || c.Issuer != ti.Issuer() {
					t.Fatalf("VerifyStartupToken = %+v, %v; want alice", c, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("VerifyStartupToken error = %v, want ErrInvalidToken", err)
			}
			if len(tt.raw) > 20 && strings.Contains(err.Error(), tt.raw) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
}

func TestLimitersSweepFullBuckets(t *testing.T) {
	l := newLimiters(1, 1)
	t0 := time.Now()
	for i := range 3000 {
		if _, ok := l.take("early"+strconv.Itoa(i), t0); !ok {
			t.Fatalf("first request of caller %d refused", i)
		}
	}
	if n := l.size(); n < 2000 {
		t.Fatalf("size = %d before buckets refill, want the active callers kept", n)
	}

	// A second later every bucket is full again; the next new caller
	// triggers a sweep that drops them.
	t1 := t0.Add(2 * time.Second)
	for i := range 2100 {
		l.take("late"+strconv.Itoa(i), t1)
	}
	if n := l.size(); n > 2200 {
		t.Errorf("size = %d after refill, want full buckets swept", n)
	}

	// A caller whose bucket is still empty keeps it across sweeps.
	l.take("busy", t1)
	if _, ok := l.take("busy", t1); ok {
		t.Fatal("second request at the same instant allowed with burst 1")
	}
	for i := range 5000 {
		l.take("flood"+strconv.Itoa(i), t1)
	}
	if _, ok := l.take("busy", t1); ok {
		t.Error("a sweep reset the bucket of a caller still over its limit")
	}
}
