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
#
# Rules compare the input's flags with true or false instead of testing
# them bare: OPA's rule index then skips a rule whose flag does not match
# without evaluating it. A missing flag matches neither, so a call without
# facts is still allowed by nothing.
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
} if [outcome, reasons] := verdict

# verdict is the outcome with its reasons, settled in one pass over the
# deny and approval sets.
verdict := ["deny", sort(deny)] if count(deny) > 0
else := ["approval", sort(approval)] if count(approval) > 0
else := ["allow", []] if allowed
else := ["deny", ["no rule of the policy allows this call"]]

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

# The SQL rules add to sql_deny and sql_approval, which count for
# query_database calls only: the tool is checked once here, and calls to
# other tools never evaluate the SQL rules.
deny contains reason if {
	input.tool == "query_database"
	some reason in sql_deny
}

approval contains reason if {
	input.tool == "query_database"
	some reason in sql_approval
}

# Writes run outside the read-only transaction only once approved.
default writes := false

writes if {
	input.tool == "query_database"
	input.sql.read_only == false
	count(deny) == 0
}

sql_deny contains "exactly one SQL statement is allowed per call" if {
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

sql_deny contains msg if {
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
	"pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
	"pg_rotate_logfile", "pg_promote", "pg_switch_wal",
	"pg_create_restore_point", "pg_log_backend_memory_contexts",
	"set_config", "pg_notify", "pg_sleep", "pg_sleep_for", "pg_sleep_until",
	"pg_logical_emit_message", "pg_import_system_collations",
	"binary_upgrade_set_next_pg_type_oid",
}

# Functions whose whole business is one of the families above, denied by
# the start of their bare name: large objects (server-side files of any
# content, read around the column masking), advisory locks (held across
# sessions; the unlocking and "try" forms included), replication slots and
# origins (logical decoding reads every change of every table), server
# file listings, and other connections (dblink, with its own message).
denied_function_prefixes := {
	"lo_", "pg_advisory", "pg_try_advisory", "pg_logical_slot_",
	"pg_replication_origin_", "pg_replication_slot_", "pg_ls_", "pg_file_",
	"pg_create_logical_replication_slot", "pg_create_physical_replication_slot",
	"pg_copy_logical_replication_slot", "pg_copy_physical_replication_slot",
	"pg_drop_replication_slot",
}

# Large-object calls that do not start with lo_.
denied_functions_extra := {"loread", "lowrite"}

# Built-ins that run SQL given as text: the guard checks the statement it
# is sent, not a statement hidden in a string, so any of these would run
# what the policy denies (pg_read_file, pg_terminate_backend, dblink_exec)
# as a read.
sql_text_functions := {
	"query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema",
	"cursor_to_xml", "cursor_to_xmlschema", "ts_stat", "ts_rewrite",
}

# Built-ins and common extension functions that read whole tables,
# schemas, databases, other sessions or server files by name, where the
# guard cannot follow columns to mask them: the *_to_xml family, the
# functions behind pg_stat_activity, pg_stat_statements, the file settings
# and HBA views, extended statistics values, and raw pages (pageinspect).
table_reading_functions := {
	"table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema",
	"schema_to_xml", "schema_to_xmlschema", "schema_to_xml_and_xmlschema",
	"database_to_xml", "database_to_xmlschema",
	"database_to_xml_and_xmlschema", "pg_stat_get_activity",
	"pg_stat_statements", "pg_show_all_file_settings", "pg_hba_file_rules",
	"pg_ident_file_mappings", "pg_mcv_list_items", "pg_get_wal_block_info",
	"get_raw_page", "heap_page_items", "heap_page_item_attrs",
	"tuple_data_split", "bt_page_items", "brin_page_items",
	"gist_page_items", "gin_leafpage_items", "hash_page_items",
}

# The functions behind pg_stat_activity one backend at a time: other
# sessions' queries, users and client addresses.
table_reading_prefixes := {"pg_stat_get_backend_"}

sql_deny contains sprintf("the function %s is not allowed: it reaches beyond this query (server files, programs, other sessions or settings)", [f]) if {
	some f in input.sql.function_names
	beyond_query_function(f)
}

beyond_query_function(f) if f in denied_functions

beyond_query_function(f) if f in denied_functions_extra

beyond_query_function(f) if {
	some p in denied_function_prefixes
	startswith(f, p)
}

sql_deny contains sprintf("the function %s is not allowed: it runs SQL given as text, which the guard cannot check", [f]) if {
	some f in input.sql.function_names
	f in sql_text_functions
}

sql_deny contains sprintf("the function %s is not allowed: it reads whole tables, other sessions or server settings around the column masking", [f]) if {
	some f in input.sql.function_names
	table_reading_function(f)
}

table_reading_function(f) if f in table_reading_functions

table_reading_function(f) if {
	some p in table_reading_prefixes
	startswith(f, p)
}

sql_deny contains sprintf("the function %s is not allowed: it opens another database connection", [f]) if {
	some f in input.sql.function_names
	startswith(f, "dblink")
}

# Catalogue tables and views that expose other sessions, password hashes,
# user-mapping and subscription credentials, large objects, server
# configuration files, or the values of columns (pg_stats holds the most
# common values and histogram bounds of every column, masked or not).
# Matched on the bare relation name, whatever the schema.
denied_tables := {
	"pg_stats", "pg_stats_ext", "pg_stats_ext_exprs", "pg_statistic",
	"pg_statistic_ext_data", "pg_stat_activity", "pg_authid", "pg_shadow",
	"pg_user_mapping", "pg_user_mappings", "user_mapping_options",
	"_pg_user_mappings", "pg_subscription", "pg_largeobject",
	"pg_file_settings", "pg_hba_file_rules", "pg_ident_file_mappings",
	"pg_stat_statements",
}

sql_deny contains sprintf("reading %s is not allowed: it exposes other sessions, credentials, server files or column values around the masking", [t]) if {
	some rel in array.concat(input.sql.tables_read, input.sql.tables_written)
	t := bare_relation(rel)
	t in denied_tables
}

# bare_relation drops the schema from a relation as sqlfacts writes it.
# A part with a dot in it is quoted, so its last piece keeps a quote and
# names no catalogue table.
bare_relation(rel) := regex.replace(rel, `^.*[.]`, "")

# Destructive statements: on a target labelled ddl=deny they are refused,
# elsewhere they need approval.
sql_destructive contains "DDL" if "ddl" in input.sql.kinds

sql_destructive contains "TRUNCATE" if "truncate" in input.sql.kinds

sql_destructive contains "UPDATE or DELETE without WHERE" if input.sql.write_without_where

sql_deny contains sprintf("%s is not allowed on target %s", [what, input.target.name]) if {
	input.target.labels.ddl == "deny"
	some what in sql_destructive
}

sql_approval contains sprintf("%s on production target %s needs approval by the DBAs", [what, input.target.name]) if {
	prod
	some what in sql_destructive
}

sql_approval contains sprintf("this statement writes (%s) and needs approval", [concat(", ", sort(write_kinds))]) if {
	input.sql.read_only == false
	count(write_kinds) > 0
}

sql_approval contains "this statement does not only read and needs approval" if {
	input.sql.read_only == false
	count(write_kinds) == 0
}

read_kinds := {"select", "explain", "show"}

write_kinds := {k | some k in input.sql.kinds; not k in read_kinds}

allowed if {
	input.tool == "query_database"
	input.sql.read_only == true
}

# A masked column used anywhere but as an output value (WHERE, JOIN,
# GROUP BY, HAVING, ORDER BY, DISTINCT ON, a window, LIMIT, a CASE
# condition, a subquery's condition, a function in FROM, a value stored)
# decides which rows come back, so its value can be guessed one query or
# one row at a time even though the column itself comes back masked:
#   WHERE ascii(substr(api_token, g, 1)) = n   spells the token in 40 rows,
#   WHERE email = 'x@y'                         says whether the value exists.
# The rule takes no exception, not even a join of two masked columns: a
# join on email tells which emails two tables share.
sql_deny contains sprintf("the masked column %s.%s is used outside the select list (to filter, join, group, sort, limit or store rows): that lets its value be guessed one query at a time; select it instead (it comes back masked) or filter on another column", [ref.table, ref.column]) if {
	filter_suspect
	some ref in input.sql.filter_columns
	ref.table != ""
	ref.column != "*"
	mask_may_cover(ref.column)
	some rule in mask
	mask_table_matches(rule.table, ref.table)
	mask_column_matches(rule.column, ref.column)
}

# mask_may_cover(column) holds when some mask rule names column, or any
# column: one set lookup settles an ordinary filter column, before the
# rules are matched one by one.
mask_may_cover(_) if "*" in mask_column_names

mask_may_cover(column) if lower(column) in mask_column_names

# mask_column_names is {lower(rule.column) | some rule in mask} written out,
# since OPA would build that set again on every call; sql_test.rego checks
# that the two agree, so name a column added to mask here too.
mask_column_names := {"email", "card_number", "token", "api_token", "password", "password_hash"}

# filter_suspect holds when a filter column may meet a mask rule: its name
# is one a rule names, a rule names any column, it is a whole row, or its
# table is unknown. Most statements filter on ids, dates and states, and
# this settles them with two set operations instead of matching every
# filter column against every rule.
filter_suspect if count(filter_column_names & mask_column_names) > 0

filter_suspect if "*" in filter_column_names

filter_suspect if {
	"*" in mask_column_names
	count(input.sql.filter_columns) > 0
}

filter_suspect if {
	some ref in input.sql.filter_columns
	ref.table == ""
}

filter_column_names := {lower(ref.column) | some ref in input.sql.filter_columns}

sql_deny contains sprintf("a whole row of %s is used outside the select list: it may hold a masked column, whose value could then be guessed; name the columns instead", [ref.table]) if {
	filter_suspect
	some ref in input.sql.filter_columns
	ref.table != ""
	ref.column == "*"
	some rule in mask
	mask_table_matches(rule.table, ref.table)
}

sql_deny contains sprintf("the guard cannot tell which table the column %s used outside the select list comes from, and the statement reads %s, which may hold masked columns; qualify the column with its table", [ref.column, t]) if {
	filter_suspect
	some ref in input.sql.filter_columns
	ref.table == ""
	some t in input.sql.tables_read
	some rule in mask
	mask_table_matches(rule.table, t)
}

# A masked column inside an expression that can fail (a division, a cast,
# a function given a number computed from it, a subquery) lets the
# statement's success or failure say something about the value, one query
# at a time: SELECT 1/(ascii(email)-97) fails only when the email starts
# with "a". Over a masked column only calls that cannot fail are allowed;
# the value then comes back masked whole.
calls_safe_over_masked := {
	"lower", "upper", "initcap", "length", "char_length", "octet_length",
	"bit_length", "count", "max", "min", "btrim", "trim", "ltrim", "rtrim",
	"reverse", "md5", "concat", "concat_ws", "coalesce", "nullif", "op:||",
	"string_agg", "array_agg", "json_agg", "jsonb_agg", "to_json",
	"to_jsonb", "row_to_json", "json_build_array", "jsonb_build_array",
	"quote_literal", "quote_nullable", "quote_ident",
}

# json_build_object and its kin are left out: a null key fails.

sql_deny contains sprintf("the masked column %s.%s goes through %s, which may fail depending on its value, and whether the statement fails would tell something about the value; select the column itself (it comes back masked)", [src.table, src.column, call]) if {
	some out in input.sql.output_columns
	not out.direct
	some call in out.calls
	not call in calls_safe_over_masked
	some src in out.sources
	src.column != "*"
	mask_may_cover(src.column)
	some rule in mask
	mask_table_matches(rule.table, src.table)
	mask_column_matches(rule.column, src.column)
}

# mask_table_matches compares a mask rule's table ("*", "name" or
# "schema.name") with a relation as sqlfacts writes it, as the guard's
# masking does: names case-insensitively, and a rule without a schema
# matches the table in any schema.
mask_table_matches("*", _)

mask_table_matches(rule, table) if {
	rule != "*"
	[rs, rt] := split_relation(rule)
	[ts, tt] := split_relation(table)
	lower(rt) == lower(tt)
	mask_schema_matches(rs, ts)
}

mask_schema_matches("", _)

mask_schema_matches(rs, "") if rs != ""

mask_schema_matches(rs, ts) if {
	rs != ""
	lower(rs) == lower(ts)
}

mask_column_matches("*", _)

mask_column_matches(rule, column) if lower(rule) == lower(column)

# split_relation splits a relation at its last dot into schema and name.
split_relation(rel) := [concat(".", array.slice(parts, 0, count(parts) - 1)), parts[count(parts) - 1]] if {
	parts := split(rel, ".")
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
