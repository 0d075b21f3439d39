package identity

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// testResource is the resource identifier used by the tests. Nothing is
// ever sent to it; it only appears in tokens and headers.
const testResource = "https://guard.example.com/mcp"

// testIssuer is a real OIDC issuer on loopback that counts key fetches.
type testIssuer struct {
	*mockoidc.MockOIDC
	jwksHits atomic.Int64
	// jwks, when set, is served in place of mockoidc's own key set, so a
	// test can rotate keys without touching the running server.
	jwks atomic.Pointer[[]byte]
}

// startIssuer runs a mockoidc server on 127.0.0.1. A nil key uses
// mockoidc's built-in key, which every default instance shares.
func startIssuer(t testing.TB, key *rsa.PrivateKey) *testIssuer {
	t.Helper()
	m, err := mockoidc.NewServer(key)
	if err != nil {
		t.Fatalf("new mockoidc: %v", err)
	}
	ti := &testIssuer{MockOIDC: m}
	err = m.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == mockoidc.JWKSEndpoint {
				ti.jwksHits.Add(1)
				if doc := ti.jwks.Load(); doc != nil {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write(*doc)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	})
	if err != nil {
		t.Fatalf("add middleware: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatalf("start mockoidc: %v", err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return ti
}

// newRSAKey makes a fresh signing key for an issuer of its own.
func newRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return key
}

// sign signs claims with the issuer's key (RS256, with its kid).
func (ti *testIssuer) sign(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := ti.Keypair.SignJWT(claims)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return tok
}

// claims returns a valid claim set for this issuer at now.
func (ti *testIssuer) claims(now time.Time, aud, sub string) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": ti.Issuer(),
		"aud": aud,
		"sub": sub,
		"iat": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(),
	}
}

// unsignedToken builds an "alg: none" token with the given signature part.
func unsignedToken(t *testing.T, claims jwt.MapClaims, sig string) string {
	t.Helper()
	head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	body, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("marshal claims: %v", err)
	}
	return head + "." + base64.RawURLEncoding.EncodeToString(body) + "." + sig
}

// testClock is a settable clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Now().Truncate(time.Second)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer collects slog JSON output for inspection.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// echoed is what the echo handler answers.
type echoed struct {
	Caller Caller `json:"caller"`
	Found  bool   `json:"found"`
	Body   string `json:"body"`
}

// echoHandler answers with the caller from the context and the body.
func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := FromContext(r.Context())
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{Caller: c, Found: ok, Body: string(body)})
	})
}

// serve runs Middleware(o, echo) on a loopback test server.
func serve(t *testing.T, o HTTPOptions) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(Middleware(o, echoHandler()))
	t.Cleanup(srv.Close)
	return srv
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   string
}

// do sends one request; token "" sends no Authorization header.
func do(t *testing.T, method, url, token, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, url, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	return send(t, req)
}

func send(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// decodeEcho parses the echo handler's answer.
func decodeEcho(t *testing.T, body string) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("decode echo %q: %v", body, err)
	}
	return e
}

// Reset empties the buffer.
func (l *logBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Reset()
}
