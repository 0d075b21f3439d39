package sshexec

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Limits bound one Run.
type Limits struct {
	// Timeout bounds the command, connecting included; 0 means
	// DefaultTimeout. A deadline on the Run context also applies.
	Timeout time.Duration
	// MaxOutput is the number of bytes kept per stream; 0 means
	// DefaultMaxOutput. Output beyond it is read and thrown away.
	MaxOutput int
}

// Result is what came back from the remote command.
type Result struct {
	// ExitCode is the remote exit status; nil when none was sent (see
	// NoExitStatus and Signal) or the command timed out.
	ExitCode *int
	// NoExitStatus is true when the session ended without an exit status
	// or exit signal.
	NoExitStatus bool
	// Signal names the signal that killed the remote command ("TERM",
	// "KILL"), when the server reported one.
	Signal string
	// Stdout and Stderr hold up to MaxOutput bytes each, as sent; they may
	// end inside a multi-byte character when Truncated.
	Stdout, Stderr string
	// Truncated is true when either stream passed MaxOutput.
	Truncated bool
	// TimedOut is true when the deadline ended the command. The guard then
	// asked the server to kill it and closed the connection.
	TimedOut bool
}

// Wire returns the exact string Run sends as the exec request for command.
// Without a workdir that is command itself. With one it is
//
//	cd -- '<workdir>' || exit 1
//	<command>
//
// with a newline between the two lines. A single quote inside workdir
// closes the quote, adds an escaped quote and reopens:
//
//	/srv/it's  ->  cd -- '/srv/it'\''s' || exit 1
//
// The first line is a complete shell command, so nothing in command can
// change it, and the command runs only if the cd succeeded, whatever
// operators (;, ||, &) it contains. The remote login shell must be a POSIX
// shell for the prefix to work.
func (c *Client) Wire(command string) string {
	if c.opts.Workdir == "" {
		return command
	}
	return "cd -- " + shellQuote(c.opts.Workdir) + " || exit 1\n" + command
}

// shellQuote wraps s in single quotes for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Run sends Wire(command) to the target and waits for it to end or for the
// deadline. On the deadline it sends SIGKILL, closes the session and the
// connection, and returns the output captured so far with TimedOut set; it
// does not wait for the server. Whether the remote process died is up to
// the server. A command is never sent twice: the only retry is a fresh
// dial when a pooled connection cannot open a session.
//
// A Go error means the command could not be run or its outcome is unknown
// (connection lost, context canceled); a non-zero exit is not an error.
func (c *Client) Run(ctx context.Context, command string,
	limits Limits) (*Result, error) {
	if err := checkCommand(command); err != nil {
		return nil, err
	}
	limits, err := limits.withDefaults()
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(ctx, limits.Timeout)
	defer cancel()

	start := time.Now()
	cn, sess, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	res, err := c.exec(ctx, cn, sess, c.Wire(command), limits)
	if err != nil {
		return nil, err
	}

	c.logResult(res, time.Since(start))
	return res, nil
}

func checkCommand(command string) error {
	switch {
	case strings.TrimSpace(command) == "":
		return errors.New("sshexec: empty command")
	case strings.ContainsRune(command, 0):
		// The remote shell would stop reading at the NUL and run less
		// than the policy saw.
		return errors.New("sshexec: command contains a NUL byte")
	}
	return nil
}

func (l Limits) withDefaults() (Limits, error) {
	if l.Timeout < 0 || l.MaxOutput < 0 {
		return l, errors.New("sshexec: limits must not be negative")
	}
	if l.Timeout == 0 {
		l.Timeout = DefaultTimeout
	}
	if l.MaxOutput == 0 {
		l.MaxOutput = DefaultMaxOutput
	}
	return l, nil
}

// session takes a connection and opens a session on it. A pooled
// connection that fails here is dropped and replaced by one fresh dial;
// nothing has been sent to the remote command yet, so this is safe.
func (c *Client) session(ctx context.Context) (*conn, *ssh.Session, error) {
	dial := func() (*conn, error) { return c.dial(ctx) }
	cn, pooled, err := c.get(dial)
	if err != nil {
		return nil, nil, err
	}
	c.log.Debug("using connection", keyReused, pooled)

	sess, err := newSession(ctx, cn)
	if err != nil && pooled {
		c.discard(cn, "pooled connection is dead", err)
		if cn, err = dial(); err != nil {
			return nil, nil, err
		}
		sess, err = newSession(ctx, cn)
	}
	if err != nil {
		c.discard(cn, "cannot open session", err)
		return nil, nil, fmt.Errorf("open ssh session: %w", err)
	}
	return cn, sess, nil
}

// newSession opens a session, giving up (and closing cn) when ctx ends
// first: a wedged connection would otherwise block forever.
func newSession(ctx context.Context, cn *conn) (*ssh.Session, error) {
	type result struct {
		sess *ssh.Session
		err  error
	}
	done := make(chan result, 1)
	go func() {
		s, err := cn.client.NewSession()
		done <- result{s, err}
	}()

	select {
	case r := <-done:
		return r.sess, r.err
	case <-ctx.Done():
		_ = cn.close()
		<-done
		return nil, ctx.Err()
	}
}

// exec starts wire on sess and collects the outcome. It owns cn: the
// connection goes back to the pool only after a clean end.
func (c *Client) exec(ctx context.Context, cn *conn, sess *ssh.Session,
	wire string, limits Limits) (*Result, error) {
	stdout := &capWriter{max: limits.MaxOutput}
	stderr := &capWriter{max: limits.MaxOutput}
	sess.Stdout, sess.Stderr = stdout, stderr

	if err := sess.Start(wire); err != nil {
		c.discard(cn, "exec request failed", err)
		return nil, fmt.Errorf("start remote command: %w", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- sess.Wait() }()

	select {
	case err := <-waited:
		res := &Result{}
		if err := exitOutcome(res, err); err != nil {
			c.discard(cn, "session failed", err)
			return nil, fmt.Errorf("remote command: %w", err)
		}
		_ = sess.Close()
		c.put(cn)
		fillOutput(res, stdout, stderr)
		return res, nil

	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL)
		_ = sess.Close()
		res := &Result{TimedOut: true}
		fillOutput(res, stdout, stderr)
		// The closed connection also ends the Wait goroutine, whatever
		// the server does with the signal.
		c.discard(cn, "command ended by deadline", nil)
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, fmt.Errorf("remote command: %w", ctx.Err())
		}
		return res, nil
	}
}

// exitOutcome records how the remote command ended. It returns the error
// back when the error is about the connection rather than the command.
func exitOutcome(res *Result, err error) error {
	var exitErr *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		code := 0
		res.ExitCode = &code
	case errors.As(err, &exitErr) && exitErr.Signal() != "":
		res.Signal = exitErr.Signal()
	case errors.As(err, &exitErr):
		code := exitErr.ExitStatus()
		res.ExitCode = &code
	case errors.As(err, &missing):
		res.NoExitStatus = true
	default:
		return err
	}
	return nil
}

func fillOutput(res *Result, stdout, stderr *capWriter) {
	var outCut, errCut bool
	res.Stdout, outCut = stdout.freeze()
	res.Stderr, errCut = stderr.freeze()
	res.Truncated = outCut || errCut
}

func (c *Client) logResult(res *Result, took time.Duration) {
	attrs := []any{
		keyTimedOut, res.TimedOut,
		keyTruncated, res.Truncated,
		keyDurationMS, took.Milliseconds(),
	}
	if res.ExitCode != nil {
		attrs = append(attrs, keyExitCode, *res.ExitCode)
	}
	if res.Signal != "" {
		attrs = append(attrs, keySignal, res.Signal)
	}
	c.log.Debug("remote command finished", attrs...)
}

// capWriter keeps the first max bytes written to it and discards the rest,
// always reporting success so the session keeps draining the stream and
// the remote side never blocks on a full window.
type capWriter struct {
	max int

	// mu guards the fields below; Write runs on the session's copy
	// goroutine while freeze may run on Run's.
	mu        sync.Mutex
	buf       []byte
	truncated bool
	frozen    bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.frozen {
		return len(p), nil
	}
	room := w.max - len(w.buf)
	if len(p) > room {
		w.buf = append(w.buf, p[:room]...)
		w.truncated = true
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// freeze stops collecting and returns what was kept.
func (w *capWriter) freeze() (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.frozen = true
	return string(w.buf), w.truncated
}
