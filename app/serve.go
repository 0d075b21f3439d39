package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"
	"golang.org/x/time/rate"

	"github.com/mcp-guard/mcp-guard/guard"
	"github.com/mcp-guard/mcp-guard/identity"
)

// ServeStdio serves MCP on in and out until in closes or ctx ends. The
// caller is the stdio identity; when it comes from identity.token_env,
// serving stops with an error once the token expires. A line longer than
// MaxStdioMessageBytes gets a parse error.
func (a *App) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	caller, err := a.StdioCaller(ctx)
	if err != nil {
		return err
	}
	var expires time.Time
	if env := a.Config.Identity.TokenEnv; env != "" {
		if expires, err = tokenExpiry(a.getenv(env)); err != nil {
			return fmt.Errorf("identity.token_env: %w", err)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, expires)
		defer cancel()
	}
	a.Logger.Info("serving MCP on stdio", "caller", caller.Subject, "policy_version", a.Engine.Version())
	s := server.NewStdioServer(a.MCP)
	s.SetErrorLogger(log.New(slogWriter{a}, "", 0))
	s.SetContextFunc(func(ctx context.Context) context.Context {
		return identity.WithCaller(guard.WithTransport(ctx, guard.TransportStdio), caller)
	})
	err = s.Listen(ctx, checkedLines(&lineCap{r: in, max: MaxStdioMessageBytes}), out)
	if !expires.IsZero() && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("identity.token_env: the token expired at %s; "+
			"start again with a fresh token", expires.UTC().Format(time.RFC3339))
	}
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
		return nil
	}
	return fmt.Errorf("stdio: %w", err)
}

type slogWriter struct{ a *App }

func (w slogWriter) Write(p []byte) (int, error) {
	w.a.Logger.Warn("mcp transport", "detail", string(p))
	return len(p), nil
}

// Handler returns the HTTP handler: /mcp behind authentication, /healthz
// (the process is alive), /readyz (it should be sent calls: policy and
// store ready, not shutting down), /metrics (Prometheus), the protected
// resource metadata, and the Slack interactions endpoint when Slack is
// configured.
func (a *App) Handler(ctx context.Context, addr string) (http.Handler, error) {
	cfg := a.Config
	v, err := a.verifier(ctx)
	if err != nil {
		return nil, err
	}
	resource := cfg.HTTP.Resource
	if resource == "" {
		resource = "http://" + addr + "/mcp"
	}
	hopts := identity.HTTPOptions{
		Resource:     resource,
		Verifier:     v,
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
		RateLimit:    rate.Limit(cfg.HTTP.RateLimit),
		Burst:        cfg.HTTP.RateBurst,
		Logger:       a.Logger.With("component", "http"),
	}
	if v == nil {
		id := cfg.Identity
		hopts.Anonymous = &identity.Caller{Subject: id.Subject, Email: id.Email, Groups: append([]string{}, id.Groups...)}
	}
	if err := hopts.Validate(); err != nil {
		return nil, err
	}
	streamable := server.NewStreamableHTTPServer(a.MCP,
		server.WithEndpointPath("/mcp"),
		server.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
			ctx = guard.WithTransport(ctx, guard.TransportHTTP)
			if c, ok := identity.FromContext(r.Context()); ok {
				ctx = identity.WithCaller(ctx, c)
			}
			return ctx
		}),
	)
	mux := http.NewServeMux()
	a.streamable = streamable
	mux.Handle("/mcp", a.refuseWhileDraining(identity.Middleware(hopts, streamable)))
	prm := identity.ProtectedResourceHandler(hopts)
	mux.Handle("/.well-known/oauth-protected-resource", prm)
	mux.Handle("/.well-known/oauth-protected-resource/", prm)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("/readyz", a.readyHandler())
	mux.Handle("/metrics", a.metrics.handler())
	if h := a.slackHandler(); h != nil {
		mux.Handle("/slack/interactions", h)
	}
	return mux, nil
}

// ServeHTTP serves streamable HTTP on addr until ctx ends, then shuts down
// gracefully: it stops taking calls, answers calls waiting for approval
// approval_pending, and lets the others finish within
// http.shutdown_timeout. Without an OIDC issuer it listens on loopback
// only, as the configured identity.
func (a *App) ServeHTTP(ctx context.Context, addr string, ready func(net.Addr)) error {
	if len(a.Config.Auth.OIDC) == 0 && !loopback(addr) {
		return fmt.Errorf("http: %s is not a loopback address; without auth.oidc the guard only listens on loopback", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http: listen: %w", err)
	}
	h, err := a.Handler(ctx, ln.Addr().String())
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(slogWriter{a}, "", 0),
	}
	if len(a.Config.Auth.OIDC) == 0 {
		a.Logger.Warn("no auth.oidc issuer configured: serving on loopback only, every caller is the configured identity",
			"caller", a.Config.Identity.Subject)
	}
	a.Logger.Info("serving MCP over HTTP", "addr", ln.Addr().String(), "endpoint", "/mcp",
		"policy_version", a.Engine.Version())
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() {
		tls := a.Config.HTTP.TLS
		if tls.CertFile != "" {
			errc <- srv.ServeTLS(ln, tls.CertFile, tls.KeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	return a.shutdown(srv, a.streamable)
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var verifierOnce sync.Mutex

// verifier builds the OIDC verifier once; nil when no issuer is set.
func (a *App) verifier(ctx context.Context) (*identity.Verifier, error) {
	verifierOnce.Lock()
	defer verifierOnce.Unlock()
	if a.oidc != nil || len(a.Config.Auth.OIDC) == 0 {
		return a.oidc, nil
	}
	var issuers []identity.IssuerConfig
	for _, o := range a.Config.Auth.OIDC {
		issuers = append(issuers, identity.IssuerConfig{Issuer: o.Issuer, Audience: o.Audience, GroupsClaim: o.GroupsClaim})
	}
	opts := []identity.Option{identity.WithLogger(a.Logger.With("component", "oidc"))}
	if a.Config.HTTP.Resource != "" {
		opts = append(opts, identity.WithDefaultAudience(a.Config.HTTP.Resource))
	}
	v, err := identity.NewVerifier(ctx, issuers, opts...)
	if err != nil {
		return nil, fmt.Errorf("auth.oidc: %w", err)
	}
	a.oidc = v
	return v, nil
}
