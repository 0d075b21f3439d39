package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/mcp-guard/mcp-guard/app"
	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/guard"
	"github.com/mcp-guard/mcp-guard/policy"
)

func newPolicy() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Tools for policy authors: evaluate a call, run Rego tests",
	}
	cmd.AddCommand(newPolicyEval(), newPolicyTest())
	return cmd
}

// callFile is the JSON a policy author writes to try a call.
type callFile struct {
	Tool      string         `json:"tool"`
	Arguments map[string]any `json:"arguments"`
	Caller    *struct {
		Subject string   `json:"subject"`
		Issuer  string   `json:"issuer"`
		Email   string   `json:"email"`
		Groups  []string `json:"groups"`
	} `json:"caller"`
}

func newPolicyEval() *cobra.Command {
	var cfgPath, callPath string
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Print the facts, the policy input and the decision for a call, without running it",
		Long: "eval reads a call as JSON ({\"tool\": ..., \"arguments\": {...}, \"caller\": {...}}; " +
			"caller is optional and defaults to the configured identity) and prints what the guard " +
			"would decide. Nothing is run or recorded.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			var in io.Reader = cmd.InOrStdin()
			if callPath != "-" {
				f, err := os.Open(callPath)
				if err != nil {
					return fmt.Errorf("open call: %w", err)
				}
				defer f.Close()
				in = f
			}
			var cf callFile
			dec := json.NewDecoder(in)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&cf); err != nil {
				return fmt.Errorf("read call: %w", err)
			}
			ctx := cmd.Context()
			ev, err := app.Evaluate(ctx, cfg, cf.Tool, cf.Arguments, cf.Caller)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(ev)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "mcp-guard.yaml", "configuration file")
	cmd.Flags().StringVar(&callPath, "call", "-", "call JSON file, - for stdin")
	return cmd
}

func newPolicyTest() *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test [DIR]",
		Short: "Run the Rego tests of a policy directory (the bundled default when none is given)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var mods []policy.Module
			var err error
			if len(args) == 1 {
				mods, err = policy.Load(args[0])
			} else {
				mods = policy.Bundled()
			}
			if err != nil {
				return err
			}
			results, err := policy.RunTests(context.Background(), mods, guard.InputSchema())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			failed := 0
			for _, r := range results {
				if !r.Pass {
					failed++
				}
				if verbose || !r.Pass {
					status := "PASS"
					if !r.Pass {
						status = "FAIL"
					}
					fmt.Fprintf(out, "%s %s.%s", status, r.Package, r.Name)
					if r.Error != "" {
						fmt.Fprintf(out, ": %s", r.Error)
					}
					fmt.Fprintln(out)
				}
			}
			fmt.Fprintf(out, "%d passed, %d failed\n", len(results)-failed, failed)
			if len(results) == 0 {
				return &exitError{code: 2, err: errors.New("no Rego tests found")}
			}
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d Rego tests failed", failed)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list every test")
	return cmd
}
