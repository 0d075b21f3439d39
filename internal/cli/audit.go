package cli

import (
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/recorder"
)

// exitTampered is the exit code of audit verify when the chain does not
// verify, kept apart from 1 (the command could not run).
const exitTampered = 2

func newAudit() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify, read, export, replay and prune the transcript",
		Long: "audit answers who ran what, on which system, who approved it and what came " +
			"back, from the recorder's database, and checks that the answer was not edited. " +
			"Each subcommand reads the database named by --config (recorder.path) or given " +
			"directly with --db, such as a copy; reading commands open it read-only.",
	}
	cmd.AddCommand(newAuditVerify(), newAuditSessions(), newAuditShow(),
		newAuditExport(), newAuditReplay(), newAuditPrune())
	return cmd
}

// auditSource is where an audit command finds the database and, when
// there is one, the configuration.
type auditSource struct {
	cfgPath string
	dbPath  string
	cmd     *cobra.Command
	// journalProblems says what recover found wrong with the journal: a
	// reading command has warned of it, and verify fails on it.
	journalProblems []string
}

func (s *auditSource) flags(cmd *cobra.Command) {
	s.cmd = cmd
	cmd.Flags().StringVar(&s.cfgPath, "config", "mcp-guard.yaml", "configuration file")
	cmd.Flags().StringVar(&s.dbPath, "db", "", "transcript database to read instead of the configured one")
}

// config loads the configuration unless only --db was given; nil then.
func (s *auditSource) config() (*config.Config, error) {
	if s.dbPath != "" && !s.cmd.Flags().Changed("config") {
		return nil, nil
	}
	return config.Load(s.cfgPath)
}

// path returns the database path and the configuration, if any.
func (s *auditSource) path() (string, *config.Config, error) {
	cfg, err := s.config()
	if err != nil {
		return "", nil, err
	}
	if s.dbPath != "" {
		return s.dbPath, cfg, nil
	}
	return cfg.Recorder.Path, cfg, nil
}

// openRO opens the database read-only.
func (s *auditSource) openRO() (*sql.DB, *config.Config, error) {
	return s.open(true)
}

// open opens the transcript: the file given with --db, else the shared
// PostgreSQL store when the configuration names one
// (recorder.postgres_dsn_env), else the configured SQLite file.
func (s *auditSource) open(readOnly bool) (*sql.DB, *config.Config, error) {
	path, cfg, err := s.path()
	if err != nil {
		return nil, nil, err
	}
	if s.dbPath == "" && cfg.Recorder.PostgresDSNEnv != "" {
		env := cfg.Recorder.PostgresDSNEnv
		dsn := os.Getenv(env)
		if dsn == "" {
			return nil, nil, fmt.Errorf("recorder.postgres_dsn_env: %s is empty", env)
		}
		db, err := recorder.OpenPostgresDB(s.cmd.Context(), dsn, readOnly)
		return db, cfg, err
	}
	if err := s.recover(path, cfg, readOnly); err != nil {
		return nil, nil, err
	}
	var db *sql.DB
	if readOnly {
		db, err = recorder.OpenReadOnly(path)
	} else if _, err = os.Stat(path); err != nil {
		err = fmt.Errorf("open transcript: %w", err)
	} else {
		db, err = recorder.OpenDB(path, "normal")
	}
	if err != nil {
		return nil, nil, err
	}
	return db, cfg, nil
}

// recover moves into the SQLite transcript at path the records a guard
// committed to its journal and did not move in before it stopped, so
// that the command sees every committed record. Records a serving guard
// is moving in itself show up a few milliseconds after their commit.
// Where this process may not write the database, or the journal does not
// go with it, a reading command warns and reads the database as it is; a
// writing one fails.
func (s *auditSource) recover(path string, cfg *config.Config, readOnly bool) error {
	stderr := s.cmd.ErrOrStderr()
	opts := recorder.Options{
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if cfg != nil {
		opts.Synchronous = cfg.Recorder.Synchronous
	}
	res, err := recorder.Recover(path, opts)
	if err != nil {
		if !readOnly {
			return err
		}
		fmt.Fprintf(stderr, "mcp-guard: warning: the records in the journal could not be "+
			"moved into the transcript, which is read as it is: %v\n", err)
		return nil
	}
	if len(res.Problems) > 0 {
		if !readOnly {
			return fmt.Errorf("the journal: %s", strings.Join(res.Problems, "; "))
		}
		s.journalProblems = res.Problems
		for _, p := range res.Problems {
			fmt.Fprintf(stderr, "mcp-guard: warning: %s; the transcript is read as it is\n", p)
		}
	}
	if res.Pending > 0 {
		fmt.Fprintf(stderr, "mcp-guard: warning: %d %s in the journal %s %s not in "+
			"the transcript yet and %s left out: this user cannot write them in\n",
			res.Pending, plural(res.Pending, "record", "records"),
			recorder.JournalPath(path), plural(res.Pending, "is", "are"),
			plural(res.Pending, "is", "are"))
	}
	return nil
}

// plural returns one when n is 1, else many.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// trustedKey returns the public key to check checkpoints against: the
// file given, else the configured signing key's .pub (or the key itself);
// nil when there is none.
func trustedKey(file string, cfg *config.Config) (ed25519.PublicKey, string, error) {
	if file != "" {
		k, err := recorder.ReadPublicKey(file)
		return k, file, err
	}
	if cfg == nil {
		return nil, "", nil
	}
	keyPath := recorder.SigningKeyPath(cfg.Recorder.SigningKeyFile, cfg.Recorder.Path)
	pubPath := recorder.PublicKeyPath(keyPath)
	if k, err := recorder.ReadPublicKey(pubPath); err == nil {
		return k, pubPath, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", err
	}
	k, err := recorder.LoadSigningKey(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	return k.Public().(ed25519.PublicKey), keyPath, nil
}

func newAuditVerify() *cobra.Command {
	var src auditSource
	var pubFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the hash chain and the checkpoint signatures of the whole transcript",
		Long: "verify walks every record in order, recomputes its hash, checks the links, the " +
			"seq numbers and the prune anchor, and checks every checkpoint signature against " +
			"the trusted public key (--public-key, or the configured signing key's .pub). It " +
			"names the first record that was edited, deleted or reordered. Exit status: 0 the " +
			"chain verifies, 2 it does not, 1 the check could not run.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, cfg, err := src.openRO()
			if err != nil {
				return err
			}
			defer db.Close()
			key, keyFrom, err := trustedKey(pubFile, cfg)
			if err != nil {
				return err
			}
			rep, err := recorder.Verify(cmd.Context(), db, recorder.VerifyOptions{PublicKey: key})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				printReport(out, rep, keyFrom)
				for _, p := range src.journalProblems {
					fmt.Fprintf(out, "journal:     FAILED, %s\n", p)
				}
			}
			if len(src.journalProblems) > 0 {
				return &exitError{code: exitTampered, err: fmt.Errorf("the transcript "+
					"may lack committed records: %s", src.journalProblems[0])}
			}
			if !rep.OK() {
				return &exitError{code: exitTampered,
					err: fmt.Errorf("the transcript does not verify: %s", rep.Problems[0])}
			}
			return nil
		},
	}
	src.flags(cmd)
	cmd.Flags().StringVar(&pubFile, "public-key", "", "trusted checkpoint public key (PEM or hex)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func printReport(w io.Writer, rep recorder.Report, keyFrom string) {
	if rep.Records == 0 {
		fmt.Fprintln(w, "the transcript is empty")
		return
	}
	fmt.Fprintf(w, "records:     %d (seq %d to %d)\n", rep.Records, rep.FirstSeq, rep.LastSeq)
	fmt.Fprintf(w, "head:        %s\n", rep.HeadHash)
	if rep.PrunedThrough > 0 {
		fmt.Fprintf(w, "pruned:      seq 1 to %d, as the latest prune record says\n", rep.PrunedThrough)
	}
	fmt.Fprintf(w, "checkpoints: %d", rep.Checkpoints)
	if cp := rep.LastCheckpoint; cp != nil {
		// The records after the checkpoint that signs the furthest.
		unsigned := rep.LastSeq - rep.SignedThrough
		if cp.UptoSeq == rep.SignedThrough {
			unsigned = rep.LastSeq - cp.Seq
		}
		fmt.Fprintf(w, ", the last at seq %d; signed through seq %d, %d record(s) after it unsigned",
			cp.Seq, rep.SignedThrough, unsigned)
	}
	fmt.Fprintln(w)
	if rep.TrustedKey {
		fmt.Fprintf(w, "key:         signatures checked against %s\n", keyFrom)
	} else {
		fmt.Fprintln(w, "key:         WARNING: no trusted public key; signatures were checked against "+
			"the keys the checkpoints name, which anyone able to write the database could replace "+
			"(pass --public-key)")
	}
	for _, kc := range rep.KeyChanges {
		fmt.Fprintf(w, "key change:  at seq %d, from %.16s… to %.16s…\n", kc.Seq, kc.From, kc.To)
	}
	if rep.OK() {
		fmt.Fprintln(w, "result:      OK, the chain verifies")
		return
	}
	fmt.Fprintf(w, "result:      TAMPERED, %d problem(s); the first:\n", rep.ProblemCount)
	for i, p := range rep.Problems {
		if i == 1 {
			fmt.Fprintln(w, "then:")
		}
		fmt.Fprintf(w, "  %s\n", p)
	}
	if rep.ProblemCount > len(rep.Problems) {
		fmt.Fprintf(w, "  … and %d more\n", rep.ProblemCount-len(rep.Problems))
	}
}

func newAuditSessions() *cobra.Command {
	var src auditSource
	var caller string
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List the sessions of the transcript, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, _, err := src.openRO()
			if err != nil {
				return err
			}
			defer db.Close()
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SESSION\tSTARTED\tLAST\tTRANSPORT\tCLIENT\tCALLER\tCALLS\tENDED")
			err = recorder.Sessions(cmd.Context(), db, func(s recorder.Session) error {
				st := sessionStart(s.Start)
				other := st.Caller.Subject != caller && !strings.EqualFold(st.Caller.Email, caller)
				if caller != "" && other {
					return nil
				}
				ended := "no"
				if s.Ended {
					ended = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.ID, showTime(s.FirstAt),
					showTime(s.LastAt), orDash(st.Transport), orDash(st.client()),
					orDash(st.Caller.name()), s.Calls, ended)
				return nil
			})
			if err != nil {
				return err
			}
			return tw.Flush()
		},
	}
	src.flags(cmd)
	cmd.Flags().StringVar(&caller, "caller", "", "only sessions of this caller (subject or email)")
	return cmd
}

// startView is the body of a session_start record.
type startView struct {
	Transport     string     `json:"transport"`
	ClientName    string     `json:"client_name"`
	ClientVersion string     `json:"client_version"`
	Protocol      string     `json:"protocol"`
	Caller        callerView `json:"caller"`
}

func (s startView) client() string {
	return strings.TrimSpace(s.ClientName + " " + s.ClientVersion)
}

func sessionStart(rec *recorder.Record) startView {
	var v startView
	if rec != nil {
		_ = json.Unmarshal(rec.Body, &v)
	}
	return v
}

type callerView recorder.Caller

// name is the email when there is one, else the subject.
func (c callerView) name() string {
	if c.Email != "" {
		return c.Email
	}
	return c.Subject
}

func newAuditPrune() *cobra.Command {
	var src auditSource
	var before, keyFile, pubFile string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete the records older than a date, keeping the chain verifiable",
		Long: "prune deletes whole records older than --before from the start of the transcript " +
			"and appends a prune record naming the first record kept, then a checkpoint signed " +
			"with the configured signing key (or --signing-key). It refuses a transcript that " +
			"does not verify. The database file keeps its size until VACUUM.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cut, err := parseTime(before)
			if err != nil {
				return fmt.Errorf("--before: %w", err)
			}
			_, cfg, err := src.path()
			if err != nil {
				return err
			}
			opts := recorder.PruneOptions{Before: cut, DryRun: dryRun}
			if keyFile == "" && cfg != nil {
				keyFile = recorder.SigningKeyPath(cfg.Recorder.SigningKeyFile, cfg.Recorder.Path)
			}
			if keyFile != "" {
				opts.SigningKey, err = recorder.LoadSigningKey(keyFile)
				if err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
			}
			if pubFile != "" {
				if opts.PublicKey, err = recorder.ReadPublicKey(pubFile); err != nil {
					return err
				}
			}
			db, _, err := src.open(false)
			if err != nil {
				return err
			}
			defer db.Close()
			res, err := recorder.Prune(cmd.Context(), db, opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			switch {
			case res.Deleted == 0:
				fmt.Fprintf(out, "nothing to prune: no record is older than %s\n", showTime(cut))
			default:
				fmt.Fprintf(out, "%s %d record(s) older than %s; the chain now starts at seq %d\n",
					verb, res.Deleted, showTime(cut), res.FirstKept)
				if !dryRun && opts.SigningKey == nil {
					fmt.Fprintln(out, "no signing key: the prune record is signed "+
						"by the next checkpoint the guard writes")
				}
			}
			return nil
		},
	}
	src.flags(cmd)
	cmd.Flags().StringVar(&before, "before", "",
		"delete records older than this date (2026-01-31 or RFC 3339)")
	cmd.Flags().StringVar(&keyFile, "signing-key", "", "key that signs the checkpoint after the prune")
	cmd.Flags().StringVar(&pubFile, "public-key", "", "trusted key for the verification that runs first")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be deleted, change nothing")
	_ = cmd.MarkFlagRequired("before")
	return cmd
}

// parseTime reads a date (midnight UTC) or an RFC 3339 time.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a date (2026-01-31) nor an RFC 3339 time", s)
	}
	return t, nil
}

func showTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
