// Package config reads, defaults and validates the mcp-guard configuration
// file. Parsing is strict: an unknown key or a value of the wrong type is an
// error that names the key and its line.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Target kinds.
const (
	KindPostgres = "postgres"
	KindFiles    = "files"
	KindShell    = "shell"
	KindSSH      = "ssh"
)

// Config is the whole configuration file.
type Config struct {
	// Identity is the caller on stdio, and on HTTP when no OIDC issuer is
	// configured (then HTTP listens on loopback only).
	Identity Identity `yaml:"identity"`
	Recorder Recorder `yaml:"recorder"`
	Policy   Policy   `yaml:"policy"`
	Targets  []Target `yaml:"targets"`
	Limits   Limits   `yaml:"limits"`
	Log      Log      `yaml:"log"`
	HTTP     HTTP     `yaml:"http"`
	Auth     Auth     `yaml:"auth"`

	Approvals Approvals `yaml:"approvals"`

	// dir is the directory of the config file; relative paths in the
	// file are resolved against it.
	dir string
}

// Identity names a caller.
type Identity struct {
	Subject string   `yaml:"subject"`
	Email   string   `yaml:"email"`
	Groups  []string `yaml:"groups"`
	// TokenEnv, when set, names an environment variable holding an OIDC
	// token that is verified at start-up and replaces the fields above.
	TokenEnv string `yaml:"token_env"`
}

// Recorder configures the transcript store.
type Recorder struct {
	// Path is the SQLite database file (default ./var/mcp-guard.db).
	Path string `yaml:"path"`
	// Synchronous is "normal" (default: durable against a process crash)
	// or "full" (durable against power loss too).
	Synchronous string `yaml:"synchronous"`
	// MaxResultBytes caps the result stored per call (default 65536).
	MaxResultBytes int `yaml:"max_result_bytes"`
	// SigningKeyFile is the ed25519 key that signs chain checkpoints;
	// generated next to the database with mode 0600 when empty.
	SigningKeyFile string `yaml:"signing_key_file"`
	// PostgresDSNEnv, when set, names an environment variable holding a
	// PostgreSQL DSN: transcripts and approvals then live in that shared
	// database instead of the SQLite file at Path, so that several
	// replicas can serve together. Key files are still kept beside Path.
	PostgresDSNEnv string `yaml:"postgres_dsn_env"`
}

// Policy configures the policy engine.
type Policy struct {
	// Dir holds .rego files; empty means the bundled default policy.
	Dir string `yaml:"dir"`
	// Watch reloads Dir when a file in it changes (default true).
	Watch *bool `yaml:"watch"`
	// Bundle, when set, downloads the policy as a signed OPA bundle
	// instead of reading Dir.
	Bundle *Bundle `yaml:"bundle"`
}

// Bundle configures a policy distributed as a signed OPA bundle over HTTP.
type Bundle struct {
	// URL is the bundle's address (a .tar.gz served over HTTP or HTTPS).
	URL string `yaml:"url"`
	// PublicKeyFile is the PEM public key the bundle's signature must
	// verify with; unsigned bundles are refused.
	PublicKeyFile string `yaml:"public_key_file"`
	// KeyID is the key id the signature names (default "default", as
	// opa build --signing-key writes).
	KeyID string `yaml:"key_id"`
	// Algorithm is the signing algorithm (default RS256).
	Algorithm string `yaml:"algorithm"`
	// Poll is how often the bundle is fetched again (default 1m).
	Poll Duration `yaml:"poll"`
}

// Limits are the ceilings that apply whatever the policy says; a policy
// may lower them, never raise them.
type Limits struct {
	MaxRows        int      `yaml:"max_rows"`         // default 1000
	Timeout        Duration `yaml:"timeout"`          // default 30s
	MaxOutputBytes int      `yaml:"max_output_bytes"` // default 1 MiB
	MaxFileBytes   int      `yaml:"max_file_bytes"`   // default 1 MiB
}

// Log configures logging to stderr.
type Log struct {
	Format string `yaml:"format"` // text (default) or json
	Level  string `yaml:"level"`  // debug, info (default), warn, error
}

// HTTP configures the streamable HTTP listener.
type HTTP struct {
	Listen   string `yaml:"listen"`
	Resource string `yaml:"resource"`
	TLS      TLS    `yaml:"tls"`
	// MaxBodyBytes caps a request body (default 1 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// RateLimit is calls per second per caller (default 20, burst 40).
	RateLimit float64 `yaml:"rate_limit"`
	RateBurst int     `yaml:"rate_burst"`
	// ShutdownTimeout is how long a stopping server lets calls in flight
	// finish before it cuts them off (default 30s).
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// TLS names certificate files for HTTPS.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Auth configures caller authentication on HTTP.
type Auth struct {
	OIDC []OIDCIssuer `yaml:"oidc"`
}

// OIDCIssuer is one trusted token issuer.
type OIDCIssuer struct {
	Issuer      string `yaml:"issuer"`
	Audience    string `yaml:"audience"`
	GroupsClaim string `yaml:"groups_claim"`
}

// Approvals configures human approval of risky calls.
type Approvals struct {
	Wait   Duration `yaml:"wait"`   // default 2m
	Expiry Duration `yaml:"expiry"` // default 15m
	Slack  *Slack   `yaml:"slack"`
	People []Person `yaml:"people"`
	// ConfirmKeyFile holds the HMAC key for in-IDE confirmation state;
	// generated next to the database when empty.
	ConfirmKeyFile string `yaml:"confirm_key_file"`
}

// Slack configures approval messages in Slack.
type Slack struct {
	BotTokenEnv           string `yaml:"bot_token_env"`
	SigningSecretEnv      string `yaml:"signing_secret_env"`
	Channel               string `yaml:"channel"`
	APIURL                string `yaml:"api_url"`
	SocketModeAppTokenEnv string `yaml:"socket_mode_app_token_env"`
}

// Person is an entry of the approvers' directory.
type Person struct {
	Email     string   `yaml:"email"`
	SlackUser string   `yaml:"slack_user"`
	Groups    []string `yaml:"groups"`
}

// Target is one system the tools reach.
type Target struct {
	Name        string            `yaml:"name"`
	Kind        string            `yaml:"kind"`
	Description string            `yaml:"description"`
	Labels      map[string]string `yaml:"labels"`

	// postgres
	DSNEnv  string `yaml:"dsn_env"`
	DSNFile string `yaml:"dsn_file"`

	// files
	Roots []string `yaml:"roots"`

	// shell and ssh
	Workdir string            `yaml:"workdir"`
	Path    []string          `yaml:"path"` // shell: PATH directories (default /usr/local/bin:/usr/bin:/bin)
	Env     map[string]string `yaml:"env"`

	// ssh
	Host               string   `yaml:"host"`
	Port               int      `yaml:"port"`
	User               string   `yaml:"user"`
	KeyFile            string   `yaml:"key_file"`
	KeyEnv             string   `yaml:"key_env"`
	AgentSocket        string   `yaml:"agent_socket"`
	KnownHosts         string   `yaml:"known_hosts"`
	HostKeyFingerprint string   `yaml:"host_key_fingerprint"`
	Jump               *SSHHop  `yaml:"jump"`
	PoolSize           int      `yaml:"pool_size"`
	KeepAlive          Duration `yaml:"keep_alive"`
	DialTimeout        Duration `yaml:"dial_timeout"`

	// ApprovalChannel is the Slack channel for this target's approvals.
	ApprovalChannel string `yaml:"approval_channel"`
}

// SSHHop is a bastion host an SSH target is reached through.
type SSHHop struct {
	Host               string `yaml:"host"`
	Port               int    `yaml:"port"`
	User               string `yaml:"user"`
	KeyFile            string `yaml:"key_file"`
	KeyEnv             string `yaml:"key_env"`
	AgentSocket        string `yaml:"agent_socket"`
	KnownHosts         string `yaml:"known_hosts"`
	HostKeyFingerprint string `yaml:"host_key_fingerprint"`
}

// Duration is a time.Duration written as "2m" or "30s" in YAML.
type Duration struct{ time.Duration }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 30s or 2m", n.Line, s)
	}
	if v < 0 {
		return fmt.Errorf("line %d: duration %q is negative", n.Line, s)
	}
	d.Duration = v
	return nil
}

// Load reads and validates the configuration file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config path: %w", err)
	}
	return Parse(f, filepath.Dir(abs))
}

// Parse reads a configuration from r; relative paths are resolved against
// dir. The result has its defaults applied and is validated.
func Parse(r io.Reader, dir string) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c := &Config{dir: dir}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config: %s", cleanYAMLError(err))
	}
	c.setDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// cleanYAMLError turns the decoder's "field x not found in type
// config.Target" into a message a user can act on.
func cleanYAMLError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	notFound := regexp.MustCompile(`field (\S+) not found in type config\.(\w+)`)
	return notFound.ReplaceAllString(msg, "unknown key \"$1\" in $2")
}

// Dir returns the directory relative paths are resolved against.
func (c *Config) Dir() string { return c.dir }

// Abs resolves p against the config file's directory.
func (c *Config) Abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

func (c *Config) setDefaults() {
	if c.Recorder.Path == "" {
		c.Recorder.Path = "./var/mcp-guard.db"
	}
	c.Recorder.Path = c.Abs(c.Recorder.Path)
	if c.Recorder.Synchronous == "" {
		c.Recorder.Synchronous = "normal"
	}
	if c.Recorder.MaxResultBytes == 0 {
		c.Recorder.MaxResultBytes = 64 << 10
	}
	c.Recorder.SigningKeyFile = c.Abs(c.Recorder.SigningKeyFile)
	c.Policy.Dir = c.Abs(c.Policy.Dir)
	if b := c.Policy.Bundle; b != nil {
		b.PublicKeyFile = c.Abs(b.PublicKeyFile)
		if b.KeyID == "" {
			b.KeyID = "default"
		}
		if b.Algorithm == "" {
			b.Algorithm = "RS256"
		}
		if b.Poll.Duration == 0 {
			b.Poll.Duration = time.Minute
		}
	}
	if c.Policy.Watch == nil {
		t := true
		c.Policy.Watch = &t
	}
	if c.Limits.MaxRows == 0 {
		c.Limits.MaxRows = 1000
	}
	if c.Limits.Timeout.Duration == 0 {
		c.Limits.Timeout.Duration = 30 * time.Second
	}
	if c.Limits.MaxOutputBytes == 0 {
		c.Limits.MaxOutputBytes = 1 << 20
	}
	if c.Limits.MaxFileBytes == 0 {
		c.Limits.MaxFileBytes = 1 << 20
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.HTTP.MaxBodyBytes == 0 {
		c.HTTP.MaxBodyBytes = 1 << 20
	}
	if c.HTTP.RateLimit == 0 {
		c.HTTP.RateLimit = 20
	}
	if c.HTTP.RateBurst == 0 {
		c.HTTP.RateBurst = 40
	}
	if c.HTTP.ShutdownTimeout.Duration == 0 {
		c.HTTP.ShutdownTimeout.Duration = 30 * time.Second
	}
	for i := range c.Auth.OIDC {
		if c.Auth.OIDC[i].Audience == "" {
			c.Auth.OIDC[i].Audience = c.HTTP.Resource
		}
		if c.Auth.OIDC[i].GroupsClaim == "" {
			c.Auth.OIDC[i].GroupsClaim = "groups"
		}
	}
	if c.Approvals.Wait.Duration == 0 {
		c.Approvals.Wait.Duration = 2 * time.Minute
	}
	if c.Approvals.Expiry.Duration == 0 {
		c.Approvals.Expiry.Duration = 15 * time.Minute
	}
	c.Approvals.ConfirmKeyFile = c.Abs(c.Approvals.ConfirmKeyFile)
	if c.Identity.Subject == "" && c.Identity.TokenEnv == "" {
		c.Identity.Subject = "local-user"
	}
	for i := range c.Targets {
		t := &c.Targets[i]
		t.DSNFile = c.Abs(t.DSNFile)
		for j, r := range t.Roots {
			t.Roots[j] = c.Abs(r)
		}
		if t.Kind == KindShell {
			if t.Workdir == "" {
				t.Workdir = "."
			}
			t.Workdir = c.Abs(t.Workdir)
			if len(t.Path) == 0 {
				t.Path = []string{"/usr/local/bin", "/usr/bin", "/bin"}
			}
		}
		if t.Kind == KindSSH {
			if t.Port == 0 {
				t.Port = 22
			}
			t.KeyFile = c.Abs(t.KeyFile)
			t.KnownHosts = c.Abs(t.KnownHosts)
			if t.Jump != nil {
				if t.Jump.Port == 0 {
					t.Jump.Port = 22
				}
				t.Jump.KeyFile = c.Abs(t.Jump.KeyFile)
				t.Jump.KnownHosts = c.Abs(t.Jump.KnownHosts)
			}
		}
	}
}

// FieldError is a validation error that names the offending key.
type FieldError struct {
	Key string // dotted path such as targets[1].dsn_env
	Msg string
}

func (e *FieldError) Error() string { return fmt.Sprintf("config: %s: %s", e.Key, e.Msg) }

var targetName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

func (c *Config) validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	switch c.Recorder.Synchronous {
	case "normal", "full":
	default:
		bad("recorder.synchronous", "must be normal or full, not %q", c.Recorder.Synchronous)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, not %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	if c.Limits.MaxRows < 0 || c.Limits.MaxOutputBytes < 0 || c.Limits.MaxFileBytes < 0 {
		bad("limits", "limits must be positive")
	}
	if len(c.Targets) == 0 {
		bad("targets", "at least one target is required")
	}
	if b := c.Policy.Bundle; b != nil {
		c.validateBundle(b, bad)
	}
	seen := map[string]bool{}
	for i, t := range c.Targets {
		key := fmt.Sprintf("targets[%d]", i)
		if !targetName.MatchString(t.Name) {
			bad(key+".name", "%q must be lowercase letters, digits, - or _, starting with a letter", t.Name)
		} else if seen[t.Name] {
			bad(key+".name", "%q is used by another target", t.Name)
		}
		seen[t.Name] = true
		c.validateTarget(key, t, bad)
	}
	for i, o := range c.Auth.OIDC {
		key := fmt.Sprintf("auth.oidc[%d]", i)
		if o.Issuer == "" {
			bad(key+".issuer", "is required")
		}
		if o.Audience == "" {
			bad(key+".audience", "is required when http.resource is empty")
		}
	}
	if s := c.Approvals.Slack; s != nil {
		if s.BotTokenEnv == "" {
			bad("approvals.slack.bot_token_env", "is required")
		}
		if s.SigningSecretEnv == "" && s.SocketModeAppTokenEnv == "" {
			bad("approvals.slack.signing_secret_env", "is required unless socket_mode_app_token_env is set")
		}
		if s.Channel == "" {
			bad("approvals.slack.channel", "is required")
		}
	}
	for i, p := range c.Approvals.People {
		if p.Email == "" {
			bad(fmt.Sprintf("approvals.people[%d].email", i), "is required")
		}
	}
	return errors.Join(errs...)
}

func (c *Config) validateBundle(b *Bundle, bad func(string, string, ...any)) {
	if c.Policy.Dir != "" {
		bad("policy.bundle", "policy.dir and policy.bundle are exclusive")
	}
	u, err := url.Parse(b.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("policy.bundle.url", "%q is not an http or https URL", b.URL)
	}
	if b.PublicKeyFile == "" {
		bad("policy.bundle.public_key_file", "is required: bundles must be signed")
	} else if st, err := os.Stat(b.PublicKeyFile); err != nil || !st.Mode().IsRegular() {
		bad("policy.bundle.public_key_file", "%q is not a readable file", b.PublicKeyFile)
	}
	if b.Poll.Duration < time.Second {
		bad("policy.bundle.poll", "must be at least 1s")
	}
}

func (c *Config) validateTarget(key string, t Target, bad func(string, string, ...any)) {
	forbid := func(name string, set bool) {
		if set {
			bad(key+"."+name, "does not apply to a %s target", t.Kind)
		}
	}
	switch t.Kind {
	case KindPostgres:
		if (t.DSNEnv == "") == (t.DSNFile == "") {
			bad(key+".dsn_env", "exactly one of dsn_env and dsn_file is required")
		}
		forbid("roots", len(t.Roots) > 0)
		forbid("workdir", t.Workdir != "")
		forbid("host", t.Host != "")
	case KindFiles:
		if len(t.Roots) == 0 {
			bad(key+".roots", "at least one root is required")
		}
		for j, r := range t.Roots {
			st, err := os.Stat(r)
			if err != nil || !st.IsDir() {
				bad(fmt.Sprintf("%s.roots[%d]", key, j), "%q is not a directory", r)
			}
		}
		forbid("dsn_env", t.DSNEnv != "")
		forbid("workdir", t.Workdir != "")
		forbid("host", t.Host != "")
	case KindShell:
		st, err := os.Stat(t.Workdir)
		if err != nil || !st.IsDir() {
			bad(key+".workdir", "%q is not a directory", t.Workdir)
		}
		for j, p := range t.Path {
			if !filepath.IsAbs(p) {
				bad(fmt.Sprintf("%s.path[%d]", key, j), "%q must be absolute", p)
			}
		}
		forbid("dsn_env", t.DSNEnv != "")
		forbid("roots", len(t.Roots) > 0)
		forbid("host", t.Host != "")
	case KindSSH:
		if t.Host == "" {
			bad(key+".host", "is required")
		}
		if t.User == "" {
			bad(key+".user", "is required")
		}
		if n := nonEmpty(t.KeyFile, t.KeyEnv, t.AgentSocket); n != 1 {
			bad(key+".key_file", "exactly one of key_file, key_env and agent_socket is required")
		}
		if n := nonEmpty(t.KnownHosts, t.HostKeyFingerprint); n != 1 {
			bad(key+".known_hosts", "exactly one of known_hosts and host_key_fingerprint is required; host keys are always verified")
		}
		forbid("dsn_env", t.DSNEnv != "")
		forbid("roots", len(t.Roots) > 0)
	case "":
		bad(key+".kind", "is required (postgres, files, shell or ssh)")
	default:
		bad(key+".kind", "%q is not a target kind (postgres, files, shell or ssh)", t.Kind)
	}
}

func nonEmpty(vals ...string) int {
	n := 0
	for _, v := range vals {
		if v != "" {
			n++
		}
	}
	return n
}

// Target returns the target with the given name, matched exactly.
func (c *Config) Target(name string) (*Target, bool) {
	for i := range c.Targets {
		if c.Targets[i].Name == name {
			return &c.Targets[i], true
		}
	}
	return nil, false
}
