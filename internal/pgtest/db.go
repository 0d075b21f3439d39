package pgtest

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// AppDBSQL is the shop fixture (appdb.sql): customers, staff, orders,
// payments, sessions, audit_log, integrations and support_tickets, with
// made-up card numbers, emails and tokens to mask. It is also the seed of
// the demo (scripts/pg.sh).
//
//go:embed appdb.sql
var AppDBSQL string

// Null is how Query reports an SQL NULL.
const Null = "<NULL>"

// setupTimeout bounds each helper call: creating a database, loading a
// fixture, running a query.
const setupTimeout = time.Minute

// DB is one database of the cluster, made for one test.
type DB struct {
	srv  *Server
	name string
}

// AppDB starts the cluster if needed and returns a fresh database loaded
// with [AppDBSQL].
func AppDB(tb testing.TB) *DB {
	tb.Helper()
	return Start(tb).NewDatabase(tb, AppDBSQL)
}

// NewDatabase creates a database with a unique name holding what
// fixtureSQL makes. The fixture may hold many statements; they run as the
// superuser in one simple query, so in one transaction, and must not need
// psql meta-commands. Each distinct fixture runs once per process, into a
// template database that every later call clones, so it must not depend
// on the database's name, and ALTER DATABASE settings in it are lost. The
// database is dropped (closing any connection left open) when tb's test
// ends. Failures call tb.Fatalf.
func (s *Server) NewDatabase(tb testing.TB, fixtureSQL string) *DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	create := "CREATE DATABASE %s"
	if strings.TrimSpace(fixtureSQL) != "" {
		tmpl, err := s.template(ctx, fixtureSQL)
		if err != nil {
			tb.Fatalf("pgtest: %v", err)
		}
		create += " TEMPLATE " + pgx.Identifier{tmpl}.Sanitize()
	}

	d := &DB{srv: s, name: s.databaseName(tb.Name())}
	ident := pgx.Identifier{d.name}.Sanitize()
	if err := s.exec(ctx, "postgres", fmt.Sprintf(create, ident)); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", d.name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		err := s.exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
		if err != nil {
			tb.Errorf("pgtest: drop database %s: %v", d.name, err)
		}
	})
	return d
}

// template returns the name of a template database loaded with fixture,
// making it on first use. A fixture that fails is tried again next time.
func (s *Server) template(ctx context.Context, fixture string) (string, error) {
	key := sha256.Sum256([]byte(fixture))
	s.templatesMu.Lock()
	t := s.templates[key]
	if t == nil {
		t = new(templateDB)
		s.templates[key] = t
	}
	s.templatesMu.Unlock()

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.name != "" {
		return t.name, nil
	}

	name := fmt.Sprintf("tmpl%d_%x", s.seq.Add(1), key[:6])
	ident := pgx.Identifier{name}.Sanitize()
	if err := s.exec(ctx, "postgres", "CREATE DATABASE "+ident); err != nil {
		return "", fmt.Errorf("create template database: %w", err)
	}
	if err := s.exec(ctx, name, fixture); err != nil {
		s.exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
		return "", fmt.Errorf("load fixture: %w", err)
	}
	// Nobody may connect to it, so that cloning never finds it busy.
	err := s.exec(ctx, "postgres",
		"ALTER DATABASE "+ident+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
	if err != nil {
		return "", fmt.Errorf("seal template database: %w", err)
	}
	t.name = name
	return name, nil
}

// templateDB is a database loaded with one fixture, made once.
type templateDB struct {
	mu   sync.Mutex // held while the template is made
	name string     // "" until made
}

// databaseName makes a unique, readable name from the test's name.
func (s *Server) databaseName(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return fmt.Sprintf("t%d_%s", s.seq.Add(1), b.String())
}

// exec runs sql (one or more statements) in database name as the superuser.
func (s *Server) exec(ctx context.Context, name, sql string) error {
	_, err := s.query(ctx, name, sql)
	return err
}

// query runs sql over the simple protocol, so every value comes back as
// text, and returns the rows of the last statement.
func (s *Server) query(ctx context.Context, name, sql string) ([][]string, error) {
	conn, err := pgx.Connect(ctx, s.DSN(name))
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())

	results, err := conn.PgConn().Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(results) == 0 {
		return nil, nil
	}
	last := results[len(results)-1]
	rows := make([][]string, 0, len(last.Rows))
	for _, raw := range last.Rows {
		row := make([]string, len(raw))
		for i, v := range raw {
			if v == nil {
				row[i] = Null
			} else {
				row[i] = string(v)
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// Name returns the database's name.
func (d *DB) Name() string { return d.name }

// Port returns the server's TCP port on 127.0.0.1.
func (d *DB) Port() int { return d.srv.port }

// User returns the role the DSN connects as: the superuser.
func (d *DB) User() string { return Superuser }

// Password returns the superuser's password, which DSN carries. Tests use
// it to check that it never leaks into errors, logs or results.
func (d *DB) Password() string { return d.srv.password }

// Server returns the cluster the database lives in.
func (d *DB) Server() *Server { return d.srv }

// DSN returns a URL to connect to the database as the superuser over TCP:
// postgres://postgres:PASSWORD@127.0.0.1:PORT/NAME?sslmode=disable.
func (d *DB) DSN() string { return d.srv.DSN(d.name) }

// DSNFor returns a URL like DSN's that connects as another role, such as
// a least-privilege login a test created with Exec.
func (d *DB) DSNFor(user, password string) string {
	return dsn(user, password, d.srv.port, d.name)
}

// Query runs sql as the superuser and returns the rows of its last
// statement in PostgreSQL's text form (numeric 12.50, arrays {a,b}, NULL
// as [Null]). It calls tb.Fatalf on error.
func (d *DB) Query(tb testing.TB, sql string) [][]string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	rows, err := d.srv.query(ctx, d.name, sql)
	if err != nil {
		tb.Fatalf("pgtest: query %s: %v", d.name, err)
	}
	return rows
}

// Exec runs sql (one or more statements) as the superuser, for setup such
// as creating roles or tables. It calls tb.Fatalf on error.
func (d *DB) Exec(tb testing.TB, sql string) {
	tb.Helper()
	d.Query(tb, sql)
}
