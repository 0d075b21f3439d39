# Shell rules of the default policy: run_shell on shell and ssh targets.
#
# Every simple command is judged on its own, by the word the shell will
# execute (after quote removal) and by its flags. Programs on the read-only
# list run; anything else needs approval; the tricks below are denied.
package mcpguard

import rego.v1

# The rules below add to shell_deny and shell_approval, which count for
# run_shell calls only: the two rules right after this comment check the
# tool once, and calls to other tools never evaluate the shell rules. So
# the rules read input.shell directly. A rule about one of the input's
# flags compares it with true: OPA's rule index then skips the rule when
# the flag is false, which it is for nearly every call, instead of
# evaluating its body.
#
# Lists such as readonly_programs are named once and referred to by name;
# the engine writes their values into the rules that use them when it
# compiles the policy (see docs/policy.md, "Evaluation cost").

deny contains reason if {
	input.tool == "run_shell"
	some reason in shell_deny
}

approval contains reason if {
	input.tool == "run_shell"
	some reason in shell_approval
}

# commands is the call's simple commands, and none for other tools: for
# rules of a team's own that look at commands outside shell_deny and
# shell_approval (the rules here read input.shell.commands directly).
commands := input.shell.commands if input.tool == "run_shell"

else := []

# ---------------------------------------------------------------- denials

shell_deny contains "the command has parts the guard cannot see through (variables, substitutions or generated names); write it out literally" if {
	input.shell.dynamic == true
}

# input.shell.opaque says whether any command is opaque; the commands
# then name which.
shell_deny contains sprintf("%s runs code the guard cannot inspect", [c.wrapper]) if {
	input.shell.opaque == true
	some c in input.shell.commands
	c.opaque
}

# A nested shell hides the real command in a string; run the inner command
# directly instead.
nested_shells := {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "busybox", "toybox"}

shell_deny contains sprintf("%s is a shell builtin that runs other code", [c.base]) if {
	some c in input.shell.commands
	c.base in {"eval", "source", ".", "exec", "builtin", "enable", "trap", "coproc"}
}

privileged := {"sudo", "su", "doas", "pkexec", "runuser", "setpriv", "capsh", "chroot", "sudoedit", "nsenter", "unshare", "machinectl", "systemd-run", "run0"}

shell_deny contains sprintf("privilege escalation (%s) is not allowed", [c.base]) if {
	some c in input.shell.commands
	c.privileged
}

# watched[i] holds the names of the i-th command that the lists of shells,
# privilege tools and interpreters hold, computed once per call. A command
# is known by its name as typed, its base name, and the base of the file it
# resolves to (resolved_base, so a link such as /usr/bin/sudoedit counts
# too). For an ordinary call it is empty, and the one rule that reads it
# (the watched denials, below) costs one lookup.
watched[i] := names if {
	watched_program
	some i, c in input.shell.commands
	names := {c.name, c.base, c.resolved_base} & watched_names
	names != set()
}

# watched_program holds when any command is known by a watched name
# (input.shell.programs lists every command's name, base name and resolved
# base name); an ordinary call stops here.
watched_program if {
	some n in input.shell.programs
	n in watched_names
}

# watched_names is nested_shells | privileged | interpreters written out:
# OPA would compute the unions again on every call. shell_test.rego checks
# that the two agree, so add a name to its list above and here.
watched_names := {
	"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "busybox", "toybox",
	"sudo", "su", "doas", "pkexec", "runuser", "setpriv", "capsh", "chroot", "sudoedit", "nsenter", "unshare", "machinectl", "systemd-run", "run0",
	"python", "python2", "python3", "perl", "ruby", "node", "nodejs", "php", "lua", "tclsh", "Rscript", "deno", "bun",
}

shell_deny contains "changing the environment for later commands (export, declare, alias, assignments) is not allowed" if {
	input.shell.changes_environment == true
}

dangerous_env := {"PATH", "IFS", "ENV", "BASH_ENV", "PROMPT_COMMAND", "PAGER", "EDITOR", "VISUAL", "GIT_PAGER", "GIT_EDITOR", "NODE_OPTIONS", "SHELLOPTS", "BASHOPTS", "HOME", "CDPATH"}

shell_deny contains sprintf("setting %s changes how programs run and is not allowed", [v]) if {
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

shell_approval contains "the command sets environment variables and needs approval" if {
	input.shell.assignments[_]
}

shell_deny contains "the command runs several lines; write it on one line, joined with ; or &&, so that everyone who reads it sees all of it" if {
	"newline_list" in input.shell.flags
}

shell_deny contains "background jobs are not allowed: a call's commands end with the call" if {
	input.shell.background == true
}

shell_deny contains "defining shell functions is not allowed" if {
	input.shell.function_defs == true
}

# Downloading and running code: a network fetcher anywhere in a pipeline or
# list that also starts an interpreter or a shell.
fetchers := {"curl", "wget", "fetch", "aria2c", "nc", "ncat", "netcat", "socat", "scp", "sftp", "rsync", "ftp", "tftp"}

interpreters := nested_shells | {"python", "python2", "python3", "perl", "ruby", "node", "nodejs", "php", "lua", "tclsh", "Rscript", "deno", "bun"}

# The denials for commands with watched names, settled per command in
# one rule (a rule per denial would cost an ordinary call a lookup each).
shell_deny contains reason if {
	some i, names in watched
	some reason in watched_reasons(input.shell.commands[i], names)
}

# A nested shell, privilege escalation by any of the command's names, an
# interpreter in a call that also fetches from the network (downloading
# and running code), or an interpreter reading its program from a pipe.
watched_reasons(c, names) := ((
	{sprintf("%s starts a nested shell; send the inner command directly", [c.base]) |
		count(names & nested_shells) > 0
	} |
	{sprintf("privilege escalation (%s) is not allowed", [n]) | some n in names & privileged}) |
	{"downloading and running code is not allowed" |
		count(names & interpreters) > 0
		some f in input.shell.commands
		f.base in fetchers
	}) |
	{sprintf("%s reads a program from a pipe", [c.base]) |
		count(names & interpreters) > 0
		c.stdin_from_pipe
	}

# Secrets and start-up files, whether named in arguments or redirects.
# The patterns are matched on the words as written and on the paths
# shellfacts resolved (cleaned, against the working directory cd left,
# links followed, globs expanded), so /etc/./shadow, a link named
# innocent.txt or .en[v] are judged by the file they reach.
# One pattern per check: secrets (SSH material, .env files, private keys
# and key stores, credential files, cloud configuration, process secrets,
# system secrets),
secret_path(p) if regex.match(`(?:(^|/)\.ssh(/|$))|(?:(^|/)\.env(\.[^/]*)?$)|(?:(^|/)id_(rsa|dsa|ecdsa|ed25519)[^/]*$)|(?:(^|/)ssh_host_[^/]*_key$)|(?:\.(pem|key|p12|pfx|jks|keystore|kdbx)$)|(?:(^|/)\.(netrc|pgpass|git-credentials|npmrc|pypirc)$)|(?:(^|/)\.(aws|azure|gcloud|kube|docker|gnupg)(/|$))|(?:^/proc/[^/]+/(environ|cmdline|mem|maps)$)|(?:^/etc/(shadow|gshadow|sudoers))`, p)

# shell start-up files, git's configuration and hooks (they name programs
# git runs: a pager, a diff driver, an fsmonitor hook), key files for
# logins and system start-up,
startup_file(p) if regex.match(`(?:(^|/)\.(bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zprofile|zshenv|zlogin|inputrc|kshrc|cshrc|tcshrc|gitconfig)$)|(?:(^|/)\.config/(fish|git)/)|(?:(^|/)\.git/(config|hooks(/|$)))|(?:(^|/)authorized_keys2?$)|(?:^/etc/(profile|bash\.bashrc|environment|profile\.d/|cron|sudoers))`, p)

# suspect(p) holds for every path one of secret_path, startup_file and
# proc_private may match, and for few others: a dot file or directory, an
# id_ or ssh_host_ name, a key store suffix, authorized_keys, /proc or
# /etc. An ordinary path then costs one match instead of three. Keep it a
# superset of the three patterns (shell_test.rego checks it on every path
# the tests use).
suspect(p) if regex.match(suspect_pattern, p)

suspect_pattern := `(^|/)\.[^./]|id_|ssh_host_|\.(pem|key|p12|pfx|jks|keystore|kdbx)$|authorized_keys|^/proc|^/etc/`

# suspect_paths holds the suspect ones among the words of the call:
# input.shell.words lists every argument, every path found for a command
# or a redirection (as typed and resolved, except the entries a recursive
# reader finds below a directory, judged further down), and every
# redirection target. The match is written out rather than through
# suspect(p): it runs for every word, and a function call costs more than
# the match itself.
suspect_paths contains p if {
	some p in input.shell.words
	regex.match(suspect_pattern, p)
}

# A suspect path is denied as a secret file, a start-up or key file, or a
# process's private state, whichever it is (one rule, so that an ordinary
# call looks at suspect_paths once).
shell_deny contains reason if {
	some p in suspect_paths
	some reason in suspect_reasons(p)
}

suspect_reasons(p) := (
	{sprintf("%s refers to a secret file", [p]) | secret_path(p)} |
	{sprintf("%s is a shell start-up or key file and must not be touched", [p]) | startup_file(p)}) |
	{sprintf("%s is a process's private state under /proc", [p]) | proc_private(p)}

# A process's directory under /proc holds its environment, command line
# and memory (the guard's own among them, through /proc/self); /proc
# itself leads to all of them.
proc_private(p) if regex.match(`(?:^/proc/?$)|(?:^/proc/(self|thread-self|[0-9]+)(/|$))`, p)

# A recursive reader (grep -r, rg, diff -r) given a directory reads every
# file below it: a secret there needs approval rather than a denial, since
# a project's test keys and certificates are common. So does a tree too
# large for the guard to walk.
shell_approval contains reason if {
	some c in input.shell.commands
	some p in c.paths
	p.below
	some reason in below_reasons(c, p)
}

below_reasons(c, p) := {sprintf("%s reads %s, which looks like a secret, and needs approval", [c.base, p.resolved]) |
	some q in {p.resolved, p.arg}
	secret_or_startup(q)
} | {sprintf("%s reads every file below %s, too many for the guard to check, and needs approval", [c.base, p.arg]) |
	p.resolved == ""
}

secret_or_startup(p) if {
	suspect(p)
	secret_path(p)
}

secret_or_startup(p) if {
	suspect(p)
	startup_file(p)
}

secret_or_startup(p) if {
	suspect(p)
	proc_private(p)
}

# ---------------------------------------------------------------- paths outside the working directory

# Programs that never open their operands as files: their arguments are
# text, whatever they look like.
text_only_programs := {
	"echo", "printf", "basename", "dirname", "true", "false", "seq", "yes",
	"sleep", "pwd", "type", "command", "which", "uname", "whoami", "id",
	"nproc", "arch", "uptime", "free", "hostname", "env", "test", "[",
}

harmless_devices := {
	"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
	"/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/fd/0",
	"/dev/fd/1", "/dev/fd/2",
}

# The paths a command opens or lists: those of every command but the
# text-only ones, and of every redirection.
opened_paths contains p if {
	some c in input.shell.commands
	not c.base in text_only_programs
	some p in c.paths
}

opened_paths contains p if {
	some r in input.shell.redirects
	some p in r.paths
}

outside_path(p) if {
	not p.inside
	not p.resolved in harmless_devices
}

path_label(p) := p.resolved if p.resolved != ""

else := sprintf("%s (a path the guard could not resolve)", [p.arg])

shell_approval contains sprintf("%s is outside the working directory and needs approval", [path_label(p)]) if {
	some p in opened_paths
	outside_path(p)
}

# A hard link is another name for the same file, so a file with more
# than one cannot be judged by its name: it may be a secret under an
# innocent one.
shell_approval contains sprintf("%s has %d hard links (it may be a secret under another name) and needs approval", [p.resolved, p.links]) if {
	some p in opened_paths
	p.links > 1
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

# ---------------------------------------------------------------- options

# GNU getopt_long and git accept any unambiguous prefix of a long option
# (--out for --output, --comp for --compress-program), so long options are
# judged by prefix: long_opt(a, names) holds when a, before any "=", is at
# least three characters long and begins one of names. An ambiguous prefix
# is refused by the program, so counting it errs on the safe side.
long_opt(a, names) if {
	startswith(a, "--")
	n := split(a, "=")[0]
	count(n) >= 3
	some name in names
	startswith(name, n)
}

# short_opt(a, letters) holds when a is a cluster of short options (-xvf)
# holding one of letters anywhere. A letter that is really part of an
# attached value (-t/o) counts too, which errs on the safe side.
short_opt(a, letters) if {
	regex.match(`^-[^-]`, a)
	some l in split(letters, "")
	contains(substring(a, 1, -1), l)
}

# value_opt(a, shorts, longs) holds when the word after a is a's value: a
# short cluster whose first value-taking letter (one of shorts) ends it,
# or a long option (by prefix) without "=".
value_opt(a, shorts, longs) if {
	regex.match(`^-[^-]`, a)
	cs := split(substring(a, 1, -1), "")
	idx := [i | some i, ch in cs; contains(shorts, ch)]
	count(idx) > 0
	min(idx) == count(cs) - 1
}

value_opt(a, _, longs) if {
	not contains(a, "=")
	long_opt(a, longs)
}

# operands(args, shorts, longs) lists the words that may be operands. A
# word is left out only when it surely is an option or an option's value;
# when the word before could itself be a value (date -d -d x), the word
# counts as an operand, so the list errs large.
operands(args, shorts, longs) := [a |
	some i, a in args
	maybe_operand(args, i, shorts, longs)
]

maybe_operand(args, i, _, _) if {
	some j, x in args
	x == "--"
	j < i
}

maybe_operand(args, i, shorts, longs) if {
	a := args[i]
	not option_word(a)
	not surely_value(args, i, shorts, longs)
}

option_word(a) if {
	startswith(a, "-")
	a != "-"
}

surely_value(args, i, shorts, longs) if {
	value_opt(args[i - 1], shorts, longs)
	not maybe_value(args, i - 1, shorts, longs)
}

maybe_value(args, k, shorts, longs) if value_opt(args[k - 1], shorts, longs)

# ---------------------------------------------------------------- programs judged by their options

# The programs that have rules about their options below. Most commands
# (grep, head, cat) are none of these, so one check per command settles
# that their options need no look. Keep every program with a rule below
# in this list (policy/options_test.go checks it).
option_checked_programs := {
	"sort", "rg", "git", "find", "base64", "xxd", "date", "hostname",
	"uniq", "tree", "file", "ps", "env", "command", "wc", "du", "jq",
	"md5sum", "sha1sum", "sha256sum", "sha512sum", "strings",
	"ln", "cp", "install", "mv", "link", "rsync",
}

option_checked contains c if {
	some c in input.shell.commands
	c.base in option_checked_programs
}

# ---------------------------------------------------------------- new names for watched programs

# Copying or linking a shell, a privilege tool or an interpreter gives it a
# name the lists above do not hold: ln -s /bin/su s3 && ./s3 -c id runs su
# as s3, in the same call or a later one. It is denied as running it would
# be, judged on each operand as typed and on the file it resolves to
# (python3 resolves to python3.11). A program made another way
# (cat /bin/su > s3) is not found when the call is judged, so running it
# needs approval. The rule is reached through option_checked, so that an
# ordinary command pays nothing for it.
shell_deny contains sprintf("%s gives %s another name, under which it would run unrecognised", [c.base, p.resolved]) if {
	some c in option_checked
	c.base in {"ln", "cp", "install", "mv", "link", "rsync"}
	some p in c.paths
	some q in [p.arg, p.resolved]
	regex.replace(q, `^.*/`, "") in watched_names
}

# ---------------------------------------------------------------- options that run programs

# Options of read-only programs that run a program the caller names (or,
# for git grep -O, a pager). These are code execution, not reads.
program_options contains sprintf("sort %s", [a]) if {
	some c in option_checked
	c.base == "sort"
	some a in c.args
	long_opt(a, ["--compress-program"])
}

program_options contains sprintf("rg %s", [a]) if {
	some c in option_checked
	c.base == "rg"
	some a in c.args
	long_opt(a, ["--pre", "--hostname-bin"])
}

program_options contains sprintf("git %s", [a]) if {
	some c in option_checked
	c.base == "git"
	some a in c.args
	long_opt(a, git_program_options)
}

program_options contains sprintf("git grep %s", [a]) if {
	some c in option_checked
	c.base == "git"
	"grep" in c.args
	some a in c.args
	short_opt(a, "O")
}

git_program_options := [
	"--open-files-in-pager", "--exec-path", "--upload-pack",
	"--receive-pack", "--config-env", "--exec",
]

# A call without such programs stops at option_checked, before the four
# rules above are each tried on it.
shell_deny contains sprintf("%s runs a program named on the command line", [what]) if {
	option_checked[_]
	some what in program_options
}

# ---------------------------------------------------------------- options that write

# ---------------------------------------------------------------- options that read files no argument names

# sort, wc and du read the names of the files they open from a file, or
# from their input, with --files0-from; find reads its starting points so
# with -files0-from. The names never appear on the command line, so the
# guard cannot judge them: printf '.env\0' | sort --files0-from=- prints a
# secret file. file -f and --files-from, and the checksum programs' -c and
# --check (which open every file a list names), read names the same way;
# strings takes more arguments from the file an @FILE word names, and
# prints them back in its errors.
reads_unseen_names(c) if {
	c.base in {"sort", "wc", "du"}
	some a in c.args
	long_opt(a, ["--files0-from"])
}

reads_unseen_names(c) if {
	c.base == "find"
	some a in c.args
	a == "-files0-from"
}

reads_unseen_names(c) if {
	c.base == "file"
	some a in c.args
	file_reads_names(a)
}

file_reads_names(a) if short_opt(a, "f")

file_reads_names(a) if long_opt(a, ["--files-from"])

reads_unseen_names(c) if {
	c.base in {"md5sum", "sha1sum", "sha256sum", "sha512sum"}
	some a in c.args
	checksum_checks(a)
}

checksum_checks(a) if short_opt(a, "c")

checksum_checks(a) if long_opt(a, ["--check"])

reads_unseen_names(c) if {
	c.base == "strings"
	some a in c.args
	startswith(a, "@")
}

# jq opens the modules and data files its program names (import "path" as
# $m; include "path";), found on a library path that -L and
# --library-path change: files that never appear as arguments. A program
# read from a file (-f, --from-file) may hold such directives unseen. (A
# string in the program that holds the word import is held too.)
reads_unseen_names(c) if {
	c.base == "jq"
	some a in c.args
	jq_reads_modules(a)
}

jq_reads_modules(a) if regex.match(`(^|[^A-Za-z0-9_$])(import|include)([^A-Za-z0-9_]|$)`, a)

jq_reads_modules(a) if short_opt(a, "L")

jq_reads_modules(a) if long_opt(a, ["--library-path", "--from-file"])

jq_reads_modules(a) if short_opt(a, "f")

shell_approval contains sprintf("%s reads files whose names the command line does not show (from its input, a list file or its program), and needs approval", [c.base]) if {
	some c in option_checked
	reads_unseen_names(c)
}

# Options and operands that turn a read-only program into one that writes a
# file or changes the system; the full list, program by program, is in
# docs/policy.md.
unsafe_flag(c) if {
	c.base == "find"
	some a in c.args
	a in {"-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprint0", "-fprintf", "-fls"}
}

unsafe_flag(c) if {
	c.base == "sort"
	some a in c.args
	sort_writes(a)
}

# -o FILE writes the output; -T DIR and --compress-program write (and run)
# temporary files.
sort_writes(a) if short_opt(a, "oT")

sort_writes(a) if long_opt(a, ["--output", "--temporary-directory", "--compress-program"])

unsafe_flag(c) if {
	c.base in {"base64", "xxd"}
	some a in c.args
	a in {"-d", "--decode", "-r", "-revert"}
	input.shell.pipelines > 0
}

# date sets the clock with -s/--set, or with an operand that is not a
# +FORMAT (date MMDDhhmm[[CC]YY][.ss]).
date_shorts := "dfrs"

date_longs := ["--date", "--file", "--reference", "--set", "--rfc-3339"]

unsafe_flag(c) if {
	c.base == "date"
	some a in c.args
	date_sets(a)
}

date_sets(a) if short_opt(a, "s")

date_sets(a) if long_opt(a, ["--set"])

unsafe_flag(c) if {
	c.base == "date"
	some a in operands(c.args, date_shorts, date_longs)
	not startswith(a, "+")
}

# hostname NAME, -F/--file FILE and -b/--boot set the host name.
unsafe_flag(c) if {
	c.base == "hostname"
	some a in c.args
	not option_word(a)
}

unsafe_flag(c) if {
	c.base == "hostname"
	some a in c.args
	hostname_sets(a)
}

hostname_sets(a) if short_opt(a, "Fb")

hostname_sets(a) if long_opt(a, ["--file", "--boot"])

# uniq IN OUT writes OUT.
unsafe_flag(c) if {
	c.base == "uniq"
	count(operands(c.args, "fsw", ["--skip-fields", "--skip-chars", "--check-chars"])) > 1
}

# xxd IN OUT writes OUT. xxd has its own option parser (-c8, -cols 8), so
# every word that is not an option counts: a value then errs towards
# approval.
unsafe_flag(c) if {
	c.base == "xxd"
	count([a | some a in c.args; not option_word(a)]) > 1
}

# tree -o FILE writes the listing; -R writes 00Tree.html in every
# directory.
unsafe_flag(c) if {
	c.base == "tree"
	some a in c.args
	tree_writes(a)
}

tree_writes(a) if short_opt(a, "oR")

tree_writes(a) if long_opt(a, ["--output"])

# file -C compiles a magic file and writes NAME.mgc.
unsafe_flag(c) if {
	c.base == "file"
	some a in c.args
	file_compiles(a)
}

file_compiles(a) if short_opt(a, "C")

file_compiles(a) if long_opt(a, ["--compile"])

# ps prints every process's environment with the BSD e option (ps e,
# auxe, -ex, -axe: a cluster procps does not read as System V is read as
# BSD). Only the System V clusters below use e for "every process"; any
# other word holding an e needs approval, unless it is an option's value.
ps_e_clusters := {"-e", "-ef", "-eF", "-efw", "-efww", "-eFw", "-eFww", "-eH", "-efH", "-eFH", "-eLf", "-eLF", "-ejH", "-ely", "-el", "-elf", "-eo", "-eO"}

ps_value_options := {"-o", "-O", "o", "O", "-eo", "-eO", "-p", "p", "-q", "q", "-C", "-u", "-U", "U", "-g", "-G", "-t", "t", "-s", "--sort", "k", "--format", "--pid", "--ppid", "--user", "--User", "--group", "--Group", "--sid", "--tty", "--cols", "--columns", "--width", "--rows", "--lines"}

unsafe_flag(c) if {
	c.base == "ps"
	some i, a in c.args
	contains(a, "e")
	not startswith(a, "--")
	not a in ps_e_clusters
	not ps_value(c.args, i)
}

ps_value(args, i) if args[i - 1] in ps_value_options

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

# git options that write a file (--output), run the programs git's
# configuration names for diffs and filters, or read pathspecs or
# revisions from a file or the input (--pathspec-from-file, --stdin),
# where the guard cannot see them.
unsafe_flag(c) if {
	c.base == "git"
	some a in c.args
	long_opt(a, ["--output", "--ext-diff", "--textconv", "--filters", "--pathspec-from-file", "--stdin"])
}

# cat-file is left out: it prints any object by its id, a secret file's
# blob among them, and nothing about the id tells.
git_readonly_subcommands := {"status", "log", "diff", "show", "rev-parse", "ls-files", "blame", "describe", "shortlog", "grep", "ls-tree", "whatchanged"}

# A pathspec git matches itself (a quoted glob such as '**/.e*', or magic
# such as :(glob) and :(exclude)) or a REV:PATH names files the guard
# cannot resolve: their contents in the history may be secrets.
unsafe_flag(c) if {
	c.base == "git"
	some a in array.slice(c.args, 1, count(c.args))
	git_pathspec_unknown(a)
}

git_pathspec_unknown(a) if regex.match(`[*?\[]`, a)

git_pathspec_unknown(a) if startswith(a, ":")

git_pathspec_unknown(a) if {
	not startswith(a, "-")
	contains(a, ":")
}

git_readonly(c) if {
	count(c.args) > 0
	c.args[0] in git_readonly_subcommands
}

# git reflog alone or reflog show lists; reflog expire and delete rewrite
# the reflog.
git_readonly(c) if c.args == ["reflog"]

git_readonly(c) if {
	c.args[0] == "reflog"
	c.args[1] == "show"
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
#
# The first body is the common case written out: a listed program found in
# the target's PATH under a listed name. It implies the general body after
# it (trusted_location and resolved_ok each hold by their first body) and
# costs half as much, since it calls fewer functions; OPA stops at the
# first body that holds.
readonly_command(c) if {
	c.base in readonly_programs
	c.resolved_base in readonly_programs
	c.resolved != ""
	c.in_path == true
	not c.wrapper
	not unsafe_options(c)
}

readonly_command(c) if {
	c.base in readonly_programs
	trusted_location(c)
	resolved_ok(c)
	not unsafe_options(c)
	not c.wrapper
}

# One membership test sends a program without option rules past both
# kinds of option rule.
unsafe_options(c) if {
	c.base in option_checked_programs
	unsafe_or_unseen(c)
}

unsafe_or_unseen(c) if unsafe_flag(c)

unsafe_or_unseen(c) if reads_unseen_names(c)

# A program is trusted by name only where the target's PATH puts it: a
# file in the working directory named cat (./cat, or found through a
# relative PATH entry) is whatever its author wrote. A name with a slash
# that did not resolve (not found, or an ssh target) is not trusted
# either. (Here and in resolved_ok the common case comes first: OPA stops
# at the first body that holds.)
trusted_location(c) if {
	c.resolved != ""
	c.in_path == true
}

trusted_location(c) if {
	c.resolved == ""
	not contains(c.name, "/")
}

readonly_command(c) if {
	c.base in {"cd", "test", "[", "true", "false", "echo", "printf", "pwd", "type"}
	c.builtin
}

# A program resolved to a file of another name (a link to another program)
# is judged by that name too.
resolved_ok(c) if c.resolved_base in readonly_programs

resolved_ok(c) if c.resolved == ""

# Debian's alternatives: which resolves to which.debianutils, and so on.
resolved_ok(c) if startswith(c.resolved_base, concat("", [c.base, "."]))

# binutils installed for the host's target: strings resolves to
# x86_64-linux-gnu-strings.
resolved_ok(c) if endswith(c.resolved_base, concat("", ["-linux-gnu-", c.base]))

resolved_ok(c) if {
	c.base == "awk"
	c.resolved_base in {"mawk", "gawk", "original-awk"}
}

shell_approval contains sprintf("%s is not on the read-only list and needs approval", [c.base]) if {
	some c in input.shell.commands
	not readonly_command(c)
}

shell_approval contains sprintf("the command writes to %s and needs approval", [r.target]) if {
	some r in input.shell.redirects
	r.writes
}

allowed if {
	input.tool == "run_shell"
	input.shell.commands[_]
}
