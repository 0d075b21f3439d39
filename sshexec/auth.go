package sshexec

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// authSource yields the client authentication for one connect. Exactly one
// of signer and agentSocket is set.
type authSource struct {
	signer      ssh.Signer
	agentSocket string
}

// loadAuth reads the private key named by o, or remembers the agent socket.
// Errors name the field and never quote what the key source holds.
func loadAuth(o Options, prefix string, log *slog.Logger) (authSource, error) {
	if o.AgentSocket != "" {
		return authSource{agentSocket: o.AgentSocket}, nil
	}

	field := prefix + "key_file"
	var data []byte
	if o.KeyFile != "" {
		warnLoosePermissions(o.KeyFile, log)
		b, err := os.ReadFile(o.KeyFile)
		if err != nil {
			return authSource{}, &FieldError{
				Field: field, Reason: "read private key", Err: err}
		}
		data = b
	} else {
		field = prefix + "key_env"
		v := o.Getenv(o.KeyEnv)
		if v == "" {
			return authSource{}, &FieldError{Field: field, Reason: fmt.Sprintf(
				"environment variable %s is empty or unset", o.KeyEnv)}
		}
		data = []byte(unescapeNewlines(v))
	}
	defer clear(data)

	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return authSource{}, keyParseError(field, err)
	}
	return authSource{signer: signer}, nil
}

// keyParseError describes a parse failure without the parser's message,
// which could quote bytes of the key.
func keyParseError(field string, err error) error {
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return &FieldError{Field: field, Reason: "private key is " +
			"passphrase-protected; load it into an agent and use agent_socket"}
	}
	return &FieldError{Field: field, Reason: "not a usable private key " +
		"(want an unencrypted PEM or OpenSSH private key)"}
}

// unescapeNewlines turns a key pasted into one line with literal "\n"
// (as some secret stores and env files do) back into PEM lines.
func unescapeNewlines(v string) string {
	if strings.Contains(v, "\n") || !strings.Contains(v, `\n`) {
		return v
	}
	return strings.ReplaceAll(v, `\n`, "\n")
}

func warnLoosePermissions(path string, log *slog.Logger) {
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm()&0o077 == 0 {
		return
	}
	log.Warn("private key file is readable by group or others",
		keyPath, path, keyMode, info.Mode().Perm().String())
}

// methods returns the auth methods for one connect and a cleanup to call
// once the handshake is over.
func (a authSource) methods(ctx context.Context) ([]ssh.AuthMethod, func(), error) {
	if a.signer != nil {
		return []ssh.AuthMethod{ssh.PublicKeys(a.signer)}, func() {}, nil
	}

	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", a.agentSocket)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to ssh agent: %w", err)
	}
	// A hung agent must not outlive the connect deadline.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	ag := agent.NewClient(conn)
	methods := []ssh.AuthMethod{ssh.PublicKeysCallback(ag.Signers)}
	return methods, func() { _ = conn.Close() }, nil
}

// hostKeys verifies one endpoint's host key.
type hostKeys struct {
	callback ssh.HostKeyCallback
	// algorithms is the host key algorithm preference offered to the
	// server; nil leaves the library default.
	algorithms []string
}

// preferredHostKeyAlgos is the order offered to servers. The library's own
// default puts ed25519 last, so a server holding several host keys would
// present ECDSA while the operator pinned or recorded ed25519.
var preferredHostKeyAlgos = []string{
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256,
	ssh.KeyAlgoECDSA384,
	ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512,
	ssh.KeyAlgoRSASHA256,
}

// loadHostKeys builds the host key check for o, from a pinned fingerprint
// or from a known_hosts file.
func loadHostKeys(o Options, prefix string, log *slog.Logger) (hostKeys, error) {
	if o.HostKeyFingerprint != "" {
		want := strings.TrimRight(o.HostKeyFingerprint, "=")
		return hostKeys{
			callback:   pinnedCallback(want, log),
			algorithms: slices.Clone(preferredHostKeyAlgos),
		}, nil
	}

	cb, err := knownhosts.New(o.KnownHosts)
	if err != nil {
		return hostKeys{}, &FieldError{
			Field: prefix + "known_hosts", Reason: "load", Err: err}
	}
	return hostKeys{
		callback:   knownHostsCallback(cb, o.KnownHosts, log),
		algorithms: algorithmsFor(knownKeyTypes(cb, o.addr())),
	}, nil
}

func pinnedCallback(want string, log *slog.Logger) ssh.HostKeyCallback {
	return func(hostname string, _ net.Addr, key ssh.PublicKey) error {
		got := ssh.FingerprintSHA256(key)
		if got == want {
			return nil
		}
		log.Warn("host key mismatch", keyAddr, hostname,
			keyKeyType, key.Type(), keyFingerprint, got)
		return fmt.Errorf("%w for %s: it does not match host_key_fingerprint",
			ErrHostKeyMismatch, hostname)
	}
}

func knownHostsCallback(cb ssh.HostKeyCallback, file string,
	log *slog.Logger) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		if err == nil {
			return nil
		}

		var keyErr *knownhosts.KeyError
		var revoked *knownhosts.RevokedError
		switch {
		case errors.As(err, &keyErr) && len(keyErr.Want) == 0:
			return fmt.Errorf("%w: %s has no entry in %s",
				ErrUnknownHost, hostname, file)
		case errors.As(err, &keyErr), errors.As(err, &revoked):
			log.Warn("host key mismatch", keyAddr, hostname,
				keyKeyType, key.Type(),
				keyFingerprint, ssh.FingerprintSHA256(key))
			return fmt.Errorf("%w for %s: it does not match %s",
				ErrHostKeyMismatch, hostname, file)
		}
		return fmt.Errorf("check host key: %w", err)
	}
}

// probeKey is a key no known_hosts file lists; checking it makes the
// callback report which keys it does list for an address.
var probeKey = func() ssh.PublicKey {
	seed := make([]byte, ed25519.SeedSize)
	pub := ed25519.NewKeyFromSeed(seed).Public()
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic("sshexec: build probe key: " + err.Error())
	}
	return k
}()

// knownKeyTypes returns the key types known_hosts lists for addr.
func knownKeyTypes(cb ssh.HostKeyCallback, addr string) []string {
	err := cb(addr, &net.TCPAddr{IP: net.IPv4zero}, probeKey)
	var keyErr *knownhosts.KeyError
	if !errors.As(err, &keyErr) {
		return nil
	}
	var types []string
	for _, k := range keyErr.Want {
		types = append(types, k.Key.Type())
	}
	return types
}

// algorithmsFor returns the preferred host key algorithms that fit the
// given key types, so the server presents a key the file can vouch for.
// With no fitting type it returns nil and the check fails at connect time.
func algorithmsFor(types []string) []string {
	var algos []string
	for _, a := range preferredHostKeyAlgos {
		format := a
		if a == ssh.KeyAlgoRSASHA512 || a == ssh.KeyAlgoRSASHA256 {
			format = ssh.KeyAlgoRSA
		}
		if slices.Contains(types, format) {
			algos = append(algos, a)
		}
	}
	return algos
}
