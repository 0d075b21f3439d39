// Package pgtest runs a throwaway PostgreSQL cluster for tests.
//
// Each test process gets at most one cluster, started on first use by
// [Start] from Debian's server binaries: a fresh data directory in a temp
// dir, a free loopback port, password (SCRAM) authentication with a random
// superuser password, fsync off, and every statement logged so tests can
// prove what did or did not reach the server. Tests then take fresh
// databases from it with [Server.NewDatabase] or [AppDB].
//
// Cleanup never depends on the test finishing well. Before the cluster is
// started, a small reaper process (a shell in its own process group) is
// spawned with the read end of a pipe as its stdin. When the test process
// exits in any way, even killed, the kernel closes the write end; the reaper
// then stops the server (immediate mode) and removes the temp dir. [Main],
// for TestMain, closes the pipe itself and waits for the reaper, so the
// cluster is gone before the process exits. Packages that skip Main are
// still cleaned up, just a moment after their process ends.
//
// Environment: PGTEST_BINDIR names the directory holding initdb and pg_ctl;
// by default the highest version under /usr/lib/postgresql/*/bin is used,
// then PATH. As root, the server runs as the postgres OS user (initdb
// refuses root) through runuser.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Superuser is the name of the cluster's superuser role.
const Superuser = "postgres"

const (
	// startTimeout bounds initdb plus pg_ctl start.
	startTimeout = 2 * time.Minute
	// stopTimeout bounds how long Main waits for the reaper.
	stopTimeout = time.Minute
	// portTries is how many free ports are tried when another process
	// takes the chosen one between probe and bind.
	portTries = 5
	// maxSocketPath is the limit of a unix socket path (sun_path) on Linux.
	maxSocketPath = 107
)

// settings are appended to postgresql.conf; the port goes on the command
// line so a retry can change it.
var settings = []string{
	"listen_addresses = '127.0.0.1'",
	"fsync = off",
	"synchronous_commit = off",
	"full_page_writes = off",
	"log_statement = 'all'",
	"log_line_prefix = '%m [%p] %q%u@%d '",
	"lc_messages = 'C'",
	"timezone = 'UTC'",
	"max_connections = 200",
}

// Server is the throwaway cluster of this test process. Its methods are
// safe for concurrent use.
type Server struct {
	dir      string // temp dir: data/, log, unix socket; removed at stop
	binDir   string // holds initdb, pg_ctl and postgres
	runAs    []string
	port     int
	password string
	version  string

	seq atomic.Int64 // numbers databases made by NewDatabase

	templatesMu sync.Mutex
	templates   map[[32]byte]*templateDB // by fixture hash; guarded by templatesMu

	reaper *reaper
}

var (
	shared struct {
		once sync.Once
		srv  *Server
		err  error
	}
	errStopped = errors.New("cluster already stopped by Main")
)

// Start returns the cluster of this test process, starting it on first
// use. It calls tb.Fatalf, never Skip, when PostgreSQL cannot start: a
// machine without PostgreSQL must fail loudly (scripts/install-deps.sh
// installs it). Start takes about a second the first time.
func Start(tb testing.TB) *Server {
	tb.Helper()
	shared.once.Do(func() {
		shared.srv, shared.err = start()
	})
	if shared.err != nil {
		tb.Fatalf("pgtest: start PostgreSQL: %v", shared.err)
	}
	return shared.srv
}

// Main runs the tests of m, stops the cluster if one was started, and
// exits with the tests' code (or 1 if the tests passed but the stop
// failed). Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()

	// Mark the once as used, so that nothing starts a cluster after this.
	shared.once.Do(func() { shared.err = errStopped })
	if shared.srv != nil {
		if err := shared.srv.reaper.stop(stopTimeout); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stop PostgreSQL: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// Port returns the TCP port the server listens on at 127.0.0.1.
func (s *Server) Port() int { return s.port }

// Password returns the superuser's password.
func (s *Server) Password() string { return s.password }

// Version returns the server's major version, such as "15".
func (s *Server) Version() string { return s.version }

// Dir returns the cluster's temp dir, which holds the data directory, the
// log and the unix socket.
func (s *Server) Dir() string { return s.dir }

// LogPath returns the path of the server log.
func (s *Server) LogPath() string { return filepath.Join(s.dir, "log") }

// DSN returns a URL to connect to database name as the superuser over TCP.
func (s *Server) DSN(name string) string {
	return dsn(Superuser, s.password, s.port, name)
}

func dsn(user, password string, port int, name string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/" + name,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// start makes and starts the cluster. On error, the reaper (if it was
// started) is told to clean up.
func start() (*Server, error) {
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{
		binDir:    binDir,
		password:  rand.Text(),
		templates: make(map[[32]byte]*templateDB),
	}

	owner, err := s.chooseOwner()
	if err != nil {
		return nil, err
	}
	if err := s.makeDir(owner); err != nil {
		return nil, err
	}

	s.reaper, err = startReaper(s.dir, s.stopCommand())
	if err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.initAndRun(ctx, owner); err != nil {
		s.reaper.stop(stopTimeout)
		return nil, err
	}
	return s, nil
}

// initAndRun runs initdb, configures the cluster, starts it and checks
// that the password works over TCP.
func (s *Server) initAndRun(ctx context.Context, owner *user.User) error {
	if err := s.initdb(ctx, owner); err != nil {
		return err
	}
	if err := s.configure(); err != nil {
		return err
	}
	if err := s.run(ctx); err != nil {
		return err
	}

	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("connect over tcp after start: %w", err)
	}
	return conn.Close(ctx)
}

// findBinDir picks the directory of initdb and pg_ctl.
func findBinDir() (string, error) {
	if dir := os.Getenv("PGTEST_BINDIR"); dir != "" {
		if !hasServerBinaries(dir) {
			return "", fmt.Errorf("PGTEST_BINDIR=%s has no initdb and pg_ctl", dir)
		}
		return dir, nil
	}

	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	best, bestVersion := "", -1
	for _, dir := range dirs {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		if err == nil && v > bestVersion && hasServerBinaries(dir) {
			best, bestVersion = dir, v
		}
	}
	if best != "" {
		return best, nil
	}

	if path, err := exec.LookPath("initdb"); err == nil {
		// Resolve links such as /usr/local/bin/initdb so that pg_ctl
		// and postgres come from the same installation.
		if real, err := filepath.EvalSymlinks(path); err == nil {
			path = real
		}
		if dir := filepath.Dir(path); hasServerBinaries(dir) {
			return dir, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries (initdb, pg_ctl) " +
		"under /usr/lib/postgresql/*/bin or in PATH; " +
		"run scripts/install-deps.sh or set PGTEST_BINDIR")
}

func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// chooseOwner returns the OS user the server runs as when this process is
// root, and nil otherwise (the server then runs as the current user).
func (s *Server) chooseOwner() (*user.User, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	owner, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a postgres OS user "+
			"(initdb refuses root); run scripts/install-deps.sh: %w", err)
	}
	runuser, err := exec.LookPath("runuser")
	if err != nil {
		return nil, fmt.Errorf("running as root needs runuser: %w", err)
	}
	s.runAs = []string{runuser, "-u", owner.Username, "--"}
	return owner, nil
}

// makeDir creates the temp dir, owned by the server's OS user.
func (s *Server) makeDir(owner *user.User) error {
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return fmt.Errorf("make temp dir: %w", err)
	}
	s.dir = dir

	socket := filepath.Join(dir, ".s.PGSQL.65535")
	if len(socket) > maxSocketPath {
		os.RemoveAll(dir)
		return fmt.Errorf("temp dir %s is too long for a unix socket path; "+
			"set TMPDIR to a shorter directory", dir)
	}
	if owner == nil {
		return nil
	}
	uid, _ := strconv.Atoi(owner.Uid)
	gid, _ := strconv.Atoi(owner.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("give temp dir to %s: %w", owner.Username, err)
	}
	return nil
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }

// command builds a command for a server binary, run as the server's OS
// user from the temp dir (the test's working directory may be closed to
// that user).
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := append(append([]string{}, s.runAs...), filepath.Join(s.binDir, name))
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// pg_ctl's child server must not hold our pipes; if it ever does,
	// do not hang on them.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// output runs cmd and returns an error with its trimmed output on failure.
func output(cmd *exec.Cmd, step string) error {
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", step, err, strings.TrimSpace(buf.String()))
	}
	return nil
}

// initdb creates the data directory with SCRAM authentication for every
// connection. The password reaches initdb through a file that is removed
// right after.
func (s *Server) initdb(ctx context.Context, owner *user.User) error {
	pwfile := filepath.Join(s.dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o600); err != nil {
		return fmt.Errorf("write password file: %w", err)
	}
	defer os.Remove(pwfile)
	if owner != nil {
		uid, _ := strconv.Atoi(owner.Uid)
		gid, _ := strconv.Atoi(owner.Gid)
		if err := os.Chown(pwfile, uid, gid); err != nil {
			return fmt.Errorf("give password file to %s: %w", owner.Username, err)
		}
	}

	cmd := s.command(ctx, "initdb",
		"-D", s.dataDir(),
		"-U", Superuser,
		"--pwfile="+pwfile,
		"--auth=scram-sha-256",
		"--encoding=UTF8",
		"--locale=C",
		"--no-sync",
	)
	if err := output(cmd, "initdb"); err != nil {
		return err
	}

	version, err := os.ReadFile(filepath.Join(s.dataDir(), "PG_VERSION"))
	if err != nil {
		return fmt.Errorf("read PG_VERSION: %w", err)
	}
	s.version = strings.TrimSpace(string(version))
	return nil
}

// configure appends the test settings to postgresql.conf.
func (s *Server) configure() error {
	conf := filepath.Join(s.dataDir(), "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open postgresql.conf: %w", err)
	}
	lines := append([]string{"", "# pgtest"}, settings...)
	lines = append(lines, "unix_socket_directories = '"+
		strings.ReplaceAll(s.dir, "'", "''")+"'")
	_, err = f.WriteString(strings.Join(lines, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write postgresql.conf: %w", err)
	}
	return nil
}

// run starts the server on a free port, trying another port when the
// chosen one was taken in the meantime.
func (s *Server) run(ctx context.Context) error {
	var err error
	for range portTries {
		var port int
		port, err = freePort()
		if err != nil {
			return err
		}
		logStart := s.logSize()
		cmd := s.command(ctx, "pg_ctl",
			"-D", s.dataDir(),
			"-l", s.LogPath(),
			"-o", "-p "+strconv.Itoa(port),
			"-w", "-t", strconv.Itoa(int(startTimeout/time.Second)),
			"start",
		)
		err = output(cmd, "pg_ctl start")
		if err == nil {
			s.port = port
			return nil
		}
		tail, _ := readFrom(s.LogPath(), logStart)
		if !strings.Contains(tail, "could not bind") {
			return fmt.Errorf("%w; server log: %s", err, strings.TrimSpace(tail))
		}
	}
	return err
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the server binds; run retries then.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// stopCommand is what the reaper runs to stop the server.
func (s *Server) stopCommand() []string {
	argv := append(append([]string{}, s.runAs...), filepath.Join(s.binDir, "pg_ctl"))
	return append(argv, "-D", s.dataDir(), "-m", "immediate", "-w", "-t", "30", "stop")
}
