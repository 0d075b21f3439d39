package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/shellfacts"
)

// Shell limits on what the guard will analyse.
const (
	maxShellCommands = 64
	maxShellDepth    = 8
	maxCommandBytes  = 64 << 10
)

// Remote runs a command on an SSH target. The string passed is exactly
// what the policy judged.
type Remote interface {
	Run(ctx context.Context, target, command string, l Limits) (*ShellOutput, error)
}

// ShellOutput is the outcome of a command.
type ShellOutput struct {
	// ExitCode is nil when no exit status came back.
	ExitCode  *int
	Stdout    string
	Stderr    string
	Truncated bool
	TimedOut  bool
}

// Shell implements run_shell on shell targets (locally with bash) and ssh
// targets (through Remote).
type Shell struct {
	Remote Remote
}

// Spec implements Tool.
func (Shell) Spec() Spec {
	return Spec{
		Name:  RunShell,
		Title: "Run a shell command",
		Description: "Runs one bash command line on a shell or ssh target, in the target's " +
			"working directory with a fixed minimal environment, and returns its exit code, " +
			"stdout and stderr. Write commands out literally: variables, substitutions, " +
			"nested shells and background jobs are refused. Read-only programs run directly; " +
			"others wait for a person's approval." + notice,
		Input: json.RawMessage(`{"type": "object", "properties": {
			"target": {"type": "string", "description": "Name of a shell or ssh target (see list_targets)."},
			"command": {"type": "string", "minLength": 1, "maxLength": 65536, "description": "The bash command line to run."},
			"timeout_seconds": {"type": "integer", "minimum": 1, "maximum": 3600, "description": "Stop the command after this many seconds (the policy's limit applies when lower)."}
		}, "required": ["target", "command"], "additionalProperties": false}`),
		Output: outputSchema(`"exit_code": {"type": ["integer", "null"]}, "stdout": {"type": "string"},
			"stderr": {"type": "string"}, "truncated": {"type": "boolean"}, "timed_out": {"type": "boolean"}`),
		Kinds: []string{config.KindShell, config.KindSSH},
	}
}

// Facts implements Tool.
func (Shell) Facts(_ context.Context, c *Call) (string, any, error) {
	cmd := c.String("command")
	if len(cmd) > maxCommandBytes {
		return "", nil, Invalid("command is longer than %d bytes", maxCommandBytes)
	}
	if err := checkText("command", cmd); err != nil {
		return "", nil, err
	}
	opts := shellfacts.Options{
		Path:        c.Target.Path,
		Workdir:     c.Target.Workdir,
		Home:        c.Target.Workdir, // LocalEnv sets HOME to the workdir
		MaxCommands: maxShellCommands,
		MaxDepth:    maxShellDepth,
	}
	if c.Target.Kind == config.KindSSH {
		// The remote PATH, HOME and files are unknown here: paths are
		// judged as written, ~ stays unresolved.
		opts.Path, opts.Home, opts.Remote = nil, "", true
	}
	facts, err := shellfacts.Analyze(cmd, opts)
	if err != nil {
		var inv *shellfacts.InvalidError
		var lim *shellfacts.LimitError
		var perr *shellfacts.ParseError
		switch {
		case errors.As(err, &inv):
			return "", nil, Invalid("command: %v", err)
		case errors.As(err, &lim):
			return "", nil, Denied("command is too complex for the guard to judge: %v", err)
		case errors.As(err, &perr):
			return "", nil, Denied("command does not parse as bash: %v", err)
		default:
			return "", nil, Denied("command could not be analysed: %v", err)
		}
	}
	return "shell", facts, nil
}

// Display implements Tool.
func (Shell) Display(c *Call) string { return c.String("command") }

// Run implements Tool.
func (s Shell) Run(ctx context.Context, c *Call, _ policy.Decision, l Limits) (*Result, error) {
	if t := c.Int("timeout_seconds", 0); t > 0 && t < l.TimeoutSeconds {
		l.TimeoutSeconds = t
	}
	cmd := c.String("command")
	var out *ShellOutput
	var err error
	if c.Target.Kind == config.KindSSH {
		if s.Remote == nil {
			return nil, errors.New("no ssh runner configured")
		}
		out, err = s.Remote.Run(ctx, c.Target.Name, cmd, l)
	} else {
		out, err = runLocal(ctx, c.Target, cmd, l)
	}
	if err != nil {
		return nil, err
	}
	return shellResult(out), nil
}

func shellResult(out *ShellOutput) *Result {
	var exit any
	if out.ExitCode != nil {
		exit = *out.ExitCode
	}
	return &Result{Structured: map[string]any{
		"exit_code": exit, "stdout": out.Stdout, "stderr": out.Stderr,
		"truncated": out.Truncated, "timed_out": out.TimedOut,
	}}
}

// LocalEnv is the environment a local command gets: the target's PATH,
// a neutral locale, and the target's own variables. Nothing of the
// server's environment is passed on.
func LocalEnv(t *config.Target) []string {
	env := []string{
		"PATH=" + strings.Join(t.Path, ":"),
		"LANG=C.UTF-8",
		"HOME=" + t.Workdir,
		"PWD=" + t.Workdir,
	}
	for k, v := range t.Env {
		env = append(env, k+"="+v)
	}
	return env
}

// runLocal runs command with bash in its own process group, so that a
// timeout kills everything it started.
func runLocal(ctx context.Context, t *config.Target, command string, l Limits) (*ShellOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(l.TimeoutSeconds)*time.Second)
	defer cancel()

	cmd := exec.Command("/bin/bash", "--noprofile", "--norc", "-c", command)
	cmd.Dir = t.Workdir
	cmd.Env = LocalEnv(t)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout := &capped{max: l.MaxOutputBytes}
	stderr := &capped{max: l.MaxOutputBytes, shared: stdout}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bash: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var err error
	timedOut := false
	select {
	case err = <-done:
	case <-ctx.Done():
		timedOut = true
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = <-done
	}
	// Whatever the command left behind in its group goes too.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)

	out := &ShellOutput{
		Stdout:    stdout.String(),
		Stderr:    stderr.String(),
		Truncated: stdout.truncated() || stderr.truncated(),
		TimedOut:  timedOut,
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		code := 0
		out.ExitCode = &code
	case errors.As(err, &exitErr):
		code := exitErr.ExitCode()
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		out.ExitCode = &code
	case errors.Is(err, exec.ErrWaitDelay):
		code := 0
		if cmd.ProcessState != nil {
			code = cmd.ProcessState.ExitCode()
		}
		out.ExitCode = &code
	default:
		return nil, fmt.Errorf("wait for bash: %w", err)
	}
	return out, nil
}

// capped keeps the first max bytes written (shared between stdout and
// stderr through shared) and counts the rest.
type capped struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	max     int
	dropped int
	shared  *capped
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - c.buf.Len()
	if c.shared != nil {
		c.shared.mu.Lock()
		room -= c.shared.buf.Len()
		c.shared.mu.Unlock()
	}
	if room < 0 {
		room = 0
	}
	if len(p) > room {
		c.buf.Write(p[:room])
		c.dropped += len(p) - room
	} else {
		c.buf.Write(p)
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.ToValidUTF8(c.buf.String(), "\uFFFD")
}

func (c *capped) truncated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped > 0
}
