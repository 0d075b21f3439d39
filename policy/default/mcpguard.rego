# The bundled default policy of mcp-guard.
#
# The guard asks for data.mcpguard.decision once per tool call. The input is
# described in docs/policy.md: the tool, the target (name, kind, labels), the
# caller (subject, issuer, email, groups), the validated arguments, and the
# facts the guard parsed (input.sql, input.shell or input.file).
#
# How the rules combine: any deny reason denies; otherwise any approval
# reason requires approval; otherwise the call is allowed only if a rule
# below allows it. Nothing allowed means deny: the policy fails closed.
package mcpguard

import rego.v1

decision := {
	"outcome": outcome,
	"reasons": reasons,
	"approval": approval_spec,
	"limits": limits,
	"mask": mask,
	"writes": writes,
	"detectors": [],
}

outcome := "deny" if count(deny) > 0
else := "approval" if count(approval) > 0
else := "allow" if allowed
else := "deny"

reasons := sort(deny) if count(deny) > 0
else := sort(approval) if count(approval) > 0
else := [] if allowed
else := ["no rule of the policy allows this call"]

default allowed := false

# ---------------------------------------------------------------- approvers

# Who approves: members of the "approvers" group, or "dba" for destructive
# statements on production. The guard resolves groups through the people
# directory in its configuration.
default approval_spec := {"groups": ["approvers"], "emails": [], "required": 1, "channel": "", "confirmable": false}

approval_spec := {"groups": ["dba"], "emails": [], "required": 2, "channel": "", "confirmable": false} if {
	input.tool == "query_database"
	prod
	count(sql_destructive) > 0
}

prod if input.target.labels.env in {"prod", "production"}

# ---------------------------------------------------------------- limits

# Zero keeps the ceilings from the configuration; a policy can only lower them.
default limits := {"max_rows": 0, "timeout_seconds": 0, "max_output_bytes": 0}

# ---------------------------------------------------------------- list_targets

allowed if input.tool == "list_targets"

# ---------------------------------------------------------------- query_database

# Writes run outside the read-only transaction only once approved.
default writes := false

writes if {
	input.tool == "query_database"
	not input.sql.read_only
	count(deny) == 0
}

deny contains "exactly one SQL statement is allowed per call" if {
	input.tool == "query_database"
	input.sql.statement_count != 1
}

# Statements that change the session or transaction, run opaque code, or
# reach the server's files and programs.
denied_sql_kinds := {
	"transaction": "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT) is not allowed: each call runs in its own transaction",
	"set": "changing settings (SET) is not allowed: it would outlive this call on a pooled connection",
	"reset": "RESET is not allowed: it changes session settings",
	"discard": "DISCARD is not allowed: it changes session state",
	"set_role": "changing the role (SET ROLE, SET SESSION AUTHORIZATION) is not allowed",
	"do": "anonymous code blocks (DO) are not allowed: the guard cannot see what they run",
	"copy_program": "COPY ... PROGRAM runs a program on the database server",
	"copy": "COPY reads or writes files on the database server; use SELECT instead",
	"listen": "LISTEN is not allowed: it reaches other sessions",
	"notify": "NOTIFY is not allowed: it reaches other sessions",
	"load": "LOAD is not allowed: it loads code into the server",
	"prepare": "PREPARE is not allowed: send the statement itself",
	"execute": "EXECUTE is not allowed: send the statement itself",
	"alter_system": "ALTER SYSTEM changes the server configuration",
}

deny contains msg if {
	input.tool == "query_database"
	some kind in input.sql.kinds
	msg := denied_sql_kinds[kind]
}

# Functions that reach the server's files, programs, other connections or
# other sessions, change settings, or stall the server. Matched on the bare
# name, whatever the schema or quoting.
denied_functions := {
	"pg_read_file", "pg_read_binary_file", "pg_stat_file", "pg_ls_dir",
	"pg_ls_logdir", "pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir",
	"pg_ls_logicalmapdir", "pg_ls_logicalsnapdir", "pg_ls_replslotdir",
	"pg_file_write", "pg_file_rename", "pg_file_unlink", "pg_file_sync",
	"lo_import", "lo_export", "lo_create", "lo_creat", "lo_unlink", "lo_put",
	"lo_from_bytea", "lo_open", "lowrite", "lo_truncate", "lo_truncate64",
	"pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
	"pg_rotate_logfile", "pg_promote", "pg_switch_wal",
	"pg_create_restore_point", "pg_log_backend_memory_contexts",
	"set_config", "pg_notify", "pg_sleep", "pg_sleep_for", "pg_sleep_until",
	"pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_xact_lock",
	"pg_advisory_xact_lock_shared", "pg_try_advisory_lock",
	"pg_logical_emit_message", "pg_replication_origin_create",
	"pg_create_logical_replication_slot", "pg_create_physical_replication_slot",
	"pg_drop_replication_slot", "query_to_xml", "query_to_xml_and_xmlschema",
	"query_to_xmlschema", "cursor_to_xml", "cursor_to_xmlschema",
	"pg_import_system_collations", "binary_upgrade_set_next_pg_type_oid",
}

deny contains sprintf("the function %s is not allowed: it reaches beyond this query (server files, programs, other sessions or settings)", [f]) if {
	input.tool == "query_database"
	some f in input.sql.function_names
	f in denied_functions
}

deny contains sprintf("the function %s is not allowed: it opens another database connection", [f]) if {
	input.tool == "query_database"
	some f in input.sql.function_names
	startswith(f, "dblink")
}

# Destructive statements: on a target labelled ddl=deny they are refused,
# elsewhere they need approval.
sql_destructive contains "DDL" if "ddl" in input.sql.kinds

sql_destructive contains "TRUNCATE" if "truncate" in input.sql.kinds

sql_destructive contains "UPDATE or DELETE without WHERE" if input.sql.write_without_where

deny contains sprintf("%s is not allowed on target %s", [what, input.target.name]) if {
	input.tool == "query_database"
	input.target.labels.ddl == "deny"
	some what in sql_destructive
}

approval contains sprintf("%s on production target %s needs approval by the DBAs", [what, input.target.name]) if {
	input.tool == "query_database"
	prod
	some what in sql_destructive
}

approval contains sprintf("this statement writes (%s) and needs approval", [concat(", ", sort(write_kinds))]) if {
	input.tool == "query_database"
	not input.sql.read_only
	count(write_kinds) > 0
}

approval contains "this statement does not only read and needs approval" if {
	input.tool == "query_database"
	not input.sql.read_only
	count(write_kinds) == 0
}

read_kinds := {"select", "explain", "show"}

write_kinds := {k | some k in input.sql.kinds; not k in read_kinds}

allowed if {
	input.tool == "query_database"
	input.sql.read_only
}

# Mask by where data comes from, not by the output name: the guard follows
# each output column to its source table and column.
default mask := []

mask := [
	{"table": "*", "column": "email", "strategy": "redact", "keep": 0, "transformed": "mask"},
	{"table": "*", "column": "card_number", "strategy": "last", "keep": 4, "transformed": "mask"},
	{"table": "*", "column": "token", "strategy": "redact", "keep": 0, "transformed": "mask"},
	{"table": "*", "column": "api_token", "strategy": "redact", "keep": 0, "transformed": "mask"},
	{"table": "*", "column": "password", "strategy": "redact", "keep": 0, "transformed": "mask"},
	{"table": "*", "column": "password_hash", "strategy": "redact", "keep": 0, "transformed": "mask"},
] if input.tool == "query_database"
