package identity

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

func TestResourceMetadataURL(t *testing.T) {
	tests := []struct {
		resource string
		want     string
		bad      bool
	}{
		{resource: "https://guard.example.com/mcp",
			want: "https://guard.example.com/.well-known/oauth-protected-resource/mcp"},
		{resource: "https://guard.example.com/",
			want: "https://guard.example.com/.well-known/oauth-protected-resource"},
		{resource: "https://guard.example.com:8443/team/mcp/",
			want: "https://guard.example.com:8443/.well-known/oauth-protected-resource/team/mcp"},
		{resource: "http://127.0.0.1:8443/mcp?x=1",
			want: "http://127.0.0.1:8443/.well-known/oauth-protected-resource/mcp"},
		{resource: "/mcp", bad: true},
		{resource: "https://guard.example.com/mcp#frag", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			got, err := ResourceMetadataURL(tt.resource)
			if tt.bad {
				if err == nil {
					t.Fatalf("ResourceMetadataURL = %q, want error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ResourceMetadataURL = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestProtectedResourceHandler(t *testing.T) {
	a := startIssuer(t, nil)
	b := startIssuer(t, newRSAKey(t))
	v, err := NewVerifier(context.Background(),
		[]IssuerConfig{{Issuer: a.Issuer()}, {Issuer: b.Issuer()}},
		WithDefaultAudience(testResource))
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	h := ProtectedResourceHandler(HTTPOptions{
		Resource:        testResource,
		Verifier:        v,
		ScopesSupported: []string{"openid", "mcp"},
	})
	mux := http.NewServeMux()
	mux.Handle("/.well-known/oauth-protected-resource", h)
	mux.Handle("/.well-known/oauth-protected-resource/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	for _, path := range []string{
		"/.well-known/oauth-protected-resource",
		"/.well-known/oauth-protected-resource/mcp",
	} {
		t.Run(path, func(t *testing.T) {
			got := do(t, http.MethodGet, srv.URL+path, "", "")
			if got.status != http.StatusOK {
				t.Fatalf("status = %d, want 200", got.status)
			}
			if ct := got.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var doc map[string]any
			if err := json.Unmarshal([]byte(got.body), &doc); err != nil {
				t.Fatalf("decode %q: %v", got.body, err)
			}
			want := map[string]any{
				"resource":                 testResource,
				"authorization_servers":    []any{a.Issuer(), b.Issuer()},
				"bearer_methods_supported": []any{"header"},
				"scopes_supported":         []any{"openid", "mcp"},
			}
			if len(doc) != len(want) {
				t.Errorf("document has keys %v, want %v", keys(doc), keys(want))
			}
			for k, w := range want {
				gj, _ := json.Marshal(doc[k])
				wj, _ := json.Marshal(w)
				if string(gj) != string(wj) {
					t.Errorf("%s = %s, want %s", k, gj, wj)
				}
			}
		})
	}

	others := []struct {
		name, method, path string
		status             int
	}{
		{"other suffix", http.MethodGet, "/.well-known/oauth-protected-resource/other", http.StatusNotFound},
		{"post", http.MethodPost, "/.well-known/oauth-protected-resource/mcp", http.StatusMethodNotAllowed},
		{"preflight", http.MethodOptions, "/.well-known/oauth-protected-resource/mcp", http.StatusNoContent},
	}
	for _, tt := range others {
		t.Run(tt.name, func(t *testing.T) {
			if got := do(t, tt.method, srv.URL+tt.path, "", ""); got.status != tt.status {
				t.Errorf("status = %d, want %d", got.status, tt.status)
			}
		})
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
