package policy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
)

// allowAll and denyAll are two small policies the tests serve.
const (
	allowAll = `package mcpguard

decision := {"outcome": "allow", "reasons": []}
`
	denyAll = `package mcpguard

decision := {"outcome": "deny", "reasons": ["revision two says no"]}
`
)

// signer is an RSA key pair; its public half is written to a file.
type signer struct {
	private string // PEM
	pubFile string
}

func newSigner(t *testing.T) signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY",
		Bytes: x509.MarshalPKCS1PrivateKey(k)})
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "bundle.pub")
	err = os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return signer{private: string(priv), pubFile: pub}
}

// bundleSpec describes a bundle to build.
type bundleSpec struct {
	revision string
	modules  map[string]string // path inside the bundle → source
	data     map[string]any
	signWith *signer // nil: unsigned
	// tamper edits a module after signing.
	tamper bool
}

// build returns the bundle as OPA's .tar.gz.
func (s bundleSpec) build(t *testing.T) []byte {
	t.Helper()
	b := bundle.Bundle{
		Manifest: bundle.Manifest{Revision: s.revision},
		Data:     map[string]any{},
	}
	for k, v := range s.data {
		b.Data[k] = v
	}
	for path, src := range s.modules {
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: "/" + path,
			Path: "/" + path, Raw: []byte(src)})
	}
	if s.signWith != nil {
		sc := bundle.NewSigningConfig(s.signWith.private, "RS256", "")
		if err := b.GenerateSignature(sc, DefaultBundleKeyID, false); err != nil {
			t.Fatalf("sign bundle: %v", err)
		}
	}
	if s.tamper {
		b.Modules[0].Raw = append(b.Modules[0].Raw, []byte("\nextra := 1\n")...)
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).DisableFormat(true).Write(b); err != nil {
		t.Fatalf("write bundle: %v", err)
	}
	return buf.Bytes()
}

// bundleServer serves one bundle file on loopback, with an ETag.
type bundleServer struct {
	*httptest.Server
	mu   sync.Mutex
	body []byte
}

func newBundleServer(t *testing.T, body []byte) *bundleServer {
	t.Helper()
	s := &bundleServer{body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/bundles/guard.tar.gz" {
			http.NotFound(w, r)
			return
		}
		s.mu.Lock()
		body := s.body
		s.mu.Unlock()
		sum := sha256.Sum256(body)
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		if strings.Contains(r.Header.Get("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *bundleServer) serve(body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body = body
}

func (s *bundleServer) url() string { return s.URL + "/bundles/guard.tar.gz" }

// startBundle builds an engine on srv's bundle, closed with the test.
func startBundle(t *testing.T, srv *bundleServer, key signer, poll time.Duration) (*Engine, *BundleSource) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, s, err := NewBundleEngine(ctx, BundleOptions{URL: srv.url(),
		PublicKeyFile: key.pubFile, Poll: poll, FirstWait: 10 * time.Second},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("NewBundleEngine: %v", err)
	}
	t.Cleanup(s.Close)
	return e, s
}

func outcome(t *testing.T, e *Engine) (string, []string) {
	t.Helper()
	d, _ := e.Decide(context.Background(), map[string]any{"tool": "read_file"})
	return d.Outcome, d.Reasons
}

func TestBundleActivatesASignedPolicy(t *testing.T) {
	key := newSigner(t)
	mods := map[string]string{"mcpguard/main.rego": allowAll}
	srv := newBundleServer(t, bundleSpec{revision: "r1", modules: mods,
		signWith: &key}.build(t))
	e, s := startBundle(t, srv, key, time.Minute)

	if !s.Ready() || s.Revision() != "r1" || s.Err() != nil {
		t.Fatalf("ready %v, revision %q, err %v", s.Ready(), s.Revision(), s.Err())
	}
	if o, _ := outcome(t, e); o != OutcomeAllow {
		t.Fatalf("outcome %q under the bundle, want allow", o)
	}

	// The version is the digest of the modules, the same as for the same
	// files in a directory, so audit replay can name the policy.
	dir := t.TempDir()
	p := filepath.Join(dir, "mcpguard", "main.rego")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(allowAll), 0o644); err != nil {
		t.Fatal(err)
	}
	fromDir, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.Version(), Version(fromDir); got != want {
		t.Fatalf("bundle version %s, directory version %s", got, want)
	}
	if err := e.Reload(context.Background()); err == nil {
		t.Fatal("Reload of a bundle engine did not refuse")
	}
	if o, _ := outcome(t, e); o != OutcomeAllow {
		t.Fatal("a refused Reload changed the policy")
	}
}

func TestBundleRefusesWhatItCannotTrust(t *testing.T) {
	key, other := newSigner(t), newSigner(t)
	good := map[string]string{"mcpguard/main.rego": allowAll}
	tests := []struct {
		name string
		spec bundleSpec
		want string // in Err
	}{
		{"unsigned", bundleSpec{revision: "u", modules: good}, "signature"},
		{"signed with another key", bundleSpec{revision: "o", modules: good,
			signWith: &other}, "verify"},
		{"edited after signing", bundleSpec{revision: "t", modules: good,
			signWith: &key, tamper: true}, "digest mismatch"},
		{"carries data", bundleSpec{revision: "d", modules: good,
			data: map[string]any{"users": []any{"alice"}}, signWith: &key}, "data"},
		{"does not parse", bundleSpec{revision: "p", signWith: &key,
			modules: map[string]string{"main.rego": "package mcpguard\n\ndecision := {\n"}},
			"rego_parse_error"},
		{"does not compile", bundleSpec{revision: "c", signWith: &key,
			modules: map[string]string{"main.rego": "package mcpguard\n\n" +
				"decision := {\"outcome\": no_such_function(1), \"reasons\": []}\n"}},
			"does not compile"},
		{"no policy", bundleSpec{revision: "n", signWith: &key,
			modules: map[string]string{"main_test.rego": "package mcpguard\n\ntest_x if true\n"}},
			"no .rego policy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newBundleServer(t, tc.spec.build(t))
			e, s := startBundle(t, srv, key, time.Minute)
			if s.Ready() {
				t.Fatalf("activated a bundle that is %s", tc.name)
			}
			if err := s.Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Err = %v, want it to mention %q", err, tc.want)
			}
			o, reasons := outcome(t, e)
			if o != OutcomeDeny || len(reasons) != 1 ||
				!strings.Contains(reasons[0], "not been loaded") {
				t.Fatalf("before any bundle: %s %v, want the not-loaded denial", o, reasons)
			}
		})
	}
}

func TestBundleUpdatesAndKeepsTheLastGood(t *testing.T) {
	key := newSigner(t)
	spec := func(rev, src string) bundleSpec {
		return bundleSpec{revision: rev, signWith: &key,
			modules: map[string]string{"main.rego": src}}
	}
	srv := newBundleServer(t, spec("r1", allowAll).build(t))
	e, s := startBundle(t, srv, key, time.Second)
	v1 := e.Version()

	srv.serve(spec("r2", denyAll).build(t))
	eventually(t, "revision r2", func() bool { return s.Revision() == "r2" })
	if o, reasons := outcome(t, e); o != OutcomeDeny || reasons[0] != "revision two says no" {
		t.Fatalf("after r2: %s %v", o, reasons)
	}
	v2 := e.Version()
	if v2 == v1 {
		t.Fatal("the version did not change with the policy")
	}

	// A tampered r3 is refused; r2 stays in force.
	bad := spec("r3", allowAll)
	bad.tamper = true
	srv.serve(bad.build(t))
	eventually(t, "the refusal of r3", func() bool { return s.Err() != nil })
	if s.Revision() != "r2" || e.Version() != v2 || !s.Ready() {
		t.Fatalf("after a bad r3: revision %q, version changed %v, ready %v",
			s.Revision(), e.Version() != v2, s.Ready())
	}
	if o, _ := outcome(t, e); o != OutcomeDeny {
		t.Fatal("a refused bundle changed the decision")
	}
}

func TestBundleOptionsThatCannotWork(t *testing.T) {
	key := newSigner(t)
	notPEM := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(notPEM, []byte("not a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok := BundleOptions{URL: "http://127.0.0.1:1/b.tar.gz", PublicKeyFile: key.pubFile}
	tests := []struct {
		name string
		edit func(*BundleOptions)
		want string
	}{
		{"missing key file", func(o *BundleOptions) { o.PublicKeyFile = "/nonexistent/k.pem" }, "public key"},
		{"key not PEM", func(o *BundleOptions) { o.PublicKeyFile = notPEM }, "not PEM"},
		{"shared-secret algorithm", func(o *BundleOptions) { o.Algorithm = "HS256" }, "public-key"},
		{"unknown algorithm", func(o *BundleOptions) { o.Algorithm = "XX1" }, "public-key"},
		{"not http", func(o *BundleOptions) { o.URL = "file:///etc/b.tar.gz" }, "not an http"},
		{"credentials in url", func(o *BundleOptions) { o.URL = "http://u:secretpw@127.0.0.1:1/b" }, "credentials"},
		{"no file", func(o *BundleOptions) { o.URL = "http://127.0.0.1:1/" }, "no bundle file"},
		{"poll too short", func(o *BundleOptions) { o.Poll = time.Millisecond }, "at least 1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.edit(&o)
			_, _, err := NewBundleEngine(context.Background(), o, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secretpw") {
				t.Fatalf("the error carries the URL's password: %v", err)
			}
		})
	}
}

// eventually waits for cond, which another goroutine (the downloader's
// poll) makes true; there is no event to wait on.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
