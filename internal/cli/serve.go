package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/spf13/cobra"

	"github.com/mcp-guard/mcp-guard/app"
	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/tools"
)

func newServe(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	var cfgPath, httpAddr string
	var keepEnv bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve MCP over stdio (default) or streamable HTTP (--http)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			getenv := os.Getenv
			if keepEnv {
				fmt.Fprintln(stderr, "mcp-guard: --keep-environment: the server's environment, secrets included, stays readable in /proc by commands run as the same user")
			} else if getenv, err = dropEnvironment(); err != nil {
				return err
			}
			ctx := cmd.Context()
			a, err := app.Build(ctx, cfg, app.Options{Stderr: stderr, Getenv: getenv})
			if err != nil {
				return err
			}
			defer a.Close()
			addr := httpAddr
			if addr != "" {
				return a.ServeHTTP(ctx, addr, func(l net.Addr) {
					fmt.Fprintf(stderr, "mcp-guard: serving MCP at http://%s/mcp\n", l)
				})
			}
			return a.ServeStdio(ctx, stdin, stdout)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "mcp-guard.yaml", "configuration file")
	cmd.Flags().StringVar(&httpAddr, "http", "", "serve streamable HTTP at ADDR (host:port) instead of stdio")
	cmd.Flags().BoolVar(&keepEnv, "keep-environment", false,
		"do not erase the environment the kernel shows in /proc (for debugging; leaves secrets readable there)")
	return cmd
}

func newCheck() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate a configuration and its policy without serving",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			ctx := context.Background()
			_, version, err := app.LoadPolicy(ctx, cfg)
			if err != nil {
				return err
			}
			pg, err := tools.NewPostgres(cfg.Targets, os.Getenv, nil)
			if err != nil {
				return err
			}
			pg.Close()
			if err := checkStore(ctx, cfg); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "configuration %s is valid\n", cfgPath)
			fmt.Fprintf(out, "policy %s compiles (%s)\n", policyName(cfg), version)
			if env := cfg.Recorder.PostgresDSNEnv; env != "" {
				fmt.Fprintf(out, "store PostgreSQL (%s) answers\n", env)
			}
			for _, t := range cfg.Targets {
				fmt.Fprintf(out, "target %s (%s)\n", t.Name, t.Kind)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "mcp-guard.yaml", "configuration file")
	return cmd
}

// checkStore connects to the shared PostgreSQL store, when one is
// configured, and pings it.
func checkStore(ctx context.Context, cfg *config.Config) error {
	if cfg.Recorder.PostgresDSNEnv == "" {
		return nil
	}
	pool, err := storePool(ctx, cfg.Recorder.PostgresDSNEnv)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("recorder.postgres_dsn_env: the store does not answer: %w", err)
	}
	return nil
}

func policyName(cfg *config.Config) string {
	if cfg.Policy.Bundle != nil {
		return "from the signed bundle"
	}
	if cfg.Policy.Dir == "" {
		return "bundled default"
	}
	return cfg.Policy.Dir
}
