package sshexec

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// waitBound is how long a test waits for an event from the server before
// failing. It guards against hangs; it is not a speed requirement.
const waitBound = 10 * time.Second

// fixture is a target server and a client key it accepts.
type fixture struct {
	srv        *testServer
	key        clientKey
	keyFile    string
	knownHosts string
	logs       *syncBuffer
}

func newFixture(t testing.TB, cfg serverConfig) *fixture {
	t.Helper()
	key := newClientKey(t)
	srv := startServer(t, key.pub, cfg)
	return &fixture{
		srv:        srv,
		key:        key,
		keyFile:    writeFile(t, "id_ed25519", key.pem),
		knownHosts: knownHosts(t, srv.addr(), srv.hostKey.PublicKey()),
		logs:       &syncBuffer{},
	}
}

func (f *fixture) options() Options {
	return Options{
		Host:       f.srv.host,
		Port:       f.srv.port,
		User:       "deploy",
		KeyFile:    f.keyFile,
		KnownHosts: f.knownHosts,
	}
}

func (f *fixture) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(f.logs,
		&slog.HandlerOptions{Level: slog.LevelDebug}))
}

// client builds a Client from o that logs into f.logs and is closed at the
// end of the test.
func (f *fixture) client(t testing.TB, o Options) *Client {
	t.Helper()
	c, err := New(o, f.logger())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func mustRun(t testing.TB, c *Client, command string, l Limits) *Result {
	t.Helper()
	res, err := c.Run(context.Background(), command, l)
	if err != nil {
		t.Fatalf("Run(%q): %v", command, err)
	}
	return res
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func exitString(p *int) string {
	if p == nil {
		return "<nil>"
	}
	return strconv.Itoa(*p)
}

func intPtr(i int) *int { return &i }

func TestRunOutcomes(t *testing.T) {
	f := newFixture(t, serverConfig{})
	c := f.client(t, f.options())

	tests := []struct {
		name       string
		command    string
		wantCode   *int
		wantSignal string
		wantOut    string
		wantErr    string // substring of stderr
	}{
		{name: "success", command: "echo hello",
			wantCode: intPtr(0), wantOut: "hello\n"},
		{name: "stderr kept apart and exit 3",
			command:  "echo out; echo err >&2; exit 3",
			wantCode: intPtr(3), wantOut: "out\n", wantErr: "err\n"},
		{name: "command not found is 127", command: "no-such-command-zz",
			wantCode: intPtr(127), wantErr: "not found"},
		{name: "runs in the login directory", command: "pwd",
			wantCode: intPtr(0), wantOut: f.srv.dir + "\n"},
		{name: "killed by a signal", command: "kill -TERM $$",
			wantSignal: "TERM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustRun(t, c, tt.command, Limits{})
			if exitString(res.ExitCode) != exitString(tt.wantCode) {
				t.Errorf("ExitCode = %s, want %s",
					exitString(res.ExitCode), exitString(tt.wantCode))
			}
			if res.Signal != tt.wantSignal {
				t.Errorf("Signal = %q, want %q", res.Signal, tt.wantSignal)
			}
			if res.Stdout != tt.wantOut {
				t.Errorf("Stdout = %q, want %q", res.Stdout, tt.wantOut)
			}
			if !strings.Contains(res.Stderr, tt.wantErr) ||
				(tt.wantErr == "" && res.Stderr != "") {
				t.Errorf("Stderr = %q, want it to hold %q",
					res.Stderr, tt.wantErr)
			}
			if res.NoExitStatus || res.TimedOut || res.Truncated {
				t.Errorf("unexpected flags: %+v", res)
			}
		})
	}
}

func TestNoExitStatus(t *testing.T) {
	f := newFixture(t, serverConfig{noExitStatus: true})
	c := f.client(t, f.options())

	res := mustRun(t, c, "echo hi", Limits{})
	if !res.NoExitStatus || res.ExitCode != nil || res.Signal != "" {
		t.Fatalf("got %+v, want NoExitStatus and no code or signal", res)
	}
}

func TestWire(t *testing.T) {
	tests := []struct {
		name    string
		workdir string
		command string
		want    string
	}{
		{name: "no workdir sends the command as is",
			command: "ls -l 'a b'", want: "ls -l 'a b'"},
		{name: "workdir line first",
			workdir: "/srv/app", command: "make test",
			want: "cd -- '/srv/app' || exit 1\nmake test"},
		{name: "single quote in workdir",
			workdir: "/srv/it's", command: "pwd",
			want: "cd -- '/srv/it'\\''s' || exit 1\npwd"},
		{name: "command cannot reach into the prefix",
			workdir: "/srv", command: "'; rm -rf / #",
			want: "cd -- '/srv' || exit 1\n'; rm -rf / #"},
	}
	f := newFixture(t, serverConfig{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := f.options()
			o.Workdir = tt.workdir
			c := f.client(t, o)
			if got := c.Wire(tt.command); got != tt.want {
				t.Errorf("Wire = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWireIsSentByteForByte(t *testing.T) {
	f := newFixture(t, serverConfig{})
	quoted := filepath.Join(f.srv.dir, "it's $HOME")
	if err := os.Mkdir(quoted, 0o755); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		workdir string
		command string
		wantOut string
	}{
		{name: "quotes and expansions untouched",
			command: `echo 'a  b' "$HOME" | tr a-z A-Z`,
			wantOut: "A  B " + strings.ToUpper(f.srv.dir) + "\n"},
		{name: "non-ASCII, tab and newline",
			command: "printf '%s\\n' \"ünï\tcode\"\necho two",
			wantOut: "ünï\tcode\ntwo\n"},
		{name: "workdir with quote and dollar", workdir: quoted,
			command: "pwd", wantOut: quoted + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := f.options()
			o.Workdir = tt.workdir
			c := f.client(t, o)

			res := mustRun(t, c, tt.command, Limits{})
			if got, want := f.srv.lastCommand(), c.Wire(tt.command); got != want {
				t.Errorf("server received %q, want %q", got, want)
			}
			if res.Stdout != tt.wantOut {
				t.Errorf("Stdout = %q, want %q (stderr %q)",
					res.Stdout, tt.wantOut, res.Stderr)
			}
		})
	}
}

// With `cd dir && cmd`, a failed cd would still run everything after a ';'
// in the home directory. The wire form must run nothing.
func TestWorkdirMissingRunsNothing(t *testing.T) {
	f := newFixture(t, serverConfig{})
	o := f.options()
	o.Workdir = filepath.Join(f.srv.dir, "missing")
	c := f.client(t, o)

	res := mustRun(t, c, "true; touch marker", Limits{})
	if exitString(res.ExitCode) != "1" {
		t.Errorf("ExitCode = %s, want 1", exitString(res.ExitCode))
	}
	if !strings.Contains(res.Stderr, "cd") {
		t.Errorf("Stderr = %q, want the cd failure", res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(f.srv.dir, "marker")); err == nil {
		t.Fatal("the command ran although cd failed")
	}
}

func TestHostKeyChecks(t *testing.T) {
	f := newFixture(t, serverConfig{})
	other := newSigner(t).PublicKey()
	otherAddr := net.JoinHostPort(f.srv.host, strconv.Itoa(f.srv.port+1))
	edFP := ssh.FingerprintSHA256(f.srv.hostKey.PublicKey())
	ecFP := ssh.FingerprintSHA256(f.srv.ecKey.PublicKey())

	tests := []struct {
		name    string
		set     func(*Options)
		wantErr error
	}{
		{name: "known_hosts lists the ed25519 key"},
		{name: "known_hosts lists only the ECDSA key",
			set: func(o *Options) {
				o.KnownHosts = knownHosts(t, f.srv.addr(), f.srv.ecKey.PublicKey())
			}},
		{name: "known_hosts has another key for the host",
			set: func(o *Options) {
				o.KnownHosts = knownHosts(t, f.srv.addr(), other)
			},
			wantErr: ErrHostKeyMismatch},
		{name: "known_hosts lacks the host",
			set: func(o *Options) {
				o.KnownHosts = knownHosts(t, otherAddr, f.srv.hostKey.PublicKey())
			},
			wantErr: ErrUnknownHost},
		{name: "pinned ed25519 fingerprint",
			set: func(o *Options) {
				o.KnownHosts, o.HostKeyFingerprint = "", edFP
			}},
		{name: "pinned fingerprint of another key",
			set: func(o *Options) {
				o.KnownHosts = ""
				o.HostKeyFingerprint = ssh.FingerprintSHA256(other)
			},
			wantErr: ErrHostKeyMismatch},
		// The server offers ed25519 first; pin that key when it has one.
		{name: "pinned ECDSA key of a server with ed25519",
			set: func(o *Options) {
				o.KnownHosts, o.HostKeyFingerprint = "", ecFP
			},
			wantErr: ErrHostKeyMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := f.options()
			if tt.set != nil {
				tt.set(&o)
			}
			c := f.client(t, o)
			before := f.srv.commandCount()
			res, err := c.Run(context.Background(), "echo ok", Limits{})

			if tt.wantErr == nil {
				if err != nil || res.Stdout != "ok\n" {
					t.Fatalf("Run = %+v, %v; want ok", res, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run error = %v, want %v", err, tt.wantErr)
			}
			if errors.Is(tt.wantErr, ErrHostKeyMismatch) &&
				!strings.Contains(err.Error(), "host key mismatch") {
				t.Errorf("error %q does not say host key mismatch", err)
			}
			for _, k := range []ssh.PublicKey{f.srv.hostKey.PublicKey(),
				f.srv.ecKey.PublicKey(), other} {
				blob := base64.StdEncoding.EncodeToString(k.Marshal())
				if strings.Contains(err.Error(), blob[:24]) {
					t.Errorf("error quotes key material: %q", err)
				}
			}
			if f.srv.commandCount() != before {
				t.Error("server ran the command despite the host key failure")
			}
		})
	}
}

func TestWrongClientKeyRefused(t *testing.T) {
	f := newFixture(t, serverConfig{})
	o := f.options()
	o.KeyFile = writeFile(t, "other", newClientKey(t).pem)
	c := f.client(t, o)

	_, err := c.Run(context.Background(), "echo ok", Limits{})
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("Run error = %v, want an authentication failure", err)
	}
	if errors.Is(err, ErrHostKeyMismatch) || errors.Is(err, ErrUnknownHost) {
		t.Errorf("auth failure reported as host key failure: %v", err)
	}
}

func TestKeyFromEnv(t *testing.T) {
	f := newFixture(t, serverConfig{})
	tests := []struct {
		name  string
		value string
	}{
		{name: "PEM with newlines", value: string(f.key.pem)},
		{name: "PEM with escaped newlines",
			value: strings.ReplaceAll(string(f.key.pem), "\n", `\n`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := f.options()
			o.KeyFile, o.KeyEnv = "", "BUILD1_KEY"
			o.Getenv = func(name string) string {
				if name == "BUILD1_KEY" {
					return tt.value
				}
				return ""
			}
			c := f.client(t, o)
			if res := mustRun(t, c, "echo ok", Limits{}); res.Stdout != "ok\n" {
				t.Fatalf("Stdout = %q", res.Stdout)
			}
		})
	}
}

func TestKeyFromAgent(t *testing.T) {
	f := newFixture(t, serverConfig{})
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: f.key.priv}); err != nil {
		t.Fatal(err)
	}

	// Unix socket paths are short; t.TempDir can be too long.
	dir, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = agent.ServeAgent(keyring, conn)
			}()
		}
	}()

	o := f.options()
	o.KeyFile, o.AgentSocket = "", sock
	c := f.client(t, o)
	if res := mustRun(t, c, "echo ok", Limits{}); res.Stdout != "ok\n" {
		t.Fatalf("Stdout = %q", res.Stdout)
	}
}

func TestKeyMaterialNeverInErrorsOrLogs(t *testing.T) {
	f := newFixture(t, serverConfig{})
	const marker = "SECRET-MARKER-5f1c"

	// A key whose body was damaged, so the parser fails on it.
	damaged := newClientKey(t).pem
	lines := strings.Split(string(damaged), "\n")
	lines = append(lines[:2], lines[3:]...)
	damaged = []byte(strings.Join(lines, "\n"))
	if _, err := ssh.ParsePrivateKey(damaged); err == nil {
		t.Fatal("the damaged key still parses")
	}

	unauthorized := newClientKey(t)
	encBlock, err := ssh.MarshalPrivateKeyWithPassphrase(
		unauthorized.priv, "", []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	encrypted := pem.EncodeToMemory(encBlock)

	secrets := [][]byte{damaged, unauthorized.pem, encrypted, f.key.pem}
	tests := []struct {
		name    string
		set     func(*Options)
		atNew   bool
		wantMsg string
	}{
		{name: "damaged key file", atNew: true, wantMsg: "not a usable private key",
			set: func(o *Options) { o.KeyFile = writeFile(t, "k", damaged) }},
		{name: "garbage in key env", atNew: true, wantMsg: "key_env",
			set: func(o *Options) {
				o.KeyFile, o.KeyEnv = "", "K"
				o.Getenv = func(string) string { return "not a key " + marker }
			}},
		{name: "passphrase-protected key", atNew: true, wantMsg: "passphrase",
			set: func(o *Options) { o.KeyFile = writeFile(t, "k", encrypted) }},
		{name: "valid key the server refuses", wantMsg: "unable to authenticate",
			set: func(o *Options) {
				o.KeyFile = writeFile(t, "k", unauthorized.pem)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := f.options()
			tt.set(&o)
			c, err := New(o, f.logger())
			if err == nil {
				t.Cleanup(func() { _ = c.Close() })
				_, err = c.Run(context.Background(), "echo ok", Limits{})
			} else if !tt.atNew {
				t.Fatalf("New: %v", err)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error = %v, want one about %q", err, tt.wantMsg)
			}

			for _, text := range []string{err.Error(), f.logs.String()} {
				if strings.Contains(text, marker) {
					t.Errorf("key env content leaked: %q", text)
				}
				for _, s := range secrets {
					for _, line := range strings.Split(string(s), "\n") {
						if len(line) >= 16 && !strings.HasPrefix(line, "-----") &&
							strings.Contains(text, line) {
							t.Errorf("key line leaked: %q", line)
						}
					}
				}
			}
		})
	}
}

func TestTimeoutEndsRemoteCommand(t *testing.T) {
	tests := []struct {
		name    string
		cfg     serverConfig
		wantHow string
	}{
		{name: "server honours the kill signal",
			wantHow: "signal request"},
		{name: "server ignores signals, closed session ends it",
			cfg: serverConfig{ignoreSignals: true}, wantHow: "session closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.cfg)
			c := f.client(t, f.options())

			start := time.Now()
			res := mustRun(t, c, "echo started; sleep 30; touch marker",
				Limits{Timeout: time.Second})
			if took := time.Since(start); took > waitBound {
				t.Errorf("Run took %v; it waited for the command", took)
			}
			if !res.TimedOut || res.ExitCode != nil {
				t.Errorf("got %+v, want TimedOut and no exit code", res)
			}
			if res.Stdout != "started\n" {
				t.Errorf("Stdout = %q, want output from before the deadline",
					res.Stdout)
			}

			end := waitEnd(t, f.srv)
			ws := end.state.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Errorf("remote process ended with %v, want SIGKILL", end.state)
			}
			if end.how != tt.wantHow {
				t.Errorf("killed by %q, want %q", end.how, tt.wantHow)
			}
			// The process group is dead, so the marker can never appear.
			if _, err := os.Stat(filepath.Join(f.srv.dir, "marker")); err == nil {
				t.Error("command went on after the timeout")
			}
			if n := c.idleCount(); n != 0 {
				t.Errorf("%d idle connections after a timeout, want 0", n)
			}
		})
	}
}

func waitEnd(t *testing.T, s *testServer) sessionEnd {
	t.Helper()
	select {
	case e := <-s.ended:
		return e
	case <-time.After(waitBound):
		t.Fatal("the server never saw the process end")
		return sessionEnd{}
	}
}

func TestCanceledContextEndsCommand(t *testing.T) {
	f := newFixture(t, serverConfig{})
	c := f.client(t, f.options())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-f.srv.started:
			cancel()
		case <-time.After(waitBound):
		}
	}()

	res, err := c.Run(ctx, "sleep 30", Limits{})
	if !errors.Is(err, context.Canceled) || res != nil {
		t.Fatalf("Run = %+v, %v; want context.Canceled", res, err)
	}
	if end := waitEnd(t, f.srv); end.how == "exit" {
		t.Errorf("remote command was not killed: %+v", end)
	}
}

func TestOutputCap(t *testing.T) {
	f := newFixture(t, serverConfig{})
	c := f.client(t, f.options())
	// 5 MB is more than the SSH channel window, so the command only
	// finishes if the client keeps reading past the cap.
	const big = "head -c 5000000 /dev/zero | tr '\\0' a"

	tests := []struct {
		name          string
		command       string
		max           int
		wantOut       string
		wantErr       string
		wantTruncated bool
	}{
		{name: "under the cap", command: "echo hi; echo ho >&2", max: 10,
			wantOut: "hi\n", wantErr: "ho\n"},
		{name: "exactly the cap", command: "printf 12345", max: 5,
			wantOut: "12345"},
		{name: "stdout over the cap, stream drained",
			command: big + "; echo done >&2", max: 1000,
			wantOut: strings.Repeat("a", 1000), wantErr: "done\n",
			wantTruncated: true},
		{name: "stderr over the cap", command: big + " >&2; echo ok", max: 3,
			wantOut: "ok\n", wantErr: "aaa", wantTruncated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustRun(t, c, tt.command, Limits{MaxOutput: tt.max})
			if res.Stdout != tt.wantOut {
				t.Errorf("Stdout has %d bytes %.20q, want %d bytes %.20q",
					len(res.Stdout), res.Stdout, len(tt.wantOut), tt.wantOut)
			}
			if res.Stderr != tt.wantErr {
				t.Errorf("Stderr = %.20q, want %.20q", res.Stderr, tt.wantErr)
			}
			if res.Truncated != tt.wantTruncated {
				t.Errorf("Truncated = %v, want %v", res.Truncated, tt.wantTruncated)
			}
			if exitString(res.ExitCode) != "0" {
				t.Errorf("ExitCode = %s, want 0", exitString(res.ExitCode))
			}
		})
	}
}

func TestConnectionReuse(t *testing.T) {
	f := newFixture(t, serverConfig{})
	c := f.client(t, f.options())

	mustRun(t, c, "true", Limits{})
	mustRun(t, c, "true", Limits{})
	if n := f.srv.conns.Load(); n != 1 {
		t.Fatalf("server saw %d connections for two runs, want 1", n)
	}
}

func TestNoPoolDialsEachTime(t *testing.T) {
	f := newFixture(t, serverConfig{})
	o := f.options()
	o.PoolSize = -1
	c := f.client(t, o)

	mustRun(t, c, "true", Limits{})
	mustRun(t, c, "true", Limits{})
	if n := f.srv.conns.Load(); n != 2 {
		t.Fatalf("server saw %d connections, want 2", n)
	}
}

func TestReconnectAfterServerDrops(t *testing.T) {
	f := newFixture(t, serverConfig{})
	c := f.client(t, f.options())

	mustRun(t, c, "true", Limits{})
	f.srv.dropAll()
	res := mustRun(t, c, "echo again", Limits{})
	if res.Stdout != "again\n" {
		t.Fatalf("Stdout = %q", res.Stdout)
	}
	if n := f.srv.conns.Load(); n != 2 {
		t.Errorf("server saw %d connections, want 2", n)
	}
	if !strings.Contains(f.logs.String(), "pooled connection is dead") {
		t.Errorf("the dead pooled connection was not the one replaced; logs:\n%s",
			f.logs.String())
	}
}

func TestKeepAlive(t *testing.T) {
	t.Run("probe keeps live and drops dead connections", func(t *testing.T) {
		f := newFixture(t, serverConfig{})
		o := f.options()
		o.KeepAlive = -1 // probe by hand only
		c := f.client(t, o)

		mustRun(t, c, "true", Limits{})
		c.pingIdle()
		if len(f.srv.keepalives) != 1 || c.idleCount() != 1 {
			t.Fatalf("after a probe: %d keepalives seen, %d idle; want 1, 1",
				len(f.srv.keepalives), c.idleCount())
		}

		f.srv.dropAll()
		c.pingIdle()
		if n := c.idleCount(); n != 0 {
			t.Fatalf("%d idle connections after the server dropped them", n)
		}
	})

	t.Run("ticker sends keepalives", func(t *testing.T) {
		f := newFixture(t, serverConfig{})
		o := f.options()
		o.KeepAlive = 10 * time.Millisecond
		c := f.client(t, o)

		mustRun(t, c, "true", Limits{})
		select {
		case <-f.srv.keepalives:
		case <-time.After(waitBound):
			t.Fatal("no keepalive reached the server")
		}
	})
}

func TestJumpHost(t *testing.T) {
	target := newFixture(t, serverConfig{})
	hopKey := newClientKey(t)
	bastion := startServer(t, hopKey.pub,
		serverConfig{forwardTo: target.srv.addr()})

	jump := func() *Options {
		return &Options{
			Host:       bastion.host,
			Port:       bastion.port,
			User:       "hop",
			KeyFile:    writeFile(t, "hop", hopKey.pem),
			KnownHosts: knownHosts(t, bastion.addr(), bastion.hostKey.PublicKey()),
		}
	}
	other := newSigner(t).PublicKey()

	tests := []struct {
		name    string
		set     func(o *Options)
		wantErr error
		wantMsg string
	}{
		{name: "through the bastion"},
		{name: "target host key checked through the bastion",
			set: func(o *Options) {
				o.KnownHosts = knownHosts(t, target.srv.addr(), other)
			},
			wantErr: ErrHostKeyMismatch},
		{name: "bastion host key checked",
			set: func(o *Options) {
				o.Jump.KnownHosts = knownHosts(t, bastion.addr(), other)
			},
			wantErr: ErrHostKeyMismatch, wantMsg: "bastion"},
		{name: "bastion refuses the destination",
			set:     func(o *Options) { o.Port = target.srv.port + 1 },
			wantMsg: "prohibited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := target.srv.conns.Load()
			o := target.options()
			o.Jump = jump()
			if tt.set != nil {
				tt.set(&o)
			}
			c := target.client(t, o)
			res, err := c.Run(context.Background(), "echo via", Limits{})

			if tt.wantErr == nil && tt.wantMsg == "" {
				if err != nil || res.Stdout != "via\n" {
					t.Fatalf("Run = %+v, %v", res, err)
				}
				if got := target.srv.conns.Load() - before; got != 1 {
					t.Errorf("target saw %d new connections, want 1", got)
				}
				fw := bastion.forwarded()
				if len(fw) == 0 || fw[len(fw)-1] != target.srv.addr() {
					t.Errorf("bastion forwards = %v, want %s", fw, target.srv.addr())
				}
				return
			}
			if err == nil {
				t.Fatal("Run succeeded, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error = %v, want it to mention %q", err, tt.wantMsg)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	base := func() Options {
		return Options{Host: "10.1.2.3", User: "deploy",
			KeyFile: "/k", KnownHosts: "/kh"}
	}
	jump := func() *Options {
		return &Options{Host: "bastion", User: "hop",
			KeyEnv: "HOP_KEY", HostKeyFingerprint: "SHA256:" +
				strings.Repeat("A", 43)}
	}
	tests := []struct {
		name      string
		set       func(*Options)
		wantField string // "" means valid
	}{
		{name: "minimal target", set: func(*Options) {}},
		{name: "with a bastion", set: func(o *Options) { o.Jump = jump() }},
		{name: "IPv6 host", set: func(o *Options) { o.Host = "fd00::1" }},
		{name: "no host", set: func(o *Options) { o.Host = "" },
			wantField: "host"},
		{name: "bracketed IPv6", set: func(o *Options) { o.Host = "[::1]" },
			wantField: "host"},
		{name: "option-like host", set: func(o *Options) { o.Host = "-oProxy" },
			wantField: "host"},
		{name: "user@host in host", set: func(o *Options) { o.Host = "u@h" },
			wantField: "host"},
		{name: "port out of range", set: func(o *Options) { o.Port = 70000 },
			wantField: "port"},
		{name: "no user", set: func(o *Options) { o.User = "" },
			wantField: "user"},
		{name: "no key", set: func(o *Options) { o.KeyFile = "" },
			wantField: "key_file"},
		{name: "two keys", set: func(o *Options) { o.KeyEnv = "K" },
			wantField: "key_file"},
		{name: "no host key check", set: func(o *Options) { o.KnownHosts = "" },
			wantField: "known_hosts"},
		{name: "both host key checks",
			set:       func(o *Options) { o.HostKeyFingerprint = "SHA256:x" },
			wantField: "known_hosts"},
		{name: "MD5 fingerprint",
			set: func(o *Options) {
				o.KnownHosts, o.HostKeyFingerprint = "", "MD5:aa:bb"
			},
			wantField: "host_key_fingerprint"},
		{name: "short fingerprint",
			set: func(o *Options) {
				o.KnownHosts, o.HostKeyFingerprint = "", "SHA256:abc"
			},
			wantField: "host_key_fingerprint"},
		{name: "NUL in workdir", set: func(o *Options) { o.Workdir = "/a\x00b" },
			wantField: "workdir"},
		{name: "negative dial timeout",
			set:       func(o *Options) { o.DialTimeout = -time.Second },
			wantField: "dial_timeout"},
		{name: "bastion without user",
			set:       func(o *Options) { o.Jump = jump(); o.Jump.User = "" },
			wantField: "jump.user"},
		{name: "bastion without host key check",
			set: func(o *Options) {
				o.Jump = jump()
				o.Jump.HostKeyFingerprint = ""
			},
			wantField: "jump.known_hosts"},
		{name: "workdir on the bastion",
			set:       func(o *Options) { o.Jump = jump(); o.Jump.Workdir = "/x" },
			wantField: "jump.workdir"},
		{name: "nested bastion",
			set:       func(o *Options) { o.Jump = jump(); o.Jump.Jump = jump() },
			wantField: "jump.jump"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base()
			tt.set(&o)
			err := o.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Fatalf("Validate = %v, want a FieldError on %s", err, tt.wantField)
			}
		})
	}
}

func TestNewNamesTheBadField(t *testing.T) {
	f := newFixture(t, serverConfig{})
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name      string
		set       func(*Options)
		wantField string
	}{
		{name: "key file missing", set: func(o *Options) { o.KeyFile = missing },
			wantField: "key_file"},
		{name: "key env unset",
			set: func(o *Options) {
				o.KeyFile, o.KeyEnv = "", "UNSET_KEY"
				o.Getenv = func(string) string { return "" }
			},
			wantField: "key_env"},
		{name: "known_hosts missing",
			set:       func(o *Options) { o.KnownHosts = missing },
			wantField: "known_hosts"},
		{name: "bastion key missing",
			set: func(o *Options) {
				o.Jump = &Options{Host: "127.0.0.1", User: "hop",
					KeyFile: missing, KnownHosts: f.knownHosts}
			},
			wantField: "jump.key_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := f.options()
			tt.set(&o)
			c, err := New(o, nil)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				if c != nil {
					_ = c.Close()
				}
				t.Fatalf("New = %v, want a FieldError on %s", err, tt.wantField)
			}
		})
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	f := newFixture(t, serverConfig{})
	c := f.client(t, f.options())
	tests := []struct {
		name    string
		command string
		limits  Limits
	}{
		{name: "empty command", command: "  "},
		{name: "NUL byte", command: "ls\x00; rm -rf /"},
		{name: "negative timeout", command: "true",
			limits: Limits{Timeout: -1}},
		{name: "negative output cap", command: "true",
			limits: Limits{MaxOutput: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Run(context.Background(), tt.command, tt.limits); err == nil {
				t.Fatal("Run accepted it")
			}
		})
	}
	if n := f.srv.conns.Load(); n != 0 {
		t.Errorf("bad input reached the server (%d connections)", n)
	}
}

func TestClosedClient(t *testing.T) {
	f := newFixture(t, serverConfig{})
	c := f.client(t, f.options())
	mustRun(t, c, "true", Limits{})

	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := c.idleCount(); n != 0 {
		t.Errorf("%d idle connections after Close", n)
	}
	if _, err := c.Run(context.Background(), "true", Limits{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close = %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestConcurrentRuns(t *testing.T) {
	f := newFixture(t, serverConfig{})
	c := f.client(t, f.options())

	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			want := strconv.Itoa(i)
			res, err := c.Run(context.Background(), "echo "+want, Limits{})
			if err == nil && res.Stdout != want+"\n" {
				err = errors.New("got " + res.Stdout + " want " + want)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := c.idleCount(); got > DefaultPoolSize {
		t.Errorf("%d idle connections kept, want at most %d", got, DefaultPoolSize)
	}
}

func BenchmarkRunReused(b *testing.B) {
	f := newFixture(b, serverConfig{})
	c := f.client(b, f.options())
	for b.Loop() {
		mustRun(b, c, "true", Limits{})
	}
}

func BenchmarkRunFresh(b *testing.B) {
	f := newFixture(b, serverConfig{})
	o := f.options()
	o.PoolSize = -1
	c := f.client(b, o)
	for b.Loop() {
		mustRun(b, c, "true", Limits{})
	}
}
