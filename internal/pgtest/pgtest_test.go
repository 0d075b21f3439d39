package pgtest_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mcp-guard/mcp-guard/internal/pgtest"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		runHelper(mode)
		return
	}
	pgtest.Main(m)
}

func TestStartReturnsOneServer(t *testing.T) {
	s1 := pgtest.Start(t)
	s2 := pgtest.Start(t)
	if s1 != s2 {
		t.Fatal("Start made a second server in one process")
	}
	if s1.Port() <= 0 || s1.Port() > 65535 {
		t.Errorf("Port() = %d", s1.Port())
	}
	if v, err := strconv.Atoi(s1.Version()); err != nil || v < 13 {
		t.Errorf("Version() = %q, want a major version >= 13", s1.Version())
	}
	if len(s1.Password()) < 20 {
		t.Errorf("password has %d characters, want at least 20", len(s1.Password()))
	}
}

func TestDatabasesAreSeparate(t *testing.T) {
	s := pgtest.Start(t)
	a := s.NewDatabase(t, "CREATE TABLE only_in_a (x int); INSERT INTO only_in_a VALUES (7);")
	b := s.NewDatabase(t, "")

	if a.Name() == b.Name() {
		t.Fatalf("both databases are named %q", a.Name())
	}
	if got := a.Query(t, "SELECT x FROM only_in_a"); !equalRows(got, [][]string{{"7"}}) {
		t.Errorf("a: rows = %v, want [[7]]", got)
	}
	got := b.Query(t, "SELECT to_regclass('only_in_a')")
	if !equalRows(got, [][]string{{pgtest.Null}}) {
		t.Errorf("b sees a's table: to_regclass = %v", got)
	}
}

func TestDSNCarriesPassword(t *testing.T) {
	db := pgtest.Start(t).NewDatabase(t, "")

	u, err := url.Parse(db.DSN())
	if err != nil {
		t.Fatalf("parse DSN: %v", err)
	}
	pw, ok := u.User.Password()
	checks := []struct {
		name      string
		got, want string
	}{
		{"scheme", u.Scheme, "postgres"},
		{"user", u.User.Username(), db.User()},
		{"password", pw, db.Password()},
		{"host", u.Hostname(), "127.0.0.1"},
		{"port", u.Port(), strconv.Itoa(db.Port())},
		{"database", strings.TrimPrefix(u.Path, "/"), db.Name()},
		{"sslmode", u.Query().Get("sslmode"), "disable"},
	}
	if !ok {
		t.Fatal("DSN has no password")
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestPasswordIsEnforced(t *testing.T) {
	db := pgtest.Start(t).NewDatabase(t, "")
	u, _ := url.Parse(db.DSN())

	tests := []struct {
		name     string
		user     *url.Userinfo
		wantCode string // "" means the connection must work
	}{
		{"right password", url.UserPassword(db.User(), db.Password()), ""},
		{"wrong password", url.UserPassword(db.User(), "not-"+db.Password()), "28P01"},
		{"no password", url.User(db.User()), "any"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := *u
			v.User = tt.user
			conn, err := pgx.Connect(context.Background(), v.String())
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("connect: %v", err)
				}
				conn.Close(context.Background())
				return
			}
			if err == nil {
				conn.Close(context.Background())
				t.Fatal("connected without the right password")
			}
			var pgErr *pgconn.PgError
			if tt.wantCode != "any" && (!errors.As(err, &pgErr) || pgErr.Code != tt.wantCode) {
				t.Errorf("error = %v, want SQLSTATE %s", err, tt.wantCode)
			}
		})
	}
}

func TestDSNForOtherRole(t *testing.T) {
	db := pgtest.Start(t).NewDatabase(t, "")
	role, pw := db.Name()+"_ro", rand.Text()
	db.Exec(t, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", role, pw))
	t.Cleanup(func() { db.Exec(t, "DROP ROLE IF EXISTS "+role) })

	conn, err := pgx.Connect(context.Background(), db.DSNFor(role, pw))
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	defer conn.Close(context.Background())
	var who string
	if err := conn.QueryRow(context.Background(), "SELECT current_user").Scan(&who); err != nil {
		t.Fatalf("query: %v", err)
	}
	if who != role {
		t.Errorf("current_user = %q, want %q", who, role)
	}
}

func TestDatabaseDroppedAfterTest(t *testing.T) {
	s := pgtest.Start(t)
	var name string
	t.Run("uses a database", func(t *testing.T) {
		db := s.NewDatabase(t, "")
		name = db.Name()
		// A connection left open must not stop the drop.
		conn, err := pgx.Connect(context.Background(), db.DSN())
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
	})

	probe := s.NewDatabase(t, "")
	got := probe.Query(t, "SELECT count(*) FROM pg_database WHERE datname = '"+name+"'")
	if !equalRows(got, [][]string{{"0"}}) {
		t.Errorf("database %s still exists after its test: %v", name, got)
	}
}

func TestQueryReturnsText(t *testing.T) {
	db := pgtest.Start(t).NewDatabase(t, "")
	tests := []struct {
		name string
		sql  string
		want [][]string
	}{
		{"scalars", "SELECT 1, 'a b', true", [][]string{{"1", "a b", "t"}}},
		{"null", "SELECT NULL::text", [][]string{{pgtest.Null}}},
		{"numeric keeps scale", "SELECT 12.50::numeric(10,2)", [][]string{{"12.50"}}},
		{"array", "SELECT ARRAY['a','b']", [][]string{{"{a,b}"}}},
		{"many rows", "SELECT g FROM generate_series(1,3) g", [][]string{{"1"}, {"2"}, {"3"}}},
		{"no rows", "SELECT 1 WHERE false", [][]string{}},
		{"last statement wins", "SELECT 1; SELECT 2", [][]string{{"2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := db.Query(t, tt.sql); !equalRows(got, tt.want) {
				t.Errorf("Query(%q) = %v, want %v", tt.sql, got, tt.want)
			}
		})
	}
}

func TestBadFixtureFailsWithReason(t *testing.T) {
	s := pgtest.Start(t)
	tests := []struct {
		name    string
		fixture string
		want    string
	}{
		{"missing table", "CREATE TABLE t (x int); INSERT INTO nosuch VALUES (1);",
			`relation "nosuch" does not exist`},
		{"syntax error", "CREATE TABLE (;", "syntax error"},
		{"psql meta-command", `\set x 1`, "syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := fatalMessage(t, func(tb testing.TB) { s.NewDatabase(tb, tt.fixture) })
			if !strings.Contains(msg, tt.want) {
				t.Errorf("Fatalf message %q does not contain %q", msg, tt.want)
			}
			if strings.Contains(msg, s.Password()) {
				t.Errorf("Fatalf message leaks the password: %q", msg)
			}
		})
	}
}

func TestLogShowsStatements(t *testing.T) {
	s := pgtest.Start(t)
	db := s.NewDatabase(t, "")
	marker := "pgtest_marker_" + strings.ToLower(rand.Text())

	if s.LogContains(marker) {
		t.Fatal("log holds the marker before it was sent")
	}
	since := s.LogSince()
	db.Query(t, "SELECT '"+marker+"'")
	if !s.LogContains(marker) {
		t.Error("LogContains misses a statement the server ran")
	}
	if !since(marker) {
		t.Error("LogSince misses a statement logged after the mark")
	}
	if !s.LogContains("@" + db.Name() + " LOG:  statement: SELECT '" + marker) {
		t.Error("log line lacks the user@database prefix")
	}
	if later := s.LogSince(); later(marker) {
		t.Error("LogSince reports a statement logged before the mark")
	}
}

func TestPasswordNotInLog(t *testing.T) {
	s := pgtest.Start(t)
	pgtest.AppDB(t).Query(t, "SELECT count(*) FROM customers")
	if !s.LogContains("SELECT count(*) FROM customers") {
		t.Fatal("log is not recording statements; the check below would prove nothing")
	}
	if s.LogContains(s.Password()) {
		t.Error("server log contains the superuser password")
	}
}

func TestAppDBLoadsConcurrently(t *testing.T) {
	// The fixture creates a cluster-wide role; loading it into several
	// databases at once must not trip over that.
	for i := range 3 {
		t.Run(fmt.Sprintf("load %d", i), func(t *testing.T) {
			t.Parallel()
			db := pgtest.AppDB(t)
			got := db.Query(t, "SELECT count(*) FROM orders")
			if !equalRows(got, [][]string{{"200"}}) {
				t.Errorf("orders = %v, want 200", got)
			}
		})
	}
}

func TestAppDBFixture(t *testing.T) {
	db := pgtest.AppDB(t)
	tests := []struct {
		name string
		sql  string
		want [][]string
	}{
		{"northwind", "SELECT email FROM customers WHERE company = 'Northwind Traders'",
			[][]string{{"ana.lopez@northwind.example"}}},
		{"customer count", "SELECT count(*) FROM customers", [][]string{{"16"}}},
		{"order count", "SELECT count(*) FROM orders", [][]string{{"200"}}},
		{"order statuses", "SELECT string_agg(DISTINCT status, ',' ORDER BY status) FROM orders",
			[][]string{{"paid,pending,refunded"}}},
		{"order column types", `SELECT pg_typeof(total), pg_typeof(created_at),
			pg_typeof(public_id), pg_typeof(client_ip), pg_typeof(packing),
			pg_typeof(details), pg_typeof(tags) FROM orders WHERE id = 1`,
			[][]string{{"numeric", "timestamp with time zone", "uuid", "inet",
				"interval", "jsonb", "text[]"}}},
		{"order 4 values", `SELECT total, client_ip, packing, details->>'channel', tags
			FROM orders WHERE id = 4`,
			[][]string{{"158.03", "192.0.2.5", "04:52:00", "web", "{priority,fragile}"}}},
		{"payments match orders", `SELECT count(*) FROM payments p
			JOIN orders o ON o.id = p.order_id WHERE p.amount <> o.total`,
			[][]string{{"0"}}},
		{"dblink installed", "SELECT extname FROM pg_extension WHERE extname = 'dblink'",
			[][]string{{"dblink"}}},
		{"report_reader role", "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'report_reader'",
			[][]string{{"f"}}},
		{"card in ticket 1", "SELECT count(*) FROM support_tickets WHERE id = 1 " +
			"AND body LIKE '%4242 4242 4242 4242%' AND subject LIKE '%Card declined%'",
			[][]string{{"1"}}},
		{"card in ticket 2", "SELECT count(*) FROM support_tickets WHERE id = 2 " +
			"AND body LIKE '%3714-496353-98431%'", [][]string{{"1"}}},
		{"email and token in tickets 1 and 2", `SELECT count(*) FROM support_tickets
			WHERE id IN (1, 2) AND body ~ '[a-z.]+@[a-z.-]+\.example'
			AND body ~ '(ghp_|sk_test_)[A-Za-z0-9]{20,}'`, [][]string{{"2"}}},
		{"github token", `SELECT count(*) FROM integrations
			WHERE api_token ~ '^ghp_[A-Za-z0-9]{36}$'`, [][]string{{"1"}}},
		{"slack token", `SELECT count(*) FROM integrations
			WHERE api_token ~ '^xoxb-[0-9]+-[0-9]+-[A-Za-z0-9]+$'`, [][]string{{"1"}}},
		{"stripe key", `SELECT count(*) FROM integrations
			WHERE api_token ~ '^sk_test_[A-Za-z0-9]{24,}$'`, [][]string{{"1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := db.Query(t, tt.sql); !equalRows(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAppDBExplainShowsScan(t *testing.T) {
	db := pgtest.AppDB(t)
	plan := db.Query(t, "EXPLAIN SELECT * FROM orders WHERE total > 100")
	if len(plan) == 0 || !strings.Contains(plan[0][0], "Scan") {
		t.Errorf("plan = %v, want a Scan node", plan)
	}
}

// cardPattern finds card numbers written in free text with spaces or
// dashes between digit groups.
var cardPattern = regexp.MustCompile(`\b\d(?:[ -]?\d){12,18}\b`)

func TestAppDBCardNumbersPassLuhn(t *testing.T) {
	db := pgtest.AppDB(t)
	var cards []string
	for _, row := range db.Query(t, `SELECT card_number FROM customers
		WHERE card_number IS NOT NULL UNION SELECT card_number FROM payments`) {
		cards = append(cards, row[0])
	}
	for _, row := range db.Query(t, "SELECT body FROM support_tickets WHERE id IN (1, 2)") {
		found := cardPattern.FindAllString(row[0], -1)
		if len(found) == 0 {
			t.Errorf("no card number in ticket body %q", row[0])
		}
		cards = append(cards, found...)
	}
	if len(cards) < 10 {
		t.Fatalf("found only %d card numbers", len(cards))
	}
	for _, c := range cards {
		if !luhn(c) {
			t.Errorf("card number %q fails the Luhn check", c)
		}
	}
}

func TestLuhn(t *testing.T) {
	tests := []struct {
		name   string
		number string
		want   bool
	}{
		{"visa", "4111111111111111", true},
		{"amex with dashes", "3714-496353-98431", true},
		{"last digit off", "4111111111111112", false},
		{"too short", "42", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := luhn(tt.number); got != tt.want {
				t.Errorf("luhn(%q) = %v, want %v", tt.number, got, tt.want)
			}
		})
	}
}

func BenchmarkAppDB(b *testing.B) {
	s := pgtest.Start(b)
	for b.Loop() {
		s.NewDatabase(b, pgtest.AppDBSQL)
	}
}

// luhn reports whether the digits of s (spaces and dashes ignored) pass
// the Luhn check.
func luhn(s string) bool {
	digits := strings.NewReplacer(" ", "", "-", "").Replace(s)
	if len(digits) < 12 {
		return false
	}
	sum := 0
	for i := range len(digits) {
		d := int(digits[len(digits)-1-i] - '0')
		if d < 0 || d > 9 {
			return false
		}
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

func equalRows(got, want [][]string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if strings.Join(got[i], "\x00") != strings.Join(want[i], "\x00") ||
			len(got[i]) != len(want[i]) {
			return false
		}
	}
	return true
}

// fatalTB records the first Fatalf and ends the goroutine, as testing
// does; everything else goes to the real test.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

// fatalMessage runs fn and returns the message it passed to Fatalf; the
// test fails if fn did not call Fatalf.
func fatalMessage(t *testing.T, fn func(tb testing.TB)) string {
	t.Helper()
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.msg == "" {
		t.Fatal("Fatalf was not called")
	}
	return tb.msg
}
