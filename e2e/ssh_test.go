package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	gliderssh "github.com/gliderlabs/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshHost is a real SSH server on 127.0.0.1 that runs every exec request
// with bash -c in a home directory of its own, and remembers each exec
// payload byte for byte.
type sshHost struct {
	addr    string
	port    int
	home    string
	hostPub ssh.PublicKey
	conns   atomic.Int32 // TCP connections accepted

	// mu guards the fields below.
	mu    sync.Mutex
	execs []string // exec payloads
	users []string // the user of each exec
}

func startSSHHost(t *testing.T, hostKeyFile string, client ssh.PublicKey) *sshHost {
	t.Helper()
	h := &sshHost{home: t.TempDir()}
	srv := &gliderssh.Server{
		Handler: h.session,
		PublicKeyHandler: func(_ gliderssh.Context, k gliderssh.PublicKey) bool {
			return gliderssh.KeysEqual(k, client)
		},
		ConnCallback: func(_ gliderssh.Context, c net.Conn) net.Conn {
			h.conns.Add(1)
			return c
		},
	}
	must(t, srv.SetOption(gliderssh.HostKeyFile(hostKeyFile)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	h.addr = ln.Addr().String()
	h.port = ln.Addr().(*net.TCPAddr).Port
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return h
}

func (h *sshHost) session(s gliderssh.Session) {
	command := s.RawCommand()
	h.mu.Lock()
	h.execs = append(h.execs, command)
	h.users = append(h.users, s.User())
	h.mu.Unlock()
	if command == "" {
		_ = s.Exit(255)
		return
	}
	cmd := exec.Command("bash", "-c", command)
	cmd.Dir = h.home
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + h.home, "LANG=C.UTF-8"}
	cmd.Stdout = s
	cmd.Stderr = s.Stderr()
	code := 0
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			_, _ = fmt.Fprintln(s.Stderr(), "test server: cannot run bash")
			code = 255
		} else {
			code = ee.ExitCode()
		}
	}
	_ = s.Exit(code)
}

// seen returns the exec payloads so far.
func (h *sshHost) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.execs...)
}

// sshKeys are the files of one SSH world: the server's host key, the
// guard's client key, a known_hosts that vouches for the host key and one
// that names another key for the same address.
type sshKeys struct {
	hostKeyFile, clientKeyFile string
	clientPub                  ssh.PublicKey
	hostPEM, clientPEM         []byte
	hostSigner                 ssh.Signer
}

// newEd25519 returns a fresh ed25519 key as OpenSSH PEM and its signer.
func newEd25519(t *testing.T) ([]byte, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	must(t, err)
	signer, err := ssh.NewSignerFromKey(priv)
	must(t, err)
	return pem.EncodeToMemory(block), signer
}

func newSSHKeys(t *testing.T) sshKeys {
	t.Helper()
	dir := t.TempDir()
	var k sshKeys
	var client ssh.Signer
	k.hostPEM, k.hostSigner = newEd25519(t)
	k.clientPEM, client = newEd25519(t)
	k.clientPub = client.PublicKey()
	k.hostKeyFile = filepath.Join(dir, "host_ed25519")
	k.clientKeyFile = filepath.Join(dir, "guard_ed25519")
	must(t, os.WriteFile(k.hostKeyFile, k.hostPEM, 0o600))
	must(t, os.WriteFile(k.clientKeyFile, k.clientPEM, 0o600))
	return k
}

// writeKnownHosts writes a known_hosts file naming key for addr.
func writeKnownHosts(t *testing.T, addr string, key ssh.PublicKey) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
	must(t, os.WriteFile(p, []byte(line), 0o644))
	return p
}

// sshTarget is the configuration line of target build-1.
func sshTarget(h *sshHost, k sshKeys, knownHosts, workdir string) string {
	return fmt.Sprintf("  - {name: build-1, kind: ssh, host: 127.0.0.1, port: %d, user: deploy, "+
		"key_file: %q, known_hosts: %q, workdir: %q, labels: {env: prod}}\n",
		h.port, k.clientKeyFile, knownHosts, workdir)
}

// secretLines are the base64 lines of a PEM private key: any of them in
// a result or a log is key material leaking.
func secretLines(pemText []byte) []string {
	var out []string
	for _, l := range strings.Split(string(pemText), "\n") {
		if len(l) >= 16 && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

func TestSSHTarget(t *testing.T) {
	keys := newSSHKeys(t)
	host := startSSHHost(t, keys.hostKeyFile, keys.clientPub)
	workdir := t.TempDir()
	readme := "Build host " + alnum(8) + "\nreleases live here\n"
	must(t, os.WriteFile(filepath.Join(workdir, "README.md"), []byte(readme), 0o644))
	known := writeKnownHosts(t, host.addr, keys.hostSigner.PublicKey())

	f := newFixture(t, sshTarget(host, keys, known, workdir))
	ctx := testContext(t)
	c := f.stdioClient(ctx)

	var results strings.Builder
	run := func(t *testing.T, args map[string]any) map[string]any {
		t.Helper()
		_, res := callTool(ctx, t, c, "run_shell", args)
		raw, _ := json.Marshal(res)
		results.Write(raw)
		return res
	}
	// quiet checks that a call sent nothing to the SSH server.
	quiet := func(t *testing.T, before int) {
		t.Helper()
		if got := host.seen(); len(got) != before {
			t.Fatalf("the SSH server received %q", got[before:])
		}
	}
	wire := func(command string) string {
		return "cd -- '" + workdir + "' || exit 1\n" + command
	}

	t.Run("allowed command runs remotely", func(t *testing.T) {
		res := run(t, map[string]any{"target": "build-1", "command": "cat README.md"})
		sc, _ := res["structuredContent"].(map[string]any)
		if res["isError"] == true || sc["exit_code"] != float64(0) || sc["stdout"] != readme {
			t.Fatalf("result: %v", res)
		}
		seen := host.seen()
		if len(seen) != 1 || seen[0] != wire("cat README.md") {
			t.Fatalf("the server received %q, want exactly %q", seen, wire("cat README.md"))
		}
		host.mu.Lock()
		user := host.users[0]
		host.mu.Unlock()
		if user != "deploy" {
			t.Fatalf("logged in as %q", user)
		}
	})

	t.Run("exit status and stderr come back", func(t *testing.T) {
		cases := []struct {
			command, stdout, stderr string
			exit                    float64
		}{
			{"cat README.md nosuch.txt", readme, "nosuch.txt: No such file or directory", 1},
			{"ls nosuch-dir", "", "No such file or directory", 2},
			{"grep -c nomatch README.md", "0\n", "", 1},
		}
		for _, tc := range cases {
			t.Run(tc.command, func(t *testing.T) {
				before := len(host.seen())
				res := run(t, map[string]any{"target": "build-1", "command": tc.command})
				sc, _ := res["structuredContent"].(map[string]any)
				stderr, _ := sc["stderr"].(string)
				if sc["exit_code"] != tc.exit || sc["stdout"] != tc.stdout ||
					!strings.Contains(stderr, tc.stderr) || (tc.stderr == "" && stderr != "") {
					t.Fatalf("result: %v", res)
				}
				if seen := host.seen(); len(seen) != before+1 || seen[before] != wire(tc.command) {
					t.Fatalf("the server received %q", seen[before:])
				}
			})
		}
	})

	t.Run("denied commands never reach the server", func(t *testing.T) {
		for _, command := range []string{
			"sudo id", "sh -c 'id'", "bash -c id", "id; sudo -n true",
			"eval id", "cat ~/.ssh/id_ed25519", "ls $HOME", "sleep 100 &",
		} {
			t.Run(command, func(t *testing.T) {
				before := len(host.seen())
				res := run(t, map[string]any{"target": "build-1", "command": command})
				if o := guardOutcome(res); o != "denied" {
					t.Fatalf("outcome %q: %v", o, res)
				}
				quiet(t, before)
			})
		}
	})

	t.Run("a write waits for approval", func(t *testing.T) {
		before := len(host.seen())
		res := run(t, map[string]any{"target": "build-1", "command": "touch x"})
		if o := guardOutcome(res); !strings.HasPrefix(o, "approval_") {
			t.Fatalf("outcome %q: %v", o, res)
		}
		quiet(t, before)
		if _, err := os.Stat(filepath.Join(workdir, "x")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("x exists: %v", err)
		}
	})

	t.Run("invalid calls", func(t *testing.T) {
		cases := []struct {
			name string
			args map[string]any
		}{
			{"unknown target", map[string]any{"target": "build-9", "command": "id"}},
			{"target in other case", map[string]any{"target": "BUILD-1", "command": "id"}},
			{"host argument", map[string]any{"target": "build-1", "command": "id", "host": "127.0.0.1"}},
			{"port argument", map[string]any{"target": "build-1", "command": "id", "port": 2222}},
			{"ssh options", map[string]any{"target": "build-1", "command": "id",
				"options": []any{"-oProxyCommand=touch /tmp/pwned"}}},
			{"NUL in command", map[string]any{"target": "build-1", "command": "id\x00; sudo id"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := len(host.seen())
				res := run(t, tc.args)
				if o := guardOutcome(res); o != "invalid" {
					t.Fatalf("outcome %q: %v", o, res)
				}
				quiet(t, before)
			})
		}
	})

	c.Close()

	t.Run("host key mismatch", func(t *testing.T) {
		_, other := newEd25519(t)
		wrong := writeKnownHosts(t, host.addr, other.PublicKey())
		f2 := newFixture(t, sshTarget(host, keys, wrong, workdir))
		c2 := f2.stdioClient(ctx)
		before, conns := len(host.seen()), host.conns.Load()
		_, res := callTool(ctx, t, c2, "run_shell", map[string]any{"target": "build-1", "command": "cat README.md"})
		c2.Close()
		raw, _ := json.Marshal(res)
		results.Write(raw)
		if o := guardOutcome(res); o != "error" {
			t.Fatalf("outcome %q: %v", o, res)
		}
		quiet(t, before)
		if host.conns.Load() == conns {
			t.Fatal("the guard did not even connect, so the host key was never checked")
		}
		for _, k := range []ssh.PublicKey{keys.hostSigner.PublicKey(), other.PublicKey()} {
			for _, s := range []string{string(ssh.MarshalAuthorizedKey(k))[12:60], ssh.FingerprintSHA256(k)} {
				if strings.Contains(string(raw), s) {
					t.Errorf("the result carries key material %q: %s", s, raw)
				}
			}
		}
		if !strings.Contains(f2.stderr.String(), "host key mismatch") {
			t.Errorf("the operator's log does not say why:\n%s", f2.stderr)
		}
		checkNoKey(t, keys, f2.stderr.String()+f2.recorderText())
		if strings.Contains(f2.stderr.String(), "PRIVATE KEY") {
			t.Error("the log shows a private key")
		}
	})

	t.Run("private keys stay private", func(t *testing.T) {
		checkNoKey(t, keys, results.String()+f.stderr.String()+f.recorderText())
		// The recorder keeps its own signing key beside the database, so
		// only results and the log are searched for any key at all.
		if strings.Contains(results.String()+f.stderr.String(), "PRIVATE KEY") {
			t.Error("a result or the log shows a private key")
		}
	})
}

// checkNoKey fails when text holds any line of either private key.
func checkNoKey(t *testing.T, k sshKeys, text string) {
	t.Helper()
	for _, pemText := range [][]byte{k.clientPEM, k.hostPEM} {
		for _, l := range secretLines(pemText) {
			if strings.Contains(text, l) {
				t.Fatalf("a line of a private key appears in a result, the log or the recorder's files")
			}
		}
	}
}
