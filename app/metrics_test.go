package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-guard/mcp-guard/config"
)

// opsApp builds a guard with one files target and the given extra YAML,
// and serves its handler on loopback.
func opsApp(t *testing.T, extra string) (*App, string) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(`identity: {subject: operator}
recorder: {path: %q}
log: {level: error}
targets:
  - {name: files, kind: files, roots: [%q]}
%s`, filepath.Join(dir, "var", "guard.db"), root, extra)
	cfg, err := config.Parse(strings.NewReader(text), dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Build(context.Background(), cfg, Options{Stderr: io.Discard,
		Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	h, err := a.Handler(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return a, srv.URL
}

func fetch(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestReadyzAndMetricsFollowTheDrain(t *testing.T) {
	a, base := opsApp(t, "")
	if code, body := fetch(t, http.MethodGet, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz of a fresh guard: %d %q", code, body)
	}
	_, m := fetch(t, http.MethodGet, base+"/metrics")
	for _, want := range []string{"mcp_guard_ready 1", "mcp_guard_approvals_pending 0",
		"mcp_guard_approval_waiting_calls 0",
		fmt.Sprintf(`mcp_guard_policy_info{revision="",version=%q} 1`, a.Engine.Version())} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	a.drain()
	code, body := fetch(t, http.MethodGet, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Fatalf("/readyz while draining: %d %q", code, body)
	}
	if code, _ := fetch(t, http.MethodPost, base+"/mcp"); code != http.StatusServiceUnavailable {
		t.Fatalf("a new call while draining: %d, want 503", code)
	}
	if code, _ := fetch(t, http.MethodGet, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while draining: %d, want 200: the process is alive", code)
	}
	if _, m := fetch(t, http.MethodGet, base+"/metrics"); !strings.Contains(m, "mcp_guard_ready 0") {
		t.Error("/metrics does not show the drain")
	}
}

func TestReadyzWaitsForThePolicyBundle(t *testing.T) {
	// A bundle server that has nothing yet.
	bundles := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(bundles.Close)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "bundle.pub")
	err = os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	a, base := opsApp(t, fmt.Sprintf(`policy:
  bundle: {url: "%s/guard.tar.gz", public_key_file: %q, algorithm: ES256}
`, bundles.URL, pub))
	code, body := fetch(t, http.MethodGet, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "policy bundle") {
		t.Fatalf("/readyz without a bundle: %d %q", code, body)
	}
	d, _ := a.Engine.Decide(context.Background(), map[string]any{})
	if d.Outcome != "deny" {
		t.Fatalf("without a bundle the policy says %q, want deny", d.Outcome)
	}
}

func TestShutdownDeadline(t *testing.T) {
	tests := []struct {
		name    string
		finish  bool // the call in flight finishes by itself
		wantErr bool
	}{
		{"calls finish in time", true, false},
		{"a call outlives the deadline", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := opsApp(t, "http: {shutdown_timeout: 300ms}")
			inFlight, release := make(chan struct{}), make(chan struct{})
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(inFlight)
				if tc.finish {
					<-release
				} else {
					<-r.Context().Done() // only the cut-off ends it
				}
				_, _ = io.WriteString(w, "done")
			})}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = srv.Serve(ln) }()
			answered := make(chan error, 1)
			go func() {
				resp, err := http.Get("http://" + ln.Addr().String() + "/")
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				answered <- err
			}()
			<-inFlight

			stopped := make(chan error, 1)
			go func() { stopped <- a.shutdown(srv, nil) }()
			if tc.finish {
				close(release)
			}
			select {
			case err := <-stopped:
				if (err != nil) != tc.wantErr {
					t.Fatalf("shutdown = %v, want error %v", err, tc.wantErr)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("shutdown did not return")
			}
			err = <-answered
			if tc.finish && err != nil {
				t.Fatalf("the call that finished in time was not answered: %v", err)
			}
			if !tc.finish && err == nil {
				t.Fatal("the call cut off at the deadline was answered")
			}
			if !a.draining.Load() {
				t.Fatal("shutdown did not drain")
			}
			if _, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
				t.Fatal("the stopped server still takes requests")
			}
		})
	}
}
