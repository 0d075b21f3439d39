// Package sshexec runs one checked command on an SSH target for the guard.
//
// The guard holds the private key and always verifies the host key, either
// against a known_hosts file or a pinned SHA256 fingerprint. Run sends
// exactly the string Wire returns as the exec request; nothing a caller
// passes becomes an SSH option or chooses a host. Connections are pooled,
// kept alive while idle, and may go through one bastion.
package sshexec

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Errors that callers may branch on. They show up wrapped, so test them
// with errors.Is.
var (
	// ErrHostKeyMismatch means the server presented a host key other than
	// the configured one.
	ErrHostKeyMismatch = errors.New("sshexec: host key mismatch")
	// ErrUnknownHost means known_hosts has no entry for the host.
	ErrUnknownHost = errors.New("sshexec: host key unknown")
	// ErrClosed means the Client was closed.
	ErrClosed = errors.New("sshexec: client closed")
)

// Log keys, kept stable for whoever reads the logs.
const (
	keyAddr        = "addr"
	keyJump        = "jump"
	keyError       = "error"
	keyReused      = "reused"
	keyExitCode    = "exit_code"
	keySignal      = "signal"
	keyTimedOut    = "timed_out"
	keyTruncated   = "truncated"
	keyDurationMS  = "duration_ms"
	keyKeyType     = "key_type"
	keyFingerprint = "fingerprint"
	keyPath        = "path"
	keyMode        = "mode"
)

// endpoint is one SSH server to log in to: the target or the bastion.
type endpoint struct {
	addr  string
	user  string
	auth  authSource
	hosts hostKeys
}

func newEndpoint(o Options, prefix string, log *slog.Logger) (*endpoint, error) {
	auth, err := loadAuth(o, prefix, log)
	if err != nil {
		return nil, err
	}
	hosts, err := loadHostKeys(o, prefix, log)
	if err != nil {
		return nil, err
	}
	return &endpoint{addr: o.addr(), user: o.User, auth: auth, hosts: hosts},
		nil
}

// Client runs commands on one SSH target. It is safe for concurrent use;
// each Run has a connection of its own for its duration.
type Client struct {
	opts   Options
	target *endpoint
	jump   *endpoint // nil without a bastion
	log    *slog.Logger

	// mu guards idle and closed.
	mu     sync.Mutex
	idle   []*conn
	closed bool

	stop      chan struct{} // closed by Close
	loopDone  chan struct{} // closed when the keepalive loop returns
	closeOnce sync.Once
}

// New checks o, loads the private key and the host key check, and returns
// a Client. It does not dial; the first Run does. A nil logger discards.
func New(o Options, logger *slog.Logger) (*Client, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o = o.withDefaults()
	logger = logger.With(keyAddr, o.User+"@"+o.addr())

	target, err := newEndpoint(o, "", logger)
	if err != nil {
		return nil, err
	}
	c := &Client{
		opts:     o,
		target:   target,
		log:      logger,
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	if o.Jump != nil {
		c.jump, err = newEndpoint(*o.Jump, "jump.", logger)
		if err != nil {
			return nil, err
		}
	}

	if o.KeepAlive > 0 && o.PoolSize > 0 {
		go c.keepAliveLoop(o.KeepAlive)
	} else {
		close(c.loopDone)
	}
	return c, nil
}

// Close closes idle connections and stops keepalives. Connections in use
// are closed when their Run ends. Close is safe to call more than once.
func (c *Client) Close() error {
	var errs []error
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		idle := c.idle
		c.idle = nil
		c.mu.Unlock()

		close(c.stop)
		for _, cn := range idle {
			if err := cn.close(); err != nil {
				errs = append(errs, err)
			}
		}
	})
	<-c.loopDone
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close connections: %w", err)
	}
	return nil
}

// get returns an idle connection (pooled is true) or dials a new one.
func (c *Client) get(dial func() (*conn, error)) (cn *conn, pooled bool, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, false, ErrClosed
	}
	if n := len(c.idle); n > 0 {
		cn = c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return cn, true, nil
	}
	c.mu.Unlock()

	cn, err = dial()
	return cn, false, err
}

// put returns a healthy connection to the pool, or closes it when the pool
// is full or the Client closed.
func (c *Client) put(cn *conn) {
	c.mu.Lock()
	if !c.closed && len(c.idle) < c.opts.PoolSize {
		c.idle = append(c.idle, cn)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	_ = cn.close()
}

// discard closes a connection that must not be reused.
func (c *Client) discard(cn *conn, why string, err error) {
	if err != nil {
		c.log.Info("dropping connection", "reason", why, keyError, err)
	} else {
		c.log.Debug("dropping connection", "reason", why)
	}
	_ = cn.close()
}

// idleCount reports how many connections wait in the pool.
func (c *Client) idleCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.idle)
}

func (c *Client) keepAliveLoop(every time.Duration) {
	defer close(c.loopDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.pingIdle()
		}
	}
}

// pingIdle sends a keepalive on each idle connection and drops the ones
// that do not answer within the dial timeout.
func (c *Client) pingIdle() {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()

	for _, cn := range idle {
		if err := cn.ping(c.opts.DialTimeout); err != nil {
			c.discard(cn, "keepalive failed", err)
			continue
		}
		c.put(cn)
	}
}

// conn is one logged-in connection to the target, with the bastion
// connection it runs through, if any.
type conn struct {
	client  *ssh.Client
	bastion *ssh.Client
}

func (cn *conn) close() error {
	err := cn.client.Close()
	if cn.bastion != nil {
		_ = cn.bastion.Close()
	}
	return err
}

// ping sends one keepalive request and waits up to timeout for the reply.
// A refusal is a reply too: it proves the server is there.
func (cn *conn) ping(timeout time.Duration) error {
	done := make(chan error, 1)
	go func() {
		_, _, err := cn.client.SendRequest("keepalive@openssh.com", true, nil)
		done <- err
	}()

	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		_ = cn.close()
		<-done
		return errors.New("keepalive: no reply in time")
	}
}
