package app

import (
	"context"
	"log/slog"
	"os"

	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/guard"
	"github.com/mcp-guard/mcp-guard/identity"
	"github.com/mcp-guard/mcp-guard/masking"
	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/tools"
)

// Evaluate decides a call the way a serving guard would, without a
// recorder, a database connection or running anything.
func Evaluate(ctx context.Context, cfg *config.Config, tool string, args map[string]any, caller *struct {
	Subject string   `json:"subject"`
	Issuer  string   `json:"issuer"`
	Email   string   `json:"email"`
	Groups  []string `json:"groups"`
}) (guard.Evaluation, error) {
	eng, _, err := LoadPolicy(ctx, cfg)
	if err != nil {
		return guard.Evaluation{}, err
	}
	// Nothing connects: a DSN that is not set here (policy authors rarely
	// hold production secrets) is replaced by one that is never dialled.
	getenv := func(name string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return "postgres://policy-eval@127.0.0.1:1/unused"
	}
	g, closeGuard, err := DecisionGuard(cfg, eng, getenv)
	if err != nil {
		return guard.Evaluation{}, err
	}
	defer closeGuard()
	c := identity.Caller{Subject: cfg.Identity.Subject, Email: cfg.Identity.Email, Groups: cfg.Identity.Groups}
	if caller != nil {
		c = identity.Caller{Subject: caller.Subject, Issuer: caller.Issuer, Email: caller.Email, Groups: caller.Groups}
	}
	if c.Groups == nil {
		c.Groups = []string{}
	}
	return g.Evaluate(ctx, c, tool, args), nil
}

// DecisionGuard assembles a guard over cfg's targets that decides calls as
// a serving one does, for Evaluate and for tests and benchmarks of
// decisions: no recorder, no approver, and database pools that connect
// only when a query runs, which Guard.Evaluate never does. close releases
// the pools.
func DecisionGuard(cfg *config.Config, eng *policy.Engine, getenv func(string) string) (g *guard.Guard, close func(), err error) {
	pg, err := tools.NewPostgres(cfg.Targets, getenv, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	m, err := masking.New(masking.Options{Secrets: pg.Secrets()})
	if err != nil {
		pg.Close()
		return nil, nil, err
	}
	g, err = guard.New(guard.Options{
		Config: cfg, Engine: eng, Masker: guard.ResultMasker{M: m},
		Tools:  []tools.Tool{&tools.Lister{Targets: cfg.Targets}, pg, tools.Shell{}, tools.Files{}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		pg.Close()
		return nil, nil, err
	}
	return g, pg.Close, nil
}
