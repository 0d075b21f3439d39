package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"

	"github.com/mcp-guard/mcp-guard/config"
)

// secretsFDEnv names the descriptor through which a re-executed serve
// receives the secrets it read from its first environment.
const secretsFDEnv = "MCP_GUARD_SECRETS_FD"

// keptEnvironment is what serve keeps of its environment when it drops
// the rest: nothing here holds a secret.
var keptEnvironment = []string{"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME"}

// secretNames lists the environment variables the configuration reads
// secrets from.
func secretNames(cfg *config.Config) []string {
	var names []string
	add := func(n string) {
		if n != "" {
			names = append(names, n)
		}
	}
	for _, t := range cfg.Targets {
		add(t.DSNEnv)
		add(t.KeyEnv)
		if t.Jump != nil {
			add(t.Jump.KeyEnv)
		}
	}
	if s := cfg.Approvals.Slack; s != nil {
		add(s.BotTokenEnv)
		add(s.SigningSecretEnv)
		add(s.SocketModeAppTokenEnv)
	}
	add(cfg.Identity.TokenEnv)
	add(cfg.Recorder.PostgresDSNEnv)
	return names
}

// dropEnvironment re-executes this process in place with a minimal
// environment, handing the configured secrets over through a pipe. The
// kernel shows a process's starting environment to anyone who may read
// /proc/PID/environ (commands the guard runs as the same user, among
// them); after this, the guard's holds no secret, configured or not. It
// returns only on failure.
func dropEnvironment(cfg *config.Config) error {
	secrets := map[string]string{}
	for _, n := range secretNames(cfg) {
		if v, ok := os.LookupEnv(n); ok {
			secrets[n] = v
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("hand over secrets: %w", err)
	}
	b, _ := json.Marshal(secrets)
	if len(b) > 60<<10 {
		return fmt.Errorf("hand over secrets: %d bytes do not fit a pipe", len(b))
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("hand over secrets: %w", err)
	}
	w.Close()
	fd := r.Fd()
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETFD, 0); errno != 0 {
		return fmt.Errorf("hand over secrets: %w", errno)
	}
	env := []string{secretsFDEnv + "=" + strconv.FormatUint(uint64(fd), 10)}
	for _, n := range keptEnvironment {
		if v, ok := os.LookupEnv(n); ok {
			env = append(env, n+"="+v)
		}
	}
	err = syscall.Exec("/proc/self/exe", os.Args, env)
	return fmt.Errorf("re-execute without the environment: %w", err)
}

// inheritedSecrets reads the secrets a previous image of this process
// handed over, and returns a getenv that answers from them.
func inheritedSecrets(fdText string) (func(string) string, error) {
	fd, err := strconv.Atoi(fdText)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q is not a descriptor", secretsFDEnv, fdText)
	}
	f := os.NewFile(uintptr(fd), "secrets")
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read handed-over secrets: %w", err)
	}
	secrets := map[string]string{}
	if err := json.Unmarshal(b, &secrets); err != nil {
		return nil, fmt.Errorf("read handed-over secrets: %w", err)
	}
	os.Unsetenv(secretsFDEnv)
	return func(name string) string {
		if v, ok := secrets[name]; ok {
			return v
		}
		return os.Getenv(name)
	}, nil
}
