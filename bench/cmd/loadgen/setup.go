package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The statements measured. They read a table, so that the guard follows
// result columns to their source as it does for real queries.
const (
	sqlOneRow        = "SELECT id, name, price, created_at FROM bench_items WHERE id = 42"
	sqlThousand      = "SELECT id, name, price, created_at FROM bench_items ORDER BY id"
	sqlMillion       = "SELECT g, md5(g::text) FROM generate_series(1,1000000) g"
	millionRows      = 1000000
	benchFile        = "notes.txt"
	shellCommand     = "echo hi"
	defaultMaxRows   = 1000    // the guard's limits.max_rows default
	defaultMaxOutput = 1 << 20 // and its limits.max_output_bytes default
)

// limits are the guard's limits.max_rows and limits.max_output_bytes;
// zero keeps the default.
type limits struct{ maxRows, maxOutputBytes int }

// world is what the servers run against: a work directory holding the
// configurations, the transcript, a files root and a shell workdir.
type world struct {
	dir  string
	dsn  string
	env  []string // the environment of every server process
	conf string   // the main guard configuration
}

// newWorld lays out dir and writes the main guard configuration.
func newWorld(dir, dsn string) (*world, error) {
	w := &world{dir: dir, dsn: dsn}
	for _, d := range []string{"files", "shell", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	notes := strings.Repeat("Quarterly numbers are in the reports folder.\n", 20)
	if err := os.WriteFile(filepath.Join(dir, "files", benchFile), []byte(notes), 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", benchFile, err)
	}
	w.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"LANG=C.UTF-8",
		"BENCH_DSN=" + dsn,
	}
	conf, err := w.writeConfig("guard", limits{})
	if err != nil {
		return nil, err
	}
	w.conf = conf
	return w, nil
}

// writeConfig writes a guard configuration named name whose transcript
// lives in its own directory; limits zero keep the defaults. The
// HTTP rate limit is raised out of the way: it is a per-caller guard
// against runaway clients, and every benchmark client is one caller.
func (w *world) writeConfig(name string, lim limits) (string, error) {
	var limits string
	if lim.maxRows > 0 || lim.maxOutputBytes > 0 {
		limits = fmt.Sprintf("limits: {max_rows: %d, max_output_bytes: %d}\n",
			cmp.Or(lim.maxRows, defaultMaxRows), cmp.Or(lim.maxOutputBytes, defaultMaxOutput))
	}
	cfg := fmt.Sprintf(`identity: {subject: bench, email: bench@example.com, groups: [developers]}
recorder: {path: %q}
targets:
  - {name: appdb, kind: postgres, description: Bench database, dsn_env: BENCH_DSN}
  - {name: workspace, kind: files, description: Bench files, roots: [%q]}
  - {name: local, kind: shell, description: Local shell, workdir: %q}
http: {rate_limit: 1000000, rate_burst: 1000000}
%s`, filepath.Join(w.dir, "var-"+name, "mcp-guard.db"),
		filepath.Join(w.dir, "files"), filepath.Join(w.dir, "shell"), limits)
	path := filepath.Join(w.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	return path, nil
}

func (w *world) log(name string) string { return filepath.Join(w.dir, "logs", name+".log") }

// prepareDatabase creates the benchmark table and turns off statement
// logging, which the throwaway cluster of scripts/pg.sh enables and which
// would charge every statement a log write. Only ever point the benchmark
// at a throwaway cluster.
func prepareDatabase(ctx context.Context, pool *pgxpool.Pool) (version string, err error) {
	stmts := []string{
		"ALTER SYSTEM SET log_statement = 'none'",
		"SELECT pg_reload_conf()",
		"DROP TABLE IF EXISTS bench_items",
		`CREATE TABLE bench_items (
			id         integer PRIMARY KEY,
			name       text NOT NULL,
			price      numeric(10,2) NOT NULL,
			created_at timestamptz NOT NULL)`,
		`INSERT INTO bench_items
			SELECT g, 'Item ' || g, (g % 500) + 0.99,
				timestamptz '2026-01-01 00:00:00+00' + g * interval '1 hour'
			FROM generate_series(1, 1000) g`,
		"ANALYZE bench_items",
	}
	for _, s := range stmts {
		if _, err := pool.Exec(ctx, s); err != nil {
			return "", fmt.Errorf("prepare database: %w", err)
		}
	}
	if err := pool.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		return "", fmt.Errorf("read server version: %w", err)
	}
	return version, nil
}
