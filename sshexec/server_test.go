package sshexec

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	gliderssh "github.com/gliderlabs/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// serverConfig shapes a test server's behaviour.
type serverConfig struct {
	// noExitStatus makes sessions end without exit-status or exit-signal.
	noExitStatus bool
	// ignoreSignals makes the server disregard "signal" requests, as many
	// real servers do; the process then dies only when the session closes.
	ignoreSignals bool
	// forwardTo, when set, turns the server into a bastion that opens
	// direct-tcpip channels to this one host:port.
	forwardTo string
}

// sessionEnd says how a process started by the test server ended.
type sessionEnd struct {
	// how is "exit", "signal request" or "session closed".
	how   string
	state *os.ProcessState
}

// testServer is a real SSH server on 127.0.0.1 that runs each exec request
// with bash -c in its own temp dir. It has an ed25519 and an ECDSA host key.
type testServer struct {
	host    string
	port    int
	dir     string
	hostKey ssh.Signer // ed25519
	ecKey   ssh.Signer // ECDSA P-256
	cfg     serverConfig
	srv     *gliderssh.Server

	conns      atomic.Int32 // TCP connections accepted
	keepalives chan struct{}
	started    chan string     // command of each process started
	ended      chan sessionEnd // one per process

	// mu guards the fields below.
	mu       sync.Mutex
	live     []net.Conn
	commands []string // exec payloads, byte for byte
	forwards []string // direct-tcpip destinations asked for
}

func startServer(t testing.TB, allowed ssh.PublicKey, cfg serverConfig) *testServer {
	t.Helper()
	s := &testServer{
		dir:        t.TempDir(),
		hostKey:    newSigner(t),
		ecKey:      newECDSASigner(t),
		cfg:        cfg,
		keepalives: make(chan struct{}, 64),
		started:    make(chan string, 64),
		ended:      make(chan sessionEnd, 64),
	}
	s.srv = &gliderssh.Server{
		PublicKeyHandler: func(_ gliderssh.Context, k gliderssh.PublicKey) bool {
			return gliderssh.KeysEqual(k, allowed)
		},
		ConnCallback: s.track,
		ChannelHandlers: map[string]gliderssh.ChannelHandler{
			"session":      s.session,
			"direct-tcpip": s.directTCPIP,
		},
		LocalPortForwardingCallback: s.allowForward,
		RequestHandlers: map[string]gliderssh.RequestHandler{
			"keepalive@openssh.com": s.keepalive,
		},
	}
	s.srv.AddHostKey(s.ecKey)
	s.srv.AddHostKey(s.hostKey)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	tcp := ln.Addr().(*net.TCPAddr)
	s.host, s.port = tcp.IP.String(), tcp.Port
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

func (s *testServer) addr() string {
	return net.JoinHostPort(s.host, strconv.Itoa(s.port))
}

func (s *testServer) track(_ gliderssh.Context, c net.Conn) net.Conn {
	s.conns.Add(1)
	s.mu.Lock()
	s.live = append(s.live, c)
	s.mu.Unlock()
	return c
}

// dropAll closes every connection the server accepted, as a restart or a
// NAT timeout would, and keeps listening.
func (s *testServer) dropAll() {
	s.mu.Lock()
	live := s.live
	s.live = nil
	s.mu.Unlock()
	for _, c := range live {
		_ = c.Close()
	}
}

func (s *testServer) lastCommand() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.commands) == 0 {
		return ""
	}
	return s.commands[len(s.commands)-1]
}

func (s *testServer) commandCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.commands)
}

func (s *testServer) forwarded() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.forwards...)
}

func (s *testServer) keepalive(gliderssh.Context, *gliderssh.Server,
	*ssh.Request) (bool, []byte) {
	notify(s.keepalives, struct{}{})
	return true, nil
}

func (s *testServer) allowForward(_ gliderssh.Context, host string, port uint32) bool {
	dest := net.JoinHostPort(host, strconv.Itoa(int(port)))
	s.mu.Lock()
	s.forwards = append(s.forwards, dest)
	s.mu.Unlock()
	return s.cfg.forwardTo != "" && dest == s.cfg.forwardTo
}

func (s *testServer) directTCPIP(srv *gliderssh.Server, conn *ssh.ServerConn,
	nc ssh.NewChannel, ctx gliderssh.Context) {
	gliderssh.DirectTCPIPHandler(srv, conn, nc, ctx)
}

// session serves one session channel: one exec request, signals, and a
// kill of the whole process group when the client closes the channel.
func (s *testServer) session(_ *gliderssh.Server, _ *ssh.ServerConn,
	nc ssh.NewChannel, _ gliderssh.Context) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()

	var cmd *exec.Cmd
	var reason atomic.Value // why the server killed it, if it did
	exited := make(chan struct{})
	for req := range reqs {
		switch req.Type {
		case "exec":
			var p struct{ Command string }
			if ssh.Unmarshal(req.Payload, &p) != nil || cmd != nil {
				_ = req.Reply(false, nil)
				continue
			}
			s.mu.Lock()
			s.commands = append(s.commands, p.Command)
			s.mu.Unlock()
			if s.cfg.noExitStatus {
				_ = req.Reply(true, nil)
				_ = ch.Close()
				continue
			}
			cmd = s.start(p.Command, ch)
			if cmd == nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			notify(s.started, p.Command)
			go func() {
				s.finish(cmd, ch, &reason)
				close(exited)
			}()

		case "signal":
			var p struct{ Signal string }
			_ = ssh.Unmarshal(req.Payload, &p)
			if req.WantReply {
				_ = req.Reply(true, nil)
			}
			if sig, ok := signalByName[p.Signal]; ok && cmd != nil &&
				!s.cfg.ignoreSignals {
				reason.CompareAndSwap(nil, "signal request")
				_ = syscall.Kill(-cmd.Process.Pid, sig)
			}

		default:
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}

	// The channel is closed: a process still running loses its session.
	if cmd == nil {
		return
	}
	select {
	case <-exited:
	default:
		reason.CompareAndSwap(nil, "session closed")
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}

func (s *testServer) start(command string, ch ssh.Channel) *exec.Cmd {
	cmd := exec.Command("bash", "-c", command)
	cmd.Dir = s.dir
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + s.dir}
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil
	}
	return cmd
}

// finish waits for the process, reports how it ended over the channel the
// way sshd does, and tells the test.
func (s *testServer) finish(cmd *exec.Cmd, ch ssh.Channel, reason *atomic.Value) {
	_ = cmd.Wait()
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		msg := struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{Signal: signalName(ws.Signal())}
		_, _ = ch.SendRequest("exit-signal", false, ssh.Marshal(&msg))
	} else {
		msg := struct{ Status uint32 }{uint32(ws.ExitStatus())}
		_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(&msg))
	}
	_ = ch.Close()

	how, _ := reason.Load().(string)
	if how == "" {
		how = "exit"
	}
	notify(s.ended, sessionEnd{how: how, state: cmd.ProcessState})
}

// notify sends v unless nobody has room for it; benchmarks never read.
func notify[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}

var signalByName = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "KILL": syscall.SIGKILL,
	"TERM": syscall.SIGTERM, "USR1": syscall.SIGUSR1, "PIPE": syscall.SIGPIPE,
}

func signalName(sig syscall.Signal) string {
	for name, s := range signalByName {
		if s == sig {
			return name
		}
	}
	return "SIG" + strconv.Itoa(int(sig))
}

// Key helpers.

func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("signer: %v", err)
	}
	return s
}

func newECDSASigner(t testing.TB) ssh.Signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("signer: %v", err)
	}
	return s
}

// clientKey is a client key pair with its private half as OpenSSH PEM.
type clientKey struct {
	priv ed25519.PrivateKey
	pub  ssh.PublicKey
	pem  []byte
}

func newClientKey(t testing.TB) clientKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatalf("public key: %v", err)
	}
	return clientKey{priv: priv, pub: pub, pem: pem.EncodeToMemory(block)}
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	return path
}

// knownHosts writes a known_hosts file with one line per key for addr.
func knownHosts(t testing.TB, addr string, keys ...ssh.PublicKey) string {
	t.Helper()
	var data []byte
	for _, k := range keys {
		data = append(data, knownhosts.Line([]string{addr}, k)+"\n"...)
	}
	return writeFile(t, "known_hosts", data)
}
