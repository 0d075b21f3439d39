package tools

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/policy"
)

// shellFixture is a shell target's working directory with the files the
// tester used, and a directory beside it that is outside.
type shellFixture struct {
	dir     string // parent of work and outside
	work    string
	outside string
	eng     *policy.Engine
}

func newShellFixture(t *testing.T) *shellFixture {
	t.Helper()
	dir := t.TempDir()
	f := &shellFixture{
		dir:     dir,
		work:    filepath.Join(dir, "work"),
		outside: filepath.Join(dir, "outside"),
	}
	files := map[string]string{
		"work/notes.txt":          "TODO: ship it\n",
		"work/README.md":          "readme\n",
		"work/.env":               "API_KEY=sk_live_fixture\n",
		"work/.ssh/id_rsa":        "-----BEGIN OPENSSH PRIVATE KEY-----\n",
		"work/var/demo/sign.key":  "key bytes\n",
		"work/sub/inner.txt":      "inner\n",
		"outside/secret.txt":      "outside secret\n",
		"outside/ssh/known_hosts": "hosts\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"work/innocent.txt": ".env",
		"work/out":          "../outside",
		"work/keylink":      ".ssh/id_rsa",
	}
	for name, to := range links {
		if err := os.Symlink(to, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(f.work, ".env"), filepath.Join(f.work, "hard_env")); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\ntouch pwned\n"
	if err := os.WriteFile(filepath.Join(f.work, "cat"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	eng, err := policy.New(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	f.eng = eng
	return f
}

// decide analyses command for the fixture's shell target and asks the
// bundled policy, as the guard does. It returns allow, approval or deny
// (a refusal before the policy counts as deny) and the reasons.
func (f *shellFixture) decide(t *testing.T, command string) (string, []string) {
	t.Helper()
	return f.decideWith(t, command, []string{"/usr/local/bin", "/usr/bin", "/bin"})
}

// decideWith is decide on a target with the given PATH.
func (f *shellFixture) decideWith(t *testing.T, command string, path []string) (string, []string) {
	t.Helper()
	ctx := context.Background()
	target := &config.Target{
		Name: "local", Kind: config.KindShell, Workdir: f.work, Path: path,
	}
	c := &Call{Tool: RunShell, Target: target,
		Args: map[string]any{"target": "local", "command": command}}
	key, facts, err := Shell{}.Facts(ctx, c)
	if err != nil {
		var r *Refusal
		if !errors.As(err, &r) {
			t.Fatalf("facts: %v", err)
		}
		return policy.OutcomeDeny, []string{r.Reason}
	}
	in := map[string]any{
		"tool": RunShell,
		"caller": map[string]any{"subject": "t", "issuer": "", "email": "",
			"groups": []any{"developers"}},
		"arguments": c.Args,
		"target":    map[string]any{"name": "local", "kind": "shell", "labels": map[string]any{}},
		key:         facts,
	}
	d, err := f.eng.Decide(ctx, in)
	if err != nil {
		t.Fatalf("decide %q: %v", command, err)
	}
	return d.Outcome, d.Reasons
}

type decisionRow struct {
	name    string
	command string
	want    string
}

func runDecisionRows(t *testing.T, rows []decisionRow) {
	t.Helper()
	f := newShellFixture(t)
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			command := strings.NewReplacer("{work}", f.work, "{outside}", f.outside,
				"{pid}", strconv.Itoa(os.Getpid())).Replace(r.command)
			got, reasons := f.decide(t, command)
			if got != r.want {
				t.Errorf("%q: got %s %q, want %s", command, got, reasons, r.want)
			}
		})
	}
}

// The outcomes the decision rows expect.
const (
	allow    = policy.OutcomeAllow
	approval = policy.OutcomeApproval
	deny     = policy.OutcomeDeny
)

// TestShellOptionsThatRunOrWrite: read-only programs whose options run a
// program, write a file or change the system, in full and abbreviated
// spellings, with the harmless forms as controls.
func TestShellOptionsThatRunOrWrite(t *testing.T) {
	runDecisionRows(t, []decisionRow{
		{"git show --output", "git show --no-patch --format=x --output=notes.md", approval},
		{"git show --output onto git config", "git show --no-patch --format=x --output=.git/config", deny},
		{"git diff --output abbreviated", "git diff --outp=x.txt", approval},
		{"git log --ou", "git log --ou x.txt", approval},
		{"git log --ext-diff", "git log -p --ext-diff", approval},
		{"git diff --textconv", "git diff --textc", approval},
		{"git cat-file --filters", "git cat-file --filt HEAD:x", approval},
		{"git grep pager abbreviated", "git grep --open-files-i=touch Makefile", deny},
		{"git grep -O cluster", "git grep -nOtouch x", deny},
		{"git log --exec-path", "git log --exec-p=/tmp", deny},
		{"git log --config-env", "git log --config-e=a=b", deny},
		{"git reflog expire", "git reflog expire --expire=now --all", approval},
		{"git reflog delete", "git reflog delete HEAD@{1}", approval},
		{"git reflog", "git reflog", allow},
		{"git reflog show", "git reflog show --all", allow},
		{"git log control", "git log --oneline -5", allow},
		{"git diff exit code control", "git diff --exit-code --stat", allow},
		{"sort --compress-program", "sort -S 1 --compress-program=sh notes.txt", deny},
		{"sort --comp", "sort --comp=sh notes.txt", deny},
		{"sort --out", "sort --out=x notes.txt", approval},
		{"sort --outp", "sort --outp x notes.txt", approval},
		{"sort -o cluster", "sort -uo x notes.txt", approval},
		{"sort -T", "sort -T . notes.txt", approval},
		{"sort --temp", "sort --temp=. notes.txt", approval},
		{"sort control", "sort -u -k1,1 notes.txt", allow},
		{"date positional", "date 010100002030", approval},
		{"date positional after -u", "date -u 010100002030", approval},
		{"date --se", "date --se=2030-01-01", approval},
		{"date -s cluster", "date -us 2030-01-01", approval},
		{"date value then operand", "date -d -d 0101", approval},
		{"date format control", "date +%F", allow},
		{"date -d control", "date -d yesterday +%F", allow},
		{"date -r control", "date -r notes.txt", allow},
		{"hostname --file", "hostname --file=/etc/hostname", approval},
		{"hostname --fi", "hostname --fi /etc/hostname", approval},
		{"hostname -F attached", "hostname -F/etc/hostname", approval},
		{"hostname -b", "hostname -b", approval},
		{"hostname control", "hostname -f", allow},
		{"uniq output operand", "uniq notes.txt out.txt", approval},
		{"uniq control", "uniq -f 1 notes.txt", allow},
		{"xxd output operand", "xxd notes.txt out.bin", approval},
		{"tree -o", "tree -ao out.txt", approval},
		{"tree -R", "tree -R -H . .", approval},
		{"tree control", "tree -a -L 2", allow},
		{"file -C", "file -C -m notes.txt", approval},
		{"file --comp", "file --comp -m notes.txt", approval},
		{"file control", "file notes.txt", allow},
		{"ps BSD e", "ps auxe", approval},
		{"ps e alone", "ps e", approval},
		{"ps -ex", "ps -ex", approval},
		{"ps -axe", "ps -axe", approval},
		{"ps -et", "ps -et", approval},
		{"ps -ef control", "ps -ef", allow},
		{"ps aux control", "ps aux", allow},
		{"ps -eo control", "ps -eo pid,user,etime,args", allow},
		{"ps -C control", "ps -C sleep", allow},
		{"rg --pre", "rg --pre=./x foo", deny},
		{"rg --hostname-bin", "rg --hostname-bin=./x --hyperlink-format=default foo", deny},
		{"rg control", "rg -n TODO sub", allow},
		{"find -fprint", "find . -fprint out.txt", approval},
		{"find -delete", "find . -name x -delete", approval},
		{"find control", "find . -name '*.md'", allow},
	})
}

// TestShellPathsOutsideTheWorkdir: secrets reached through /proc, another
// spelling, a link, a glob or cd are denied; other files outside the
// working directory need approval; reads inside it run.
func TestShellPathsOutsideTheWorkdir(t *testing.T) {
	runDecisionRows(t, []decisionRow{
		{"own environ", "cat /proc/{pid}/environ", deny},
		{"environ through self", "cat /proc/self/environ", deny},
		{"environ by glob", "cat /proc/{pid}/env*", deny},
		{"environ after cd", "cd /proc/{pid} && cat environ", deny},
		{"environ of a task", "cat /proc/{pid}/task/{pid}/environ", deny},
		{"environ with a dot", "cat /proc/{pid}/./environ", deny},
		{"grep through a process", "grep -ra BILLING /proc/{pid}/", deny},
		{"grep through /proc", "grep -r BILLING /proc", deny},
		{"relative /proc after cd", "cd / && cat proc/{pid}/environ", deny},
		{"shadow with a dot", "cat /etc/./shadow", deny},
		{"shadow with slashes", "cat /etc//shadow", deny},
		{"shadow after cd", "cd /etc && cat shadow", deny},
		{"shadow through ..", "cat /etc/ssl/../shadow", deny},
		{"input redirect outside", "cat < {outside}/secret.txt", approval},
		{"climbing out", "cat ../outside/secret.txt", approval},
		{"climbing out after cd", "cd sub && cat ../../outside/secret.txt", approval},
		{"absolute outside", "cat {outside}/secret.txt", approval},
		{"through a linked directory", "cat out/secret.txt", approval},
		{"cd into a linked directory", "cd out && cat secret.txt", approval},
		{"cd outside", "cd {outside}", approval},
		{"tilde climbing out", "cat ~/../outside/secret.txt", approval},
		{"other user's home", "cat ~root/x", approval},
		{"option value outside", "git blame --contents={outside}/secret.txt notes.txt", approval},
		{"attached value outside", "grep -f{outside}/secret.txt notes.txt", approval},
		{"output into cron", "git show --output=/etc/cron.d/x", deny},
		{"env by class glob", "cat .en[v]", deny},
		{"env by negated class", "cat .en[!x]", deny},
		{"env by ?", "cat .en?", deny},
		{"env by redirect glob", "cat < .en?", deny},
		{"keys by glob", "cat var/demo/*.ke?", deny},
		{"key after cd", "cd .ssh && base64 i*", deny},
		{"key after cd by glob", "cd .ss? && base64 i*", deny},
		{"bare .ssh directory", "ls .ssh", deny},
		{"link named innocently", "cat innocent.txt", deny},
		{"grep -r over a secret", "grep -r API_KEY .", approval},
		{"grep -r with no operand", "grep -r API_KEY", approval},
		{"grep -ra over keys", `grep -ra "" var/demo`, approval},
		{"rg over a key", "rg -n TODO", approval},
		{"rg --hidden", "rg --hidden API_KEY sub .", approval},
		{"diff -r", "diff -r sub .", approval},
		{"grep -R through a link out", "grep -R x out", approval},
		{"grep -r below without secrets", "grep -rn TODO sub", allow},
		{"grep -f value is not recursion", "grep -fsub/inner.txt notes.txt", allow},
		{"link to a key", "base64 keylink", deny},
		{"hard link to .env", "cat hard_env", approval},
		{"read inside", "cat notes.txt", allow},
		{"read below", "cat sub/inner.txt", allow},
		{"read after cd", "cd sub && cat inner.txt ../notes.txt", allow},
		{"glob inside", "cat *.md", allow},
		{"grep pattern with slashes", `grep -rn "/api/" sub`, allow},
		{"cut on slashes", "cut -d/ -f2 notes.txt", allow},
		{"diff against /dev/null", "diff notes.txt /dev/null", allow},
		{"echo a path", "echo /etc/passwd", allow},
		{"stderr to /dev/null", "ls nosuch 2>/dev/null", allow},
		{"list", "ls -la", allow},
	})
}

// TestShellProgramsOutsidePath: a program in the working directory named
// like a read-only one is not read-only, however it is named.
func TestShellProgramsOutsidePath(t *testing.T) {
	f := newShellFixture(t)
	std := []string{"/usr/local/bin", "/usr/bin", "/bin"}
	rows := []struct {
		name, command string
		path          []string
		want          string
	}{
		{"dot slash", "./cat notes.txt", std, policy.OutcomeApproval},
		{"absolute into the workdir", filepath.Join(f.work, "cat") + " notes.txt", std, policy.OutcomeApproval},
		{"relative PATH entry", "cat notes.txt", []string{".", "/usr/bin", "/bin"}, policy.OutcomeApproval},
		{"workdir on PATH", "cat notes.txt", []string{f.work, "/usr/bin", "/bin"}, policy.OutcomeApproval},
		{"by name", "cat notes.txt", std, policy.OutcomeAllow},
		{"absolute system path", "/usr/bin/cat notes.txt", std, policy.OutcomeAllow},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			got, reasons := f.decideWith(t, r.command, r.path)
			if got != r.want {
				t.Errorf("%q: got %s %q, want %s", r.command, got, reasons, r.want)
			}
		})
	}
}
