package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/sshexec"
	"github.com/mcp-guard/mcp-guard/tools"
)

// sshRemote runs run_shell commands on ssh targets. A caller names only a
// configured target; nothing it sends becomes an SSH option.
type sshRemote struct {
	clients map[string]*sshexec.Client
}

func sshOptions(t config.Target, getenv func(string) string) sshexec.Options {
	o := sshexec.Options{
		Host: t.Host, Port: t.Port, User: t.User,
		KeyFile: t.KeyFile, KeyEnv: t.KeyEnv, AgentSocket: t.AgentSocket,
		KnownHosts: t.KnownHosts, HostKeyFingerprint: t.HostKeyFingerprint,
		Workdir: t.Workdir, Getenv: getenv,
		PoolSize: t.PoolSize, KeepAlive: t.KeepAlive.Duration, DialTimeout: t.DialTimeout.Duration,
	}
	if j := t.Jump; j != nil {
		o.Jump = &sshexec.Options{
			Host: j.Host, Port: j.Port, User: j.User,
			KeyFile: j.KeyFile, KeyEnv: j.KeyEnv, AgentSocket: j.AgentSocket,
			KnownHosts: j.KnownHosts, HostKeyFingerprint: j.HostKeyFingerprint,
			Getenv: getenv,
		}
	}
	return o
}

func (a *App) buildRemote() (tools.Remote, error) {
	r := &sshRemote{clients: map[string]*sshexec.Client{}}
	for _, t := range a.Config.Targets {
		if t.Kind != config.KindSSH {
			continue
		}
		o := sshOptions(t, a.getenv)
		if err := o.Validate(); err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Name, err)
		}
		c, err := sshexec.New(o, a.Logger.With("component", "ssh", "target", t.Name))
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Name, err)
		}
		r.clients[t.Name] = c
	}
	if len(r.clients) == 0 {
		return nil, nil
	}
	a.closers = append(a.closers, func() {
		for _, c := range r.clients {
			c.Close()
		}
	})
	return r, nil
}

// Run implements tools.Remote.
func (r *sshRemote) Run(ctx context.Context, target, command string, l tools.Limits) (*tools.ShellOutput, error) {
	c, ok := r.clients[target]
	if !ok {
		return nil, errors.New("no ssh client for target " + target)
	}
	res, err := c.Run(ctx, command, sshexec.Limits{
		Timeout:   time.Duration(l.TimeoutSeconds) * time.Second,
		MaxOutput: l.MaxOutputBytes,
	})
	if err != nil {
		return nil, err
	}
	out := &tools.ShellOutput{
		ExitCode:  res.ExitCode,
		Stdout:    strings.ToValidUTF8(res.Stdout, "\uFFFD"),
		Stderr:    strings.ToValidUTF8(res.Stderr, "\uFFFD"),
		Truncated: res.Truncated,
		TimedOut:  res.TimedOut,
	}
	if res.Signal != "" && out.Stderr == "" {
		out.Stderr = "killed by signal " + res.Signal
	}
	return out, nil
}
