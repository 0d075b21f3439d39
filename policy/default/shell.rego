# Shell rules of the default policy: run_shell on shell and ssh targets.
#
# Every simple command is judged on its own, by the word the shell will
# execute (after quote removal) and by its flags. Programs on the read-only
# list run; anything else needs approval; the tricks below are denied.
package mcpguard

import rego.v1

shell_call if input.tool == "run_shell"

commands := input.shell.commands if shell_call

else := []

# ---------------------------------------------------------------- denials

deny contains "the command has parts the guard cannot see through (variables, substitutions or generated names); write it out literally" if {
	shell_call
	input.shell.dynamic
}

deny contains sprintf("%s runs code the guard cannot inspect", [c.wrapper]) if {
	some c in commands
	c.opaque
}

# A nested shell hides the real command in a string; run the inner command
# directly instead.
nested_shells := {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "busybox", "toybox"}

deny contains sprintf("%s starts a nested shell; send the inner command directly", [c.base]) if {
	some c in commands
	some n in command_names(c)
	n in nested_shells
}

deny contains sprintf("%s is a shell builtin that runs other code", [c.base]) if {
	some c in commands
	c.base in {"eval", "source", ".", "exec", "builtin", "enable", "trap", "coproc"}
}

privileged := {"sudo", "su", "doas", "pkexec", "runuser", "setpriv", "capsh", "chroot", "sudoedit", "nsenter", "unshare", "machinectl", "systemd-run"}

deny contains sprintf("privilege escalation (%s) is not allowed", [n]) if {
	some c in commands
	some n in command_names(c)
	n in privileged
}

deny contains sprintf("privilege escalation (%s) is not allowed", [c.base]) if {
	some c in commands
	c.privileged
}

# The names a command is known by: as typed, its base name, and the base of
# the file it resolves to (so a link such as /usr/bin/sudoedit counts too).
command_names(c) := {n | some n in [c.name, c.base, base(c.resolved), object.get(c, "resolved_base", "")]; n != ""}

base(p) := b if {
	p != ""
	parts := split(p, "/")
	b := parts[count(parts) - 1]
} else := ""

deny contains "changing the environment for later commands (export, declare, alias, assignments) is not allowed" if {
	shell_call
	input.shell.changes_environment
}

dangerous_env := {"PATH", "IFS", "ENV", "BASH_ENV", "PROMPT_COMMAND", "PAGER", "EDITOR", "VISUAL", "GIT_PAGER", "GIT_EDITOR", "NODE_OPTIONS", "SHELLOPTS", "BASHOPTS", "HOME", "CDPATH"}

deny contains sprintf("setting %s changes how programs run and is not allowed", [v]) if {
	shell_call
	some v in input.shell.assignments
	dangerous_env_name(v)
}

dangerous_env_name(v) if v in dangerous_env

dangerous_env_name(v) if startswith(v, "LD_")

dangerous_env_name(v) if startswith(v, "GIT_")

dangerous_env_name(v) if endswith(v, "_COMMAND")

dangerous_env_name(v) if startswith(v, "PYTHON")

dangerous_env_name(v) if startswith(v, "PERL")

dangerous_env_name(v) if startswith(v, "RUBY")

dangerous_env_name(v) if startswith(v, "BASH_FUNC_")

approval contains "the command sets environment variables and needs approval" if {
	shell_call
	count(input.shell.assignments) > 0
}

deny contains "the command runs several lines; write it on one line, joined with ; or &&, so that everyone who reads it sees all of it" if {
	shell_call
	"newline_list" in input.shell.flags
}

deny contains "background jobs are not allowed: a call's commands end with the call" if {
	shell_call
	input.shell.background
}

deny contains "defining shell functions is not allowed" if {
	shell_call
	input.shell.function_defs
}

# Downloading and running code: a network fetcher anywhere in a pipeline or
# list that also starts an interpreter or a shell.
fetchers := {"curl", "wget", "fetch", "aria2c", "nc", "ncat", "netcat", "socat", "scp", "sftp", "rsync", "ftp", "tftp"}

interpreters := nested_shells | {"python", "python2", "python3", "perl", "ruby", "node", "nodejs", "php", "lua", "tclsh", "Rscript", "deno", "bun"}

deny contains "downloading and running code is not allowed" if {
	some f in commands
	f.base in fetchers
	some c in commands
	some n in command_names(c)
	n in interpreters
}

deny contains sprintf("%s reads a program from a pipe", [c.base]) if {
	some c in commands
	c.stdin_from_pipe
	some n in command_names(c)
	n in interpreters
}

# Secrets and start-up files, whether named in arguments or redirects.
secret_path(p) if regex.match(`(^|/)\.ssh/`, p)

secret_path(p) if regex.match(`(^|/)\.env(\.[^/]*)?$`, p)

secret_path(p) if regex.match(`(^|/)id_(rsa|dsa|ecdsa|ed25519)[^/]*$`, p)

secret_path(p) if regex.match(`\.(pem|key|p12|pfx|jks|keystore|kdbx)$`, p)

secret_path(p) if regex.match(`(^|/)\.(netrc|pgpass|git-credentials|npmrc|pypirc)$`, p)

secret_path(p) if regex.match(`(^|/)\.(aws|azure|gcloud|kube|docker|gnupg)/`, p)

secret_path(p) if regex.match(`^/proc/[^/]+/(environ|cmdline|mem|maps)$`, p)

secret_path(p) if regex.match(`^/etc/(shadow|gshadow|sudoers)`, p)

startup_file(p) if regex.match(`(^|/)\.(bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zprofile|zshenv|zlogin|inputrc|kshrc|cshrc|tcshrc)$`, p)

startup_file(p) if regex.match(`(^|/)\.config/fish/`, p)

startup_file(p) if regex.match(`(^|/)authorized_keys2?$`, p)

startup_file(p) if regex.match(`^/etc/(profile|bash\.bashrc|environment|profile\.d/|cron|sudoers)`, p)

shell_paths contains a if {
	some c in commands
	some a in c.args
}

shell_paths contains r.target if {
	shell_call
	some r in input.shell.redirects
}

shell_paths contains r.resolved_target if {
	shell_call
	some r in input.shell.redirects
}

deny contains sprintf("%s refers to a secret file", [p]) if {
	some p in shell_paths
	secret_path(p)
}

deny contains sprintf("%s is a shell start-up or key file and must not be touched", [p]) if {
	some p in shell_paths
	startup_file(p)
}

# ---------------------------------------------------------------- read-only list

# Programs that only read, judged per simple command. A name matches as a
# whole word: an entry for ls says nothing about lsof.
readonly_programs := {
	"ls", "cat", "head", "tail", "wc", "grep", "egrep", "fgrep", "rg", "find",
	"echo", "printf", "pwd", "date", "uname", "whoami", "id", "hostname",
	"uptime", "df", "du", "stat", "file", "sort", "uniq", "cut", "tr", "diff",
	"cmp", "md5sum", "sha1sum", "sha256sum", "sha512sum", "basename",
	"dirname", "realpath", "readlink", "tree", "jq", "column", "nl", "true",
	"false", "test", "[", "which", "ps", "free", "git", "cd", "tac", "rev",
	"fold", "fmt", "expand", "unexpand", "paste", "join", "comm", "seq",
	"yes", "sleep", "base64", "xxd", "od", "hexdump", "strings", "type",
	"command", "nproc", "arch", "lsblk", "env",
}

# Flags that turn a read-only program into one that runs or writes.
unsafe_flag(c) if {
	c.base == "find"
	some a in c.args
	a in {"-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprint0", "-fprintf", "-fls"}
}

unsafe_flag(c) if {
	c.base == "sort"
	some a in c.args
	regex.match(`^(-o|--output)`, a)
}

unsafe_flag(c) if {
	c.base == "sort"
	some a in c.args
	regex.match(`^-[a-zA-Z]*o`, a)
}

unsafe_flag(c) if {
	c.base in {"base64", "xxd"}
	some a in c.args
	a in {"-d", "--decode", "-r", "-revert"}
	input.shell.pipelines > 0
}

# Programs that change the system or write a file given as an argument.
unsafe_flag(c) if {
	c.base == "date"
	some a in c.args
	regex.match(`^(-s|--set)`, a)
}

unsafe_flag(c) if {
	c.base == "hostname"
	some a in c.args
	not startswith(a, "-")
}

unsafe_flag(c) if {
	c.base in {"uniq", "xxd"}
	count([a | some a in c.args; not startswith(a, "-")]) > 1
}

unsafe_flag(c) if {
	c.base == "tree"
	some a in c.args
	regex.match(`^(-o|--output)`, a)
}

# env with arguments runs another program; alone it prints the (fixed,
# minimal) environment.
unsafe_flag(c) if {
	c.base == "env"
	count(c.args) > 0
}

unsafe_flag(c) if {
	c.base == "command"
	count(c.args) > 0
	not c.args[0] in {"-v", "-V"}
}

unsafe_flag(c) if {
	c.base == "git"
	not git_readonly(c)
}

git_readonly_subcommands := {"status", "log", "diff", "show", "rev-parse", "ls-files", "blame", "describe", "shortlog", "grep", "ls-tree", "cat-file", "reflog", "whatchanged"}

git_readonly(c) if {
	count(c.args) > 0
	c.args[0] in git_readonly_subcommands
}

git_readonly(c) if {
	c.args == ["branch"]
}

git_readonly(c) if {
	c.args[0] == "remote"
	c.args[1] == "-v"
	count(c.args) == 2
}

# A command is on the list when its name (as typed, as a base name and as
# resolved) is listed and no flag disqualifies it.
readonly_command(c) if {
	c.base in readonly_programs
	resolved_ok(c)
	not unsafe_flag(c)
	not c.wrapper
}

readonly_command(c) if {
	c.base in {"cd", "test", "[", "true", "false", "echo", "printf", "pwd", "type"}
	c.builtin
}

# A program resolved to a file of another name (a link to another program)
# is judged by that name too.
resolved_ok(c) if c.resolved == ""

resolved_ok(c) if base(c.resolved) in readonly_programs

# Debian's alternatives: which resolves to which.debianutils, and so on.
resolved_ok(c) if startswith(base(c.resolved), concat("", [c.base, "."]))

resolved_ok(c) if {
	c.base == "awk"
	base(c.resolved) in {"mawk", "gawk", "original-awk"}
}

approval contains sprintf("%s is not on the read-only list and needs approval", [c.base]) if {
	some c in commands
	not readonly_command(c)
}

approval contains sprintf("the command writes to %s and needs approval", [r.target]) if {
	shell_call
	some r in input.shell.redirects
	r.writes
}

allowed if {
	shell_call
	count(commands) > 0
}
