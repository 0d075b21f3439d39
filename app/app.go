// Package app assembles a running mcp-guard from its configuration: the
// recorder, the policy engine, the tools, masking, approvals and identity,
// and serves them over stdio or HTTP.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-guard/mcp-guard/approvals"
	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/guard"
	"github.com/mcp-guard/mcp-guard/identity"
	"github.com/mcp-guard/mcp-guard/masking"
	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/recorder"
	"github.com/mcp-guard/mcp-guard/tools"
)

// Version is the version of mcp-guard, set at build time.
var Version = "dev"

// Options are what the process gives the app besides the configuration.
type Options struct {
	Stderr io.Writer
	Getenv func(string) string
}

// App is an assembled guard.
type App struct {
	Config   *config.Config
	Logger   *slog.Logger
	Engine   *policy.Engine
	Recorder *recorder.Recorder
	Guard    *guard.Guard
	MCP      *server.MCPServer
	Masker   *masking.Masker

	postgres  *tools.Postgres
	oidc      *identity.Verifier
	approvals *approvals.Service
	// store is the shared PostgreSQL store of transcripts and approvals
	// (recorder.postgres_dsn_env); nil for SQLite.
	store *pgxpool.Pool
	// bundle feeds the policy when it comes from policy.bundle.
	bundle  *policy.BundleSource
	metrics *metrics
	// streamable is the MCP HTTP handler Handler built, for shutdown.
	streamable *server.StreamableHTTPServer
	// draining is set once the server stops taking calls.
	draining atomic.Bool
	slack    http.Handler
	wg       sync.WaitGroup
	closers  []func()
	getenv   func(string) string
	cancel   context.CancelFunc
	bg       context.Context

	// confirmKey signs in-IDE confirmation states.
	confirmKey []byte
}

// Build assembles the guard. It refuses to start on a policy that does not
// compile or a target whose secrets cannot be read.
func Build(ctx context.Context, cfg *config.Config, o Options) (*App, error) {
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	a := &App{Config: cfg, getenv: o.Getenv}
	a.bg, a.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()

	// Secrets first, so the logger can scrub them from the start.
	pg, err := tools.NewPostgres(cfg.Targets, o.Getenv, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	a.postgres = pg
	a.closers = append(a.closers, pg.Close)
	secrets := append([]string{}, pg.Secrets()...)
	secrets = append(secrets, a.envSecrets()...)
	secrets = append(secrets, a.storePassword()...)

	hashKey, err := loadOrCreateKey(filepath.Join(filepath.Dir(cfg.Recorder.Path), "mask-hash.key"), 32)
	if err != nil {
		return nil, err
	}
	a.Masker, err = masking.New(masking.Options{Secrets: secrets, HashKey: hashKey})
	if err != nil {
		return nil, fmt.Errorf("masking: %w", err)
	}
	a.Logger = newLogger(cfg.Log, o.Stderr, a.Masker)
	if n := a.Masker.SkippedSecrets(); n > 0 {
		a.Logger.Warn("some server-held secrets are too short to scrub from results; use longer ones", "skipped", n)
	}
	pg.SetLogger(a.Logger.With("component", "postgres"))
	a.metrics = newMetrics(a)

	if err := a.buildPolicy(ctx); err != nil {
		return nil, err
	}
	if err := a.buildRecorder(ctx); err != nil {
		return nil, err
	}

	shell := tools.Shell{}
	remote, err := a.buildRemote()
	if err != nil {
		return nil, err
	}
	if remote != nil {
		shell.Remote = remote
	}
	toolset := []tools.Tool{&tools.Lister{Targets: cfg.Targets}, pg, shell, tools.Files{}}

	approver, err := a.buildApprovals(ctx)
	if err != nil {
		return nil, err
	}
	a.Guard, err = guard.New(guard.Options{
		Config:   cfg,
		Engine:   a.Engine,
		Recorder: a.Recorder,
		Tools:    toolset,
		Masker:   guard.ResultMasker{M: a.Masker},
		Approver: approver,
		Metrics:  a.metrics,
		Logger:   a.Logger.With("component", "guard"),

		ConfirmKey: a.confirmKey, // loaded by buildApprovals
	})
	if err != nil {
		return nil, err
	}
	a.MCP = guard.NewMCPServer(a.Guard, Version)
	ok = true
	return a, nil
}

// buildPolicy compiles the policy: the configured directory (watched when
// asked), a signed bundle, or the bundled default.
func (a *App) buildPolicy(ctx context.Context) error {
	cfg := a.Config.Policy
	log := a.Logger.With("component", "policy")
	if b := cfg.Bundle; b != nil {
		eng, src, err := policy.NewBundleEngine(ctx, policy.BundleOptions{
			URL: b.URL, PublicKeyFile: b.PublicKeyFile, KeyID: b.KeyID,
			Algorithm: b.Algorithm, Poll: b.Poll.Duration,
		}, log, policy.WithInputSchema(guard.InputSchema()))
		if err != nil {
			return fmt.Errorf("policy.bundle: %w", err)
		}
		a.Engine, a.bundle = eng, src
		a.closers = append(a.closers, src.Close)
		return nil
	}
	var err error
	a.Engine, err = policy.New(ctx, cfg.Dir, log, policy.WithInputSchema(guard.InputSchema()))
	if err != nil {
		return err
	}
	if cfg.Dir != "" && *cfg.Watch {
		go a.Engine.Watch(a.bg, 2*time.Second)
	}
	return nil
}

// LoadPolicy compiles the configured policy once, for commands that do
// not serve (check, policy evaluate): the directory, the bundled default,
// or the signed bundle, which must then be reachable and verify. The
// version it returns names the bundle's revision too.
func LoadPolicy(ctx context.Context, cfg *config.Config) (*policy.Engine, string, error) {
	b := cfg.Policy.Bundle
	if b == nil {
		eng, err := policy.New(ctx, cfg.Policy.Dir, slog.New(slog.DiscardHandler),
			policy.WithInputSchema(guard.InputSchema()))
		if err != nil {
			return nil, "", err
		}
		return eng, eng.Version(), nil
	}
	eng, src, err := policy.NewBundleEngine(ctx, policy.BundleOptions{
		URL: b.URL, PublicKeyFile: b.PublicKeyFile, KeyID: b.KeyID,
		Algorithm: b.Algorithm, Poll: b.Poll.Duration, FirstWait: 15 * time.Second,
	}, slog.New(slog.DiscardHandler), policy.WithInputSchema(guard.InputSchema()))
	if err != nil {
		return nil, "", fmt.Errorf("policy.bundle: %w", err)
	}
	defer src.Close()
	if !src.Ready() {
		return nil, "", fmt.Errorf("policy.bundle: no bundle could be activated: %w", src.Err())
	}
	return eng, fmt.Sprintf("%s, bundle revision %q", eng.Version(), src.Revision()), nil
}

// buildRecorder opens the transcript: the shared PostgreSQL store when
// recorder.postgres_dsn_env is set, else the SQLite file. Key files live
// beside recorder.path either way.
func (a *App) buildRecorder(ctx context.Context) error {
	cfg := a.Config.Recorder
	signingKey, err := recorder.SigningKey(cfg.SigningKeyFile, cfg.Path)
	if err != nil {
		return err
	}
	opts := recorder.Options{
		Synchronous: cfg.Synchronous,
		SigningKey:  signingKey,
		Logger:      a.Logger.With("component", "recorder"),
		OnCommit:    a.metrics.committed,
	}
	if cfg.PostgresDSNEnv == "" {
		a.Recorder, err = recorder.Open(cfg.Path, opts)
	} else if a.store, err = a.openStore(ctx); err == nil {
		a.Recorder, err = recorder.OpenPostgres(ctx, a.store, opts)
	}
	if err != nil {
		return err
	}
	a.closers = append(a.closers, func() { a.Recorder.Close() })
	return nil
}

// OpenRecorder opens the transcript of cfg for a command other than serve
// (the approvals CLI records its decisions). close closes it and the store.
func OpenRecorder(ctx context.Context, cfg *config.Config, getenv func(string) string, logger *slog.Logger) (*recorder.Recorder, func(), error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	a := &App{Config: cfg, getenv: getenv, Logger: logger}
	if err := a.buildRecorder(ctx); err != nil {
		a.Close()
		return nil, nil, err
	}
	return a.Recorder, a.Close, nil
}

// StorePool opens a pool on the shared PostgreSQL store whose DSN is in
// the environment variable env. No connection is made yet. Errors never
// quote the DSN, which holds a password.
func StorePool(ctx context.Context, env string, getenv func(string) string, name string) (*pgxpool.Pool, error) {
	dsn := getenv(env)
	if dsn == "" {
		return nil, fmt.Errorf("recorder.postgres_dsn_env: %s is empty", env)
	}
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("recorder.postgres_dsn_env: %s does not parse as a "+
			"PostgreSQL connection string", env)
	}
	pc.ConnConfig.RuntimeParams["application_name"] = name
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect to the shared store: %w", err)
	}
	return pool, nil
}

// openStore connects to the shared PostgreSQL store.
func (a *App) openStore(ctx context.Context) (*pgxpool.Pool, error) {
	pool, err := StorePool(ctx, a.Config.Recorder.PostgresDSNEnv, a.getenv, "mcp-guard")
	if err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("recorder: connect to the shared store: %w", err)
	}
	a.closers = append(a.closers, pool.Close)
	return pool, nil
}

// storePassword returns the password of the shared store's DSN, if any,
// so that it is scrubbed on its own too.
func (a *App) storePassword() []string {
	env := a.Config.Recorder.PostgresDSNEnv
	if env == "" {
		return nil
	}
	pc, err := pgxpool.ParseConfig(a.getenv(env))
	if err != nil || pc.ConnConfig.Password == "" {
		return nil
	}
	return []string{pc.ConnConfig.Password}
}

// envSecrets returns secrets the server holds through its environment:
// Slack tokens and similar values named in the configuration.
func (a *App) envSecrets() []string {
	var names []string
	if s := a.Config.Approvals.Slack; s != nil {
		names = append(names, s.BotTokenEnv, s.SigningSecretEnv, s.SocketModeAppTokenEnv)
	}
	names = append(names, a.Config.Identity.TokenEnv, a.Config.Recorder.PostgresDSNEnv)
	for _, t := range a.Config.Targets {
		names = append(names, t.KeyEnv)
	}
	var out []string
	for _, n := range names {
		if n == "" {
			continue
		}
		if v := a.getenv(n); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Close stops background work and closes what Build opened, last first.
func (a *App) Close() {
	if a.cancel != nil {
		a.cancel()
	}
	if a.Guard != nil {
		a.Guard.Close(context.Background())
	}
	a.wg.Wait()
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// StdioCaller returns the identity of the stdio caller: the configured
// identity, or the one a token in the configured environment variable
// proves.
func (a *App) StdioCaller(ctx context.Context) (identity.Caller, error) {
	id := a.Config.Identity
	if id.TokenEnv == "" {
		return identity.Caller{Subject: id.Subject, Email: id.Email, Groups: append([]string{}, id.Groups...)}, nil
	}
	raw := a.getenv(id.TokenEnv)
	if raw == "" {
		return identity.Caller{}, fmt.Errorf("identity.token_env: %s is empty", id.TokenEnv)
	}
	v, err := a.verifier(ctx)
	if err != nil {
		return identity.Caller{}, err
	}
	if v == nil {
		return identity.Caller{}, errors.New("identity.token_env is set but no auth.oidc issuer is configured")
	}
	c, err := v.VerifyStartupToken(ctx, raw)
	if err != nil {
		return identity.Caller{}, fmt.Errorf("identity.token_env: the token does not verify: %w", err)
	}
	return c, nil
}

// loadOrCreateKey reads a key file, or creates one with n random bytes and
// mode 0600.
func loadOrCreateKey(path string, n int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < n {
			return nil, fmt.Errorf("key file %s is shorter than %d bytes", path, n)
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create key directory: %w", err)
	}
	b = make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("write key file: %w", err)
	}
	return b, nil
}
