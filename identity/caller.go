// Package identity says who is calling the guard: the caller type that the
// policy and the recorder see, and the verification of OIDC bearer tokens
// that produces it on HTTP.
package identity

import "context"

// Caller is a verified identity. Subject and Issuer are always set for a
// token-based caller; Email is set only when the issuer verified it.
type Caller struct {
	Subject string   `json:"subject"`
	Issuer  string   `json:"issuer,omitempty"`
	Email   string   `json:"email,omitempty"`
	Groups  []string `json:"groups"`
}

type callerKey struct{}

// WithCaller returns a context that carries c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// FromContext returns the caller stored in ctx, if any.
func FromContext(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}
