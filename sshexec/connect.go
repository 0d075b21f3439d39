package sshexec

import (
	"context"
	"fmt"
	"net"

	"golang.org/x/crypto/ssh"
)

// dial opens a logged-in connection to the target, through the bastion if
// one is configured. DialTimeout bounds the whole of it.
func (c *Client) dial(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()

	if c.jump == nil {
		client, err := c.target.connect(ctx, nil)
		if err != nil {
			return nil, err
		}
		c.log.Debug("connected", keyJump, false)
		return &conn{client: client}, nil
	}

	bastion, err := c.jump.connect(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("bastion: %w", err)
	}
	client, err := c.target.connect(ctx, bastion)
	if err != nil {
		_ = bastion.Close()
		return nil, err
	}
	c.log.Debug("connected", keyJump, true)
	return &conn{client: client, bastion: bastion}, nil
}

// connect opens a TCP stream to e (directly, or as a direct-tcpip channel
// of via) and logs in over it, checking e's own host key.
func (e *endpoint) connect(ctx context.Context, via *ssh.Client) (*ssh.Client, error) {
	var (
		nc  net.Conn
		err error
	)
	if via == nil {
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", e.addr)
	} else {
		nc, err = via.DialContext(ctx, "tcp", e.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", e.addr, err)
	}

	client, err := e.handshake(ctx, nc)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", e.addr, err)
	}
	return client, nil
}

// handshake runs the SSH handshake on nc. The library call takes no
// context, so when ctx ends first the stream is closed under it.
func (e *endpoint) handshake(ctx context.Context, nc net.Conn) (*ssh.Client, error) {
	methods, cleanup, err := e.auth.methods(ctx)
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	defer cleanup()

	cfg := &ssh.ClientConfig{
		User:              e.user,
		Auth:              methods,
		HostKeyCallback:   e.hosts.callback,
		HostKeyAlgorithms: e.hosts.algorithms,
	}

	type result struct {
		conn  ssh.Conn
		chans <-chan ssh.NewChannel
		reqs  <-chan *ssh.Request
		err   error
	}
	done := make(chan result, 1)
	go func() {
		sc, chans, reqs, err := ssh.NewClientConn(nc, e.addr, cfg)
		done <- result{sc, chans, reqs, err}
	}()

	select {
	case r := <-done:
		if r.err != nil {
			_ = nc.Close()
			return nil, r.err
		}
		return ssh.NewClient(r.conn, r.chans, r.reqs), nil
	case <-ctx.Done():
		_ = nc.Close()
		if r := <-done; r.err == nil {
			_ = r.conn.Close()
		}
		return nil, fmt.Errorf("ssh handshake: %w", ctx.Err())
	}
}
