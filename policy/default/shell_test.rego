# Tests of the shell rules: options that run or write, paths outside the
# working directory, secrets reached by another spelling, and programs
# that only look like read-only ones. Each attack has a control beside it.
package mcpguard_test

import rego.v1

import data.mcpguard

shell_target := {"name": "local", "kind": "shell", "labels": {}}

# sh_cmd is a command as shellfacts reports it for a program found in
# /usr/bin, one of the target's PATH directories.
sh_cmd(name, args) := {
	"name": name, "base": name, "resolved": concat("", ["/usr/bin/", name]),
	"resolved_base": base_name(name), "in_path": true, "args": args, "paths": [],
	"builtin": false, "dynamic": false, "opaque": false, "stdin_from_pipe": false,
}

base_name(p) := regex.replace(p, `^.*/`, "")

# indexed adds the lists the guard derives from the commands and
# redirections, words and programs, as shellfacts builds them.
indexed(sh) := object.union(sh, {
	"words": [w | some w in word_set(sh.commands, sh.redirects)],
	"programs": [n | some n in program_set(sh.commands)],
})

word_set(commands, redirects) := (({w | some c in commands; some w in c.args} |
	{w | some c in commands; some p in object.get(c, "paths", []); not p.below; some w in [p.arg, p.resolved]; w != ""}) |
	{w | some r in redirects; some w in [r.target, object.get(r, "resolved_target", "")]; w != ""}) |
	{w | some r in redirects; some p in object.get(r, "paths", []); some w in [p.arg, p.resolved]; w != ""}

program_set(commands) := {n | some c in commands; some n in [c.name, c.base, c.resolved_base]; n != ""}

sh_input(commands, extra) := {
	"tool": "run_shell", "target": shell_target, "caller": {"subject": "t", "issuer": "", "email": "", "groups": []},
	"arguments": {"target": "local", "command": "..."},
	"shell": indexed(object.union(
		{
			"commands": commands, "redirects": [], "pipelines": 0, "lists": 0,
			"background": false, "substitutions": false, "assignments": [],
			"changes_environment": false, "dynamic": false, "function_defs": false,
		},
		extra,
	)),
}

sh_outcome(commands) := o if {
	d := mcpguard.decision with input as sh_input(commands, {})
	o := d.outcome
}

# ---------------------------------------------------------------- option helpers

test_long_opt_matches_unique_prefixes if {
	mcpguard.long_opt("--output=x", ["--output"])
	mcpguard.long_opt("--out", ["--output"])
	mcpguard.long_opt("--comp=sh", ["--compress-program"])
	not mcpguard.long_opt("--", ["--output"])
	not mcpguard.long_opt("--output-indicator-new=x", ["--output"])
	not mcpguard.long_opt("-o", ["--output"])
}

test_operands_skip_option_values if {
	mcpguard.operands(["-d", "yesterday", "+%F"], "dfrs", ["--date"]) == ["+%F"]
	mcpguard.operands(["--date", "x", "0101"], "dfrs", ["--date"]) == ["0101"]
	mcpguard.operands(["-d", "-d", "0101"], "dfrs", ["--date"]) == ["0101"]
	mcpguard.operands(["--", "-x"], "dfrs", ["--date"]) == ["-x"]
}

# ---------------------------------------------------------------- options that run or write

test_git_output_and_abbreviations_need_approval if {
	every args in [
		["show", "--no-patch", "--output=/tmp/x/out.txt"],
		["diff", "--no-index", "--outp=/tmp/pw", "a", "b"],
		["log", "--ou", "x"],
		["log", "-p", "--ext-diff"],
		["diff", "--textc"],
		["cat-file", "--filters", "HEAD:x"],
		["reflog", "expire", "--expire=now", "--all"],
		["reflog", "delete", "HEAD@{1}"],
	] {
		sh_outcome([sh_cmd("git", args)]) == "approval"
	}
}

test_git_options_that_run_programs_denied if {
	every args in [
		["grep", "--open-files-i=touch x", "Makefile"],
		["grep", "-nOtouch", "x"],
		["log", "--exec-p=/tmp"],
		["log", "--config-e=a=b"],
	] {
		sh_outcome([sh_cmd("git", args)]) == "deny"
	}
}

test_git_reads_still_allowed if {
	every args in [["reflog"], ["reflog", "show", "--all"], ["log", "--oneline"], ["diff", "--exit-code"], ["grep", "-n", "TODO"]] {
		sh_outcome([sh_cmd("git", args)]) == "allow"
	}
}

test_sort_compress_program_denied if {
	sh_outcome([sh_cmd("sort", ["-S", "1", "--compress-program=sh"])]) == "deny"
	sh_outcome([sh_cmd("sort", ["--comp=sh"])]) == "deny"
}

test_sort_writes_need_approval if {
	every args in [["--out=x", "f"], ["--outp", "x", "f"], ["-uo", "x", "f"], ["-T", ".", "f"]] {
		sh_outcome([sh_cmd("sort", args)]) == "approval"
	}
	sh_outcome([sh_cmd("sort", ["-u", "-k1,1", "f"])]) == "allow"
}

test_date_setting_the_clock_needs_approval if {
	every args in [["010100002030"], ["-u", "010100002030"], ["--se=2030-01-01"], ["-us", "x"]] {
		sh_outcome([sh_cmd("date", args)]) == "approval"
	}
	every args in [["+%F"], ["-d", "yesterday", "+%F"], ["-r", "notes.txt"], ["--date=@0"]] {
		sh_outcome([sh_cmd("date", args)]) == "allow"
	}
}

test_hostname_setting_needs_approval if {
	every args in [["--file=/etc/hostname"], ["--fi", "/etc/hostname"], ["-F/etc/hostname"], ["-b"], ["evil"]] {
		sh_outcome([sh_cmd("hostname", args)]) == "approval"
	}
	sh_outcome([sh_cmd("hostname", ["-f"])]) == "allow"
}

test_ps_printing_environments_needs_approval if {
	every args in [["auxe"], ["e"], ["-ex"], ["-axe"], ["-et"], ["eww"]] {
		sh_outcome([sh_cmd("ps", args)]) == "approval"
	}
	every args in [["-ef"], ["aux"], ["-eo", "pid,user,etime,args"], ["-C", "sleep"]] {
		sh_outcome([sh_cmd("ps", args)]) == "allow"
	}
}

test_rg_preprocessor_denied if {
	sh_outcome([sh_cmd("rg", ["--pre=./x", "foo"])]) == "deny"
	sh_outcome([sh_cmd("rg", ["--hostname-bin=./x", "foo"])]) == "deny"
	sh_outcome([sh_cmd("rg", ["-n", "TODO"])]) == "allow"
}

test_tree_file_uniq_writes_need_approval if {
	sh_outcome([sh_cmd("tree", ["-ao", "out.txt"])]) == "approval"
	sh_outcome([sh_cmd("tree", ["-R", "-H", "."])]) == "approval"
	sh_outcome([sh_cmd("file", ["--comp", "-m", "x"])]) == "approval"
	sh_outcome([sh_cmd("uniq", ["a", "b"])]) == "approval"
	sh_outcome([sh_cmd("uniq", ["-f", "1", "a"])]) == "allow"
	sh_outcome([sh_cmd("tree", ["-a", "-L", "2"])]) == "allow"
}

# ---------------------------------------------------------------- paths

sh_path(arg, resolved, inside) := {"arg": arg, "resolved": resolved, "inside": inside, "exists": true, "links": 1, "glob": false}

with_paths(c, paths) := object.union(c, {"paths": paths})

test_resolved_secret_denied_whatever_the_spelling if {
	every p in [
		sh_path("/etc/./shadow", "/etc/shadow", false),
		sh_path("innocent.txt", "/w/.env", true),
		sh_path(".en[v]", "/w/.env", true),
		sh_path("i*", "/w/.ssh/id_rsa", true),
		sh_path(".ssh", "/w/.ssh", true),
		sh_path("environ", "/proc/4242/environ", false),
		sh_path("/proc/self/", "/proc/4242", false),
		sh_path("proc", "/proc", false),
		sh_path("x", "/etc/ssh/ssh_host_ed25519_key", false),
	] {
		sh_outcome([with_paths(sh_cmd("cat", [p.arg]), [p])]) == "deny"
	}
}

test_bare_ssh_directory_argument_denied if sh_outcome([sh_cmd("ls", [".ssh"])]) == "deny"

test_option_value_into_cron_denied if {
	p := sh_path("/etc/cron.d/x", "/etc/cron.d/x", false)
	sh_outcome([with_paths(sh_cmd("git", ["show", "--output=/etc/cron.d/x"]), [p])]) == "deny"
}

test_outside_the_workdir_needs_approval if {
	every p in [
		sh_path("../x", "/x", false),
		sh_path("~root/x", "", false),
		sh_path("/etc/hostname", "/etc/hostname", false),
	] {
		sh_outcome([with_paths(sh_cmd("cat", [p.arg]), [p])]) == "approval"
	}
	sh_outcome([with_paths(object.union(sh_cmd("cd", ["/tmp"]), {"builtin": true, "resolved": "", "in_path": false}), [sh_path("/tmp", "/tmp", false)])]) == "approval"
}

test_outside_input_redirect_needs_approval if {
	r := {"op": "<", "target": "/etc/hostname", "resolved_target": "/etc/hostname", "writes": false, "paths": [sh_path("/etc/hostname", "/etc/hostname", false)]}
	d := mcpguard.decision with input as sh_input([sh_cmd("cat", [])], {"redirects": [r]})
	d.outcome == "approval"
}

test_text_only_programs_and_devices_stay_allowed if {
	sh_outcome([with_paths(sh_cmd("echo", ["/etc/passwd"]), [sh_path("/etc/passwd", "/etc/passwd", false)])]) == "allow"
	sh_outcome([with_paths(sh_cmd("diff", ["a", "/dev/null"]), [sh_path("/dev/null", "/dev/null", false)])]) == "allow"
	sh_outcome([with_paths(sh_cmd("cat", ["notes.txt"]), [sh_path("notes.txt", "/w/notes.txt", true)])]) == "allow"
}

test_hard_linked_file_needs_approval if {
	p := object.union(sh_path("hard_env", "/w/hard_env", true), {"links": 2})
	sh_outcome([with_paths(sh_cmd("cat", ["hard_env"]), [p])]) == "approval"
}

# ---------------------------------------------------------------- programs outside PATH

test_program_in_the_workdir_is_not_read_only if {
	sh_outcome([object.union(sh_cmd("./cat", ["x"]), {"base": "cat", "resolved": "/w/cat", "in_path": false})]) == "approval"
	sh_outcome([object.union(sh_cmd("cat", ["x"]), {"resolved": "/w/cat", "in_path": false})]) == "approval"
	sh_outcome([object.union(sh_cmd("./cat", ["x"]), {"base": "cat", "resolved": "", "in_path": false})]) == "approval"
	sh_outcome([object.union(sh_cmd("/usr/bin/cat", ["x"]), {"base": "cat"})]) == "allow"
	sh_outcome([object.union(sh_cmd("cat", ["x"]), {"resolved": "", "in_path": false})]) == "allow"
}

# ---------------------------------------------------------------- recursive readers

test_secret_below_a_walked_directory_needs_approval if {
	p := object.union(sh_path("./.env", "/w/.env", true), {"below": true})
	sh_outcome([with_paths(sh_cmd("grep", ["-r", "x", "."]), [sh_path(".", "/w", true), p])]) == "approval"
	sh_outcome([with_paths(sh_cmd("grep", ["-r", "x", "."]), [sh_path(".", "/w", true)])]) == "allow"
}

test_tree_too_large_to_walk_needs_approval if {
	p := {"arg": ".", "resolved": "", "inside": false, "exists": false, "links": 0, "glob": false, "below": true}
	sh_outcome([with_paths(sh_cmd("rg", ["x"]), [p])]) == "approval"
}

# ---------------------------------------------------------------- the path prefilter

# One path per alternative of secret_path, startup_file and proc_private,
# spelled as written and as resolved: suspect must hold for each, or the
# prefilter would hide it from the rules behind it.
pattern_samples := [
	".ssh", "/home/u/.ssh/config", ".env", "a/.env.local", "id_rsa", "/k/id_ed25519.pub",
	"/etc/ssh/ssh_host_rsa_key", "cert.pem", "x/server.key", "a.p12", "b.pfx", "c.jks",
	"d.keystore", "e.kdbx", ".netrc", "/h/.pgpass", ".git-credentials", "a/.npmrc",
	".pypirc", ".aws/credentials", "/h/.azure", ".gcloud/x", "/h/.kube/config",
	".docker/config.json", ".gnupg", "/proc/1/environ", "/proc/self/cmdline",
	"/proc/9/mem", "/proc/9/maps", "/etc/shadow", "/etc/gshadow", "/etc/sudoers.d/x",
	".bashrc", "/h/.bash_profile", ".bash_login", ".bash_logout", ".profile", ".zshrc",
	".zprofile", ".zshenv", ".zlogin", ".inputrc", ".kshrc", ".cshrc", ".tcshrc",
	"/h/.config/fish/config.fish", "authorized_keys", "/h/.ssh/authorized_keys2",
	"/etc/profile", "/etc/bash.bashrc", "/etc/environment", "/etc/profile.d/a.sh",
	"/etc/crontab", "/etc/cron.d/x", "/proc", "/proc/", "/proc/self", "/proc/thread-self/x",
	".gitconfig", "/h/.config/git/config", "repo/.git/config", ".git/hooks/post-checkout",
	"/proc/42",
]

any_pattern(p) if mcpguard.secret_path(p)

any_pattern(p) if mcpguard.startup_file(p)

any_pattern(p) if mcpguard.proc_private(p)

test_every_sample_matches_a_pattern if {
	missing := [p | some p in pattern_samples; not any_pattern(p)]
	missing == []
}

test_suspect_covers_every_pattern if {
	hidden := [p | some p in pattern_samples; not mcpguard.suspect(p)]
	hidden == []
}

test_ordinary_paths_are_not_suspect if {
	not mcpguard.suspect(".")
	not mcpguard.suspect("./src/main.go")
	not mcpguard.suspect("../notes.txt")
	not mcpguard.suspect("/work/reports/q3.txt")
}

# ---------------------------------------------------------------- git's reach

test_git_reading_unresolvable_files_needs_approval if {
	every args in [
		["cat-file", "-p", "5b1f0c9e"],
		["log", "-p", "--format=", "--", ":(glob)**/.e*"],
		["log", "-p", "--", "*.env"],
		["show", "HEAD:.env.local"],
		["show", "HEAD~3:config/app.yml"],
		["diff", "HEAD", "--", ":!README.md"],
	] {
		sh_outcome([sh_cmd("git", args)]) == "approval"
	}
	sh_outcome([sh_cmd("git", ["log", "-p", "--", "src/main.go"])]) == "allow"
	sh_outcome([sh_cmd("git", ["show", "--stat", "HEAD~1"])]) == "allow"
	sh_outcome([sh_cmd("git", ["diff", "--name-only"])]) == "allow"
}

test_git_configuration_is_a_start_up_file if {
	every p in [".gitconfig", "/w/.gitconfig", ".git/config", "sub/.git/hooks/pre-commit", ".config/git/config", ".git/hooks"] {
		mcpguard.startup_file(p)
	}
	not mcpguard.startup_file(".gitignore")
	not mcpguard.startup_file(".github/workflows/ci.yml")
	not mcpguard.startup_file("src/git/config.go")
}

test_run0_is_privilege_escalation if {
	sh_outcome([sh_cmd("run0", ["id"])]) == "deny"
}

test_target_prefixed_binutils_are_read_only if {
	c := object.union(sh_cmd("strings", ["README.md"]), {"resolved": "/usr/bin/x86_64-linux-gnu-strings", "resolved_base": "x86_64-linux-gnu-strings"})
	sh_outcome([c]) == "allow"
	d := object.union(sh_cmd("strings", ["README.md"]), {"resolved": "/usr/bin/evil", "resolved_base": "evil"})
	sh_outcome([d]) == "approval"
}

# watched_names is written out for speed; it must stay the union of the
# lists it stands for.
test_watched_names_is_the_union_of_the_lists if {
	mcpguard.watched_names == (mcpguard.nested_shells | mcpguard.privileged) | mcpguard.interpreters
}

# File names read from a file or the input never appear on the command
# line; the listed options need approval, the plain programs stay allowed.
test_file_lists_read_from_input_need_approval if {
	every args in [
		["sort", ["--files0-from=-"]], ["sort", ["--files0-from", "list"]], ["sort", ["--files0=-"]],
		["wc", ["-l", "--files0-from=-"]], ["du", ["--files0-from=names"]],
		["find", ["-files0-from", "-"]], ["file", ["-f", "-"]], ["file", ["-bf-"]],
		["file", ["--files-from", "names"]],
		["jq", ["-n", "import \"../outside/notes\" as $k; $k"]],
		["jq", ["-n", "include \"lib\"; f"]], ["jq", ["-L", "/tmp", "-n", "1"]],
		["jq", ["-nL/tmp", "1"]], ["jq", ["--library-path", "/tmp", "."]],
		["jq", ["-f", "prog.jq", "data.json"]], ["jq", ["--from-file", "prog.jq"]],
		["git", ["diff", "--pathspec-from-file=-"]], ["git", ["log", "-p", "--stdin"]],
		["strings", ["@args.txt"]], ["sha256sum", ["-c"]], ["md5sum", ["--check", "-"]],
		["sha1sum", ["--ignore-missing", "-c", "sums"]],
	] {
		d := mcpguard.decision with input as sh_input([sh_cmd(args[0], args[1])], {})
		d.outcome == "approval"
	}
	every args in [
		["sort", ["-u", "notes.txt"]], ["wc", ["-l", "notes.txt"]], ["du", ["-sh", "."]],
		["find", [".", "-name", "*.go"]], ["file", ["-b", "notes.txt"]],
		["jq", ["-r", ".items[] | .important", "data.json"]],
		["jq", [".imports | length", "data.json"]], ["git", ["log", "--stat"]],
		["strings", ["-n", "8", "notes.txt"]], ["sha256sum", ["notes.txt"]],
	] {
		d := mcpguard.decision with input as sh_input([sh_cmd(args[0], args[1])], {})
		d.outcome == "allow"
	}
}

# The approval names what is wrong, not only that the program left the
# read-only list.
test_unseen_names_give_their_reason if {
	d := mcpguard.decision with input as sh_input([sh_cmd("sort", ["--files0-from=-"])], {})
	some r in d.reasons
	contains(r, "reads files whose names the command line does not show")
}

# ---------------------------------------------------------------- new names for watched programs

test_linking_or_copying_a_watched_program_is_denied if {
	every c in [
		with_paths(sh_cmd("ln", ["-s", "/bin/su", "s3"]), [sh_path("/bin/su", "/usr/bin/su", false)]),
		with_paths(sh_cmd("cp", ["/usr/bin/sudo", "x"]), [sh_path("/usr/bin/sudo", "/usr/bin/sudo", false)]),
		with_paths(sh_cmd("ln", ["/bin/sh", "view"]), [sh_path("/bin/sh", "/usr/bin/dash", false)]),
		with_paths(sh_cmd("install", ["/usr/bin/python3", "py"]), [sh_path("/usr/bin/python3", "/usr/bin/python3.11", false)]),
		with_paths(sh_cmd("rsync", ["/usr/bin/doas", "d"]), [sh_path("/usr/bin/doas", "/usr/bin/doas", false)]),
	] {
		sh_outcome([c]) == "deny"
	}
}

test_linking_an_ordinary_file_is_not_denied if {
	sh_outcome([with_paths(sh_cmd("ln", ["-s", "notes.txt", "n2"]), [sh_path("notes.txt", "/w/notes.txt", true)])]) == "approval"
}
