package identity

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
)

// ProtectedResourceMetadata is the RFC 9728 document that tells an MCP
// client which authorization servers issue tokens for this server.
type ProtectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
}

// ProtectedResourceHandler serves the protected resource metadata at
// /.well-known/oauth-protected-resource and at the path-suffixed form
// derived from the resource (for https://host/mcp,
// /.well-known/oauth-protected-resource/mcp); other paths get 404. Mount
// it on both paths. The document is public, so any origin may read it.
func ProtectedResourceHandler(o HTTPOptions) http.Handler {
	if err := o.Validate(); err != nil {
		log := o.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			log.Error("protected resource metadata misconfigured", keyError, err)
			writeJSON(w, http.StatusInternalServerError, bodyServerError)
		})
	}

	doc := ProtectedResourceMetadata{
		Resource:               o.Resource,
		AuthorizationServers:   o.AuthorizationServers,
		BearerMethodsSupported: []string{"header"},
		ScopesSupported:        o.ScopesSupported,
	}
	if doc.AuthorizationServers == nil {
		doc.AuthorizationServers = []string{}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		// Only strings and string slices: Marshal cannot fail.
		panic(err)
	}
	body = append(body, '\n')

	paths := map[string]bool{wellKnownPRM: true}
	if u, err := url.Parse(o.ResourceMetadataURL); err == nil {
		paths[u.Path] = true
	}

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !paths[r.URL.Path] {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			// CORS preflight: browser clients send MCP-Protocol-Version.
			w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD")
			w.Header().Set("Access-Control-Allow-Headers", "*")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(body)
	})
}
