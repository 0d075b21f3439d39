package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, yaml string) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Parse(strings.NewReader(yaml), dir)
}

func TestParseRefusesBadConfigs(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"misspelled key", "targets:\n  - {name: local, kind: shell, workdirr: .}\n", `unknown key "workdirr" in Target`},
		{"misspelled top-level key", "recorders: {path: x}\ntargets: [{name: local, kind: shell}]\n", `unknown key "recorders"`},
		{"line of a bad value", "targets:\n  - name: local\n    kind: shell\n    path: 3\n", "line 4"},
		{"no targets", "identity: {subject: a}\n", "targets: at least one target is required"},
		{"unknown kind", "targets: [{name: x, kind: ftp}]\n", `targets[0].kind: "ftp" is not a target kind`},
		{"missing kind", "targets: [{name: x}]\n", "targets[0].kind: is required"},
		{"bad name", "targets: [{name: 'local;rm', kind: shell}]\n", "targets[0].name"},
		{"duplicate name", "targets: [{name: a, kind: shell}, {name: a, kind: shell}]\n", `targets[1].name: "a" is used by another target`},
		{"postgres without dsn", "targets: [{name: db, kind: postgres}]\n", "targets[0].dsn_env: exactly one of dsn_env and dsn_file"},
		{"postgres with both", "targets: [{name: db, kind: postgres, dsn_env: A, dsn_file: b}]\n", "exactly one of dsn_env and dsn_file"},
		{"files without roots", "targets: [{name: f, kind: files}]\n", "targets[0].roots: at least one root"},
		{"root not a directory", "targets: [{name: f, kind: files, roots: [nowhere]}]\n", "targets[0].roots[0]"},
		{"key of another kind", "targets: [{name: f, kind: files, roots: [root], workdir: .}]\n", "targets[0].workdir: does not apply to a files target"},
		{"ssh without host key", "targets: [{name: s, kind: ssh, host: h, user: u, key_file: k}]\n", "host keys are always verified"},
		{"ssh with two keys", "targets: [{name: s, kind: ssh, host: h, user: u, key_file: k, key_env: K, known_hosts: kh}]\n", "exactly one of key_file, key_env and agent_socket"},
		{"bad duration", "approvals: {wait: soon}\ntargets: [{name: l, kind: shell}]\n", `"soon" is not a duration`},
		{"bad synchronous", "recorder: {synchronous: sometimes}\ntargets: [{name: l, kind: shell}]\n", "recorder.synchronous"},
		{"slack without secret", "approvals: {slack: {bot_token_env: T, channel: C}}\ntargets: [{name: l, kind: shell}]\n", "approvals.slack.signing_secret_env"},
		{"oidc without audience", "auth: {oidc: [{issuer: https://id.example}]}\ntargets: [{name: l, kind: shell}]\n", "auth.oidc[0].audience"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.yaml)
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := parse(t, "targets:\n  - {name: local, kind: shell}\n  - {name: f, kind: files, roots: [root]}\n")
	if err != nil {
		t.Fatal(err)
	}
	dir := c.Dir()
	checks := []struct {
		name      string
		got, want any
	}{
		{"recorder path", c.Recorder.Path, filepath.Join(dir, "var", "mcp-guard.db")},
		{"synchronous", c.Recorder.Synchronous, "normal"},
		{"max rows", c.Limits.MaxRows, 1000},
		{"timeout", c.Limits.Timeout.Duration, 30 * time.Second},
		{"approval wait", c.Approvals.Wait.Duration, 2 * time.Minute},
		{"approval expiry", c.Approvals.Expiry.Duration, 15 * time.Minute},
		{"stdio subject", c.Identity.Subject, "local-user"},
		{"shell workdir", c.Targets[0].Workdir, dir},
		{"shell path", strings.Join(c.Targets[0].Path, ":"), "/usr/local/bin:/usr/bin:/bin"},
		{"root made absolute", c.Targets[1].Roots[0], filepath.Join(dir, "root")},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if _, ok := c.Target("local"); !ok {
		t.Error("Target(local) not found")
	}
	if _, ok := c.Target("LOCAL"); ok {
		t.Error("target names must match exactly")
	}
}
