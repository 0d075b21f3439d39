package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/mcp-guard/mcp-guard/app"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/mcp-guard/mcp-guard/approvals"
	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/recorder"
)

func newApprovals() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "List, show and decide approval requests",
		Long: "approvals works on the requests stored in the recorder's database. approve and " +
			"deny decide as the person named by --as, who must be an allowed approver of the " +
			"request and not its requester; anyone who can run this command against the " +
			"database is trusted to say who they are, as with direct database access.",
	}
	cmd.PersistentFlags().StringVar(&cfgPath, "config", "mcp-guard.yaml", "configuration file")
	open := func(ctx context.Context) (*approvals.Service, func(), error) {
		cfg, err := config.Load(cfgPath)
		if err != nil {
			return nil, nil, err
		}
		st, done, err := approvalStore(ctx, cfg)
		if err != nil {
			return nil, nil, err
		}
		people := make([]approvals.Person, len(cfg.Approvals.People))
		for i, p := range cfg.Approvals.People {
			people[i] = approvals.Person{Email: p.Email, SlackUser: p.SlackUser, Groups: p.Groups}
		}
		svc, err := approvals.NewWithStore(ctx, st, approvals.Options{
			People: people, Expiry: cfg.Approvals.Expiry.Duration, Wait: cfg.Approvals.Wait.Duration,
		})
		if err != nil {
			done()
			return nil, nil, err
		}
		return svc, done, nil
	}

	var state, subject string
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List recent approval requests (pending first when --state pending)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, done, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			rs, err := svc.List(cmd.Context(), approvals.ListFilter{
				State: approvals.State(state), Subject: subject, Limit: limit,
			})
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tSTATE\tCREATED\tREQUESTER\tTOOL\tTARGET\tCALL")
			for _, r := range rs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.State,
					r.CreatedAt.UTC().Format(time.RFC3339), r.Caller.Subject, r.Tool, r.Target, oneLine(r.Display, 60))
			}
			return w.Flush()
		},
	}
	list.Flags().StringVar(&state, "state", "", "only requests in this state (pending, approved, denied, expired, executed)")
	list.Flags().StringVar(&subject, "caller", "", "only requests of this caller subject")
	list.Flags().IntVar(&limit, "limit", 50, "most requests to list")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one request in full, with its decisions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, done, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			r, err := svc.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return showRequest(cmd.OutOrStdout(), r)
		},
	}

	decide := func(approve bool) *cobra.Command {
		var as string
		verb := "deny"
		if approve {
			verb = "approve"
		}
		c := &cobra.Command{
			Use:   verb + " ID --as EMAIL",
			Short: strings.ToUpper(verb[:1]) + verb[1:] + " a pending request as an allowed approver",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if as == "" {
					return fmt.Errorf("--as EMAIL is required: who is deciding")
				}
				svc, done, err := open(cmd.Context())
				if err != nil {
					return err
				}
				defer done()
				r, err := svc.Decide(cmd.Context(), args[0], approvals.Person{Email: as}, approve, approvals.ViaCLI)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "request %s is now %s\n", r.ID, r.State)
				return recordCLIDecision(cmd.Context(), cfgPath, r, cmd.ErrOrStderr())
			},
		}
		c.Flags().StringVar(&as, "as", "", "email of the approver deciding")
		return c
	}
	cmd.AddCommand(list, show, decide(true), decide(false))
	return cmd
}

// approvalStore opens where the guard keeps its approval requests: the
// shared PostgreSQL store (recorder.postgres_dsn_env), whose other
// replicas hear of a decision at once, or the SQLite file. The function
// returned closes it.
func approvalStore(ctx context.Context, cfg *config.Config) (approvals.Store, func(), error) {
	env := cfg.Recorder.PostgresDSNEnv
	if env == "" {
		db, err := recorder.OpenDB(cfg.Recorder.Path, cfg.Recorder.Synchronous)
		if err != nil {
			return nil, nil, err
		}
		return approvals.NewSQLiteStore(db), func() { db.Close() }, nil
	}
	pool, err := storePool(ctx, env)
	if err != nil {
		return nil, nil, err
	}
	return approvals.NewPostgresStore(pool, nil), pool.Close, nil
}

// storePool opens a pool on the shared store whose DSN is in the
// environment variable env.
func storePool(ctx context.Context, env string) (*pgxpool.Pool, error) {
	return app.StorePool(ctx, env, os.Getenv, "mcp-guard cli")
}

func showRequest(w io.Writer, r *approvals.Request) error {
	fmt.Fprintf(w, "request   %s\nstate     %s\ncreated   %s\nexpires   %s\n", r.ID, r.State,
		r.CreatedAt.UTC().Format(time.RFC3339), r.ExpiresAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "requester %s", r.Caller.Subject)
	if r.Caller.Email != "" {
		fmt.Fprintf(w, " <%s>", r.Caller.Email)
	}
	fmt.Fprintf(w, "\ntool      %s\ntarget    %s\n", r.Tool, r.Target)
	fmt.Fprintf(w, "approvers groups=%v emails=%v, %d needed\n", r.Approvers.Groups, r.Approvers.Emails, max(r.Required, 1))
	for _, reason := range r.Reasons {
		fmt.Fprintf(w, "reason    %s\n", reason)
	}
	fmt.Fprintf(w, "call:\n%s\n", r.Display)
	for _, d := range r.Decisions {
		verb := "denied"
		if d.Approve {
			verb = "approved"
		}
		fmt.Fprintf(w, "decision  %s %s via %s at %s\n", d.Approver, verb, d.Via, d.At.UTC().Format(time.RFC3339))
	}
	b, _ := json.Marshal(r.Arguments)
	fmt.Fprintf(w, "stored arguments %s\n", b)
	return nil
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

// recordCLIDecision writes the decision just made to the transcript and
// redraws the request's Slack message when Slack is configured, as the
// serving guard does for decisions that reach it.
func recordCLIDecision(ctx context.Context, cfgPath string, r *approvals.Request, stderr io.Writer) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var last *approvals.Decision
	if n := len(r.Decisions); n > 0 {
		last = &r.Decisions[n-1]
	}
	rec, done, err := app.OpenRecorder(ctx, cfg, os.Getenv, logger)
	if err != nil {
		return fmt.Errorf("the decision was stored but not recorded in the transcript: %w", err)
	}
	event := approvals.Event{Type: approvals.EventDecided, At: time.Now(), Request: r, Decision: last}
	err = rec.Append(ctx, recorder.KindApproval, "", r.ID, app.ApprovalEventBody(event))
	done()
	if err != nil {
		return fmt.Errorf("the decision was stored but not recorded in the transcript: %w", err)
	}
	if s := cfg.Approvals.Slack; s != nil && r.Message.TS != "" {
		token := os.Getenv(s.BotTokenEnv)
		if token == "" {
			fmt.Fprintf(stderr, "mcp-guard: %s is not set here, so the Slack message was not updated\n", s.BotTokenEnv)
			return nil
		}
		n, err := approvals.NewSlackNotifier(approvals.SlackOptions{BotToken: token, APIURL: s.APIURL, Channel: s.Channel, Logger: logger})
		if err == nil {
			err = n.Update(ctx, r)
		}
		if err != nil {
			fmt.Fprintf(stderr, "mcp-guard: the Slack message was not updated: %v\n", err)
		}
	}
	return nil
}
