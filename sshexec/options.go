package sshexec

import (
	"encoding/base64"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by New when a field is left at its zero value.
const (
	DefaultPort        = 22
	DefaultDialTimeout = 10 * time.Second
	DefaultKeepAlive   = 30 * time.Second
	DefaultPoolSize    = 2
	DefaultTimeout     = 60 * time.Second
	DefaultMaxOutput   = 1 << 20
)

// Options describe one SSH target. The integrator maps the YAML keys of a
// target of kind ssh onto these fields; FieldError names the YAML key.
type Options struct {
	// Host is the target's address (name or IP, IPv6 without brackets).
	Host string
	// Port is the target's SSH port; 0 means DefaultPort.
	Port int
	// User is the remote login name.
	User string

	// KeyFile is the path of an unencrypted private key file.
	KeyFile string
	// KeyEnv names an environment variable that holds the private key
	// itself (PEM or OpenSSH format), not a path.
	KeyEnv string
	// AgentSocket is the path of an ssh-agent socket that holds the key.
	// Exactly one of KeyFile, KeyEnv and AgentSocket is set.
	AgentSocket string

	// KnownHosts is the path of an OpenSSH known_hosts file.
	KnownHosts string
	// HostKeyFingerprint pins the host key, as "SHA256:<base64>" from
	// ssh-keygen -lf. Exactly one of KnownHosts and HostKeyFingerprint is
	// set; there is no way to skip host key checking.
	HostKeyFingerprint string

	// Workdir, when set, is the remote directory commands run in. See
	// Client.Wire for the exact bytes this adds. Empty means the login
	// directory.
	Workdir string

	// Jump, when set, is a bastion the target is reached through. Only its
	// Host, Port, User, key and host key fields are used; the others must
	// be left empty. Nested bastions are not supported.
	Jump *Options

	// DialTimeout bounds a whole connect, bastion included; 0 means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// KeepAlive is how often idle pooled connections are probed; 0 means
	// DefaultKeepAlive and a negative value turns probing off.
	KeepAlive time.Duration
	// PoolSize is how many idle connections are kept for reuse; 0 means
	// DefaultPoolSize and a negative value keeps none (dial for each run).
	PoolSize int

	// Getenv reads KeyEnv; nil means os.Getenv. A Jump without its own
	// Getenv uses this one.
	Getenv func(string) string
}

// FieldError reports an option that is missing or wrong. Field is the YAML
// key of the option, prefixed with "jump." for the bastion.
type FieldError struct {
	Field  string
	Reason string
	// Err is the underlying cause, if any. It never holds key material.
	Err error
}

// Error returns the field and the reason in one line.
func (e *FieldError) Error() string {
	msg := "sshexec: " + e.Field + ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying cause.
func (e *FieldError) Unwrap() error { return e.Err }

// Validate reports the first missing or wrong option as a *FieldError.
func (o Options) Validate() error {
	return o.validate("", true)
}

func (o Options) validate(prefix string, isTarget bool) error {
	bad := func(field, reason string) error {
		return &FieldError{Field: prefix + field, Reason: reason}
	}

	if err := checkHost(o.Host); err != "" {
		return bad("host", err)
	}
	if o.Port < 0 || o.Port > 65535 {
		return bad("port", "must be between 1 and 65535 (0 means 22)")
	}
	if o.User == "" {
		return bad("user", "required")
	}
	if hasControl(o.User) || strings.ContainsAny(o.User, " @") {
		return bad("user", "must not contain spaces, '@' or control characters")
	}

	if err := o.validateKey(bad); err != nil {
		return err
	}
	if err := o.validateHostKey(bad); err != nil {
		return err
	}

	if o.DialTimeout < 0 {
		return bad("dial_timeout", "must not be negative")
	}
	if !isTarget {
		return o.validateJumpOnly(bad)
	}

	if strings.ContainsRune(o.Workdir, 0) {
		return bad("workdir", "must not contain a NUL byte")
	}
	if o.Jump != nil {
		return o.Jump.validate(prefix+"jump.", false)
	}
	return nil
}

func (o Options) validateKey(bad func(string, string) error) error {
	n := count(o.KeyFile, o.KeyEnv, o.AgentSocket)
	if n != 1 {
		return bad("key_file",
			"set exactly one of key_file, key_env and agent_socket")
	}
	return nil
}

func (o Options) validateHostKey(bad func(string, string) error) error {
	n := count(o.KnownHosts, o.HostKeyFingerprint)
	if n != 1 {
		return bad("known_hosts", "set exactly one of known_hosts and "+
			"host_key_fingerprint; host key checking cannot be turned off")
	}
	if o.HostKeyFingerprint != "" {
		if err := checkFingerprint(o.HostKeyFingerprint); err != "" {
			return bad("host_key_fingerprint", err)
		}
	}
	return nil
}

// validateJumpOnly rejects fields that mean nothing for a bastion, so a
// misplaced key in the config shows up instead of being ignored.
func (o Options) validateJumpOnly(bad func(string, string) error) error {
	switch {
	case o.Workdir != "":
		return bad("workdir", "not used for a bastion")
	case o.Jump != nil:
		return bad("jump", "nested bastions are not supported")
	case o.PoolSize != 0:
		return bad("pool_size", "not used for a bastion")
	case o.KeepAlive != 0:
		return bad("keep_alive", "not used for a bastion")
	case o.DialTimeout != 0:
		return bad("dial_timeout", "set it on the target; it covers the bastion")
	}
	return nil
}

// withDefaults returns o with zero fields replaced by their defaults.
func (o Options) withDefaults() Options {
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.PoolSize == 0 {
		o.PoolSize = DefaultPoolSize
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Jump != nil {
		j := *o.Jump
		if j.Port == 0 {
			j.Port = DefaultPort
		}
		if j.Getenv == nil {
			j.Getenv = o.Getenv
		}
		o.Jump = &j
	}
	return o
}

func checkHost(h string) string {
	switch {
	case h == "":
		return "required"
	case strings.HasPrefix(h, "-"):
		return "must not start with '-'"
	case strings.ContainsAny(h, "[]"):
		return "write an IPv6 address without brackets"
	case strings.ContainsAny(h, " /@"), hasControl(h):
		return "must be a host name or IP address"
	}
	return ""
}

func checkFingerprint(fp string) string {
	const prefix = "SHA256:"
	b64, ok := strings.CutPrefix(fp, prefix)
	if !ok {
		return `must start with "SHA256:" (ssh-keygen -lf output)`
	}
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "="))
	if err != nil || len(raw) != 32 {
		return "not a SHA256 fingerprint: want 43 base64 characters"
	}
	return ""
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x20 || r == 0x7f
	})
}

func count(vals ...string) int {
	n := 0
	for _, v := range vals {
		if v != "" {
			n++
		}
	}
	return n
}

// addr returns host:port for dialing and for host key lookup.
func (o Options) addr() string {
	return net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
}
