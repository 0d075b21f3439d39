# Tests of the SQL part of the bundled policy against ways around it:
# SQL run from a string, whole tables read by name, advisory locks in any
# spelling, and catalogue tables that expose other sessions, credentials or
# column values. Run them with `mcp-guard policy test` or `go test ./policy`.
package mcpguard_test

import rego.v1

import data.mcpguard

sql_target := {"name": "appdb", "kind": "postgres", "labels": {"env": "staging"}}

sql_call(facts) := {
	"tool": "query_database", "target": sql_target,
	"caller": {"subject": "alice", "issuer": "", "email": "alice@example.com", "groups": ["developers"]},
	"arguments": {"target": "appdb", "sql": "..."},
	"sql": object.union(
		{
			"statement_count": 1, "kind": "select", "kinds": ["select"], "read_only": true,
			"tables_read": [], "tables_written": [], "functions": [], "function_names": [],
			"write_without_where": false, "output_columns": [], "filter_columns": [],
		},
		facts,
	),
}

sql_decision(facts) := d if {
	d := mcpguard.decision with input as sql_call(facts)
}

# calling builds the facts of a read-only call of f in schema pg_catalog.
calling(f) := {"functions": [concat(".", ["pg_catalog", f])], "function_names": [f]}

reading(rel) := {"tables_read": [rel]}

test_sql_text_functions_denied if {
	every f in ["ts_stat", "ts_rewrite", "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml", "cursor_to_xmlschema"] {
		d := sql_decision(calling(f))
		d.outcome == "deny"
		some r in d.reasons
		contains(r, "runs SQL given as text")
	}
}

test_whole_table_readers_denied if {
	every f in [
		"table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema",
		"schema_to_xml", "schema_to_xml_and_xmlschema", "database_to_xml",
		"database_to_xmlschema", "database_to_xml_and_xmlschema",
		"pg_stat_get_activity", "pg_stat_get_backend_activity",
		"pg_stat_get_backend_client_addr", "pg_stat_statements",
		"pg_show_all_file_settings", "pg_hba_file_rules", "pg_mcv_list_items",
		"get_raw_page", "heap_page_items",
	] {
		d := sql_decision(calling(f))
		d.outcome == "deny"
		some r in d.reasons
		contains(r, "reads whole tables")
	}
}

# Every advisory lock function, the unlocking and "try" forms included,
# is denied by prefix, not only the ones a list happened to name.
test_advisory_locks_denied_by_prefix if {
	every f in [
		"pg_advisory_lock", "pg_advisory_unlock", "pg_advisory_unlock_all",
		"pg_advisory_unlock_shared", "pg_try_advisory_lock_shared",
		"pg_try_advisory_xact_lock", "pg_try_advisory_xact_lock_shared",
		"pg_advisory_lock_future_variant",
	] {
		sql_decision(calling(f)).outcome == "deny"
	}
}

test_large_objects_and_decoding_denied_by_prefix if {
	every f in ["lo_get", "loread", "lo_lseek64", "pg_logical_slot_peek_changes", "pg_replication_origin_session_setup", "pg_ls_dir"] {
		sql_decision(calling(f)).outcome == "deny"
	}
}

test_catalogue_tables_denied_in_any_schema if {
	every rel in [
		"pg_stats", "pg_catalog.pg_stats", "pg_statistic", "pg_stat_activity",
		"pg_catalog.pg_authid", "pg_shadow", "pg_user_mapping", "pg_user_mappings",
		"information_schema.user_mapping_options", "pg_largeobject",
		"pg_file_settings", "pg_hba_file_rules", "pg_ident_file_mappings",
		"public.pg_stat_statements", "extensions.pg_stat_statements",
		"pg_stats_ext", "pg_subscription",
	] {
		d := sql_decision(reading(rel))
		d.outcome == "deny"
		some r in d.reasons
		contains(r, "reading ")
	}
}

test_catalogue_tables_denied_when_written_too if {
	d := sql_decision({"kinds": ["update"], "read_only": false, "tables_written": ["pg_catalog.pg_authid"]})
	d.outcome == "deny"
}

test_ordinary_catalogue_tables_allowed if {
	every rel in ["pg_class", "pg_catalog.pg_roles", "pg_user", "information_schema.columns", "pg_stat_user_tables", "pg_locks"] {
		sql_decision(reading(rel)).outcome == "allow"
	}
}

# A quoted name holding a dot is one relation, not a schema and a table.
test_quoted_name_with_a_dot_is_not_a_catalogue_table if {
	sql_decision(reading(`"x.pg_authid"`)).outcome == "allow"
}

test_ordinary_text_search_and_xml_allowed if {
	every f in ["to_tsvector", "ts_rank", "ts_headline", "xpath", "xmlforest", "pg_get_viewdef", "lower"] {
		sql_decision(calling(f)).outcome == "allow"
	}
}

# ---------------------------------------------------------------- masked columns outside the output

col(t, c) := {"table": t, "column": c}

filtering(tables, refs) := {"tables_read": tables, "filter_columns": refs}

outside_reason(d) if {
	some r in d.reasons
	contains(r, "used outside the select list")
}

# The oracle of the finding: api_token compared one character at a time.
test_masked_column_in_a_filter_denied if {
	every ref in [
		col("integrations", "api_token"), col("customers", "card_number"),
		col("staff", "email"), col("public.sessions", "token"), col("Staff", "EMAIL"),
	] {
		d := sql_decision(filtering(["integrations", "customers", "staff", "public.sessions"], [col("integrations", "name"), ref]))
		d.outcome == "deny"
		outside_reason(d)
	}
}

test_unmasked_filter_join_and_sort_allowed if {
	d := sql_decision(filtering(["customers", "orders"], [
		col("customers", "id"), col("orders", "customer_id"), col("orders", "created_at"),
	]))
	d.outcome == "allow"
	count(d.mask) > 0
}

# Selecting a masked column is masking's business, not a denial.
test_masked_column_in_the_output_allowed if {
	d := sql_decision({
		"tables_read": ["staff"], "filter_columns": [col("staff", "login")],
		"output_columns": [{"name": "email", "sources": [col("staff", "email")], "direct": true, "star": false}],
	})
	d.outcome == "allow"
}

test_whole_row_outside_the_output_denied if {
	d := sql_decision(filtering(["integrations"], [col("integrations", "*")]))
	d.outcome == "deny"
	some r in d.reasons
	contains(r, "a whole row of integrations")
}

test_unresolved_column_denied_when_a_table_is_read if {
	d := sql_decision(filtering(["customers"], [col("", "zz")]))
	d.outcome == "deny"
	some r in d.reasons
	contains(r, "cannot tell which table the column zz")
}

test_unresolved_column_allowed_without_tables if {
	sql_decision(filtering([], [col("", "zz")])).outcome == "allow"
}

# The rules follow the decision's own mask: a policy that masks only
# public.customers.email denies that column and nothing else.
narrow_mask := [{"table": "public.customers", "column": "email", "strategy": "redact", "keep": 0, "transformed": "mask"}]

narrow_decision(facts) := d if {
	d := mcpguard.decision with input as sql_call(facts) with mcpguard.mask as narrow_mask
}

test_rules_follow_the_mask_tables if {
	every ref in [col("customers", "email"), col("public.customers", "EMAIL"), col("PUBLIC.Customers", "email"), col("customers", "*")] {
		narrow_decision(filtering(["customers"], [ref])).outcome == "deny"
	}
	every ref in [col("orders", "email"), col("other.customers", "email"), col("customers", "id"), col("orders", "*")] {
		narrow_decision(filtering(["customers", "orders"], [ref])).outcome == "allow"
	}
	narrow_decision(filtering(["orders"], [col("", "zz")])).outcome == "allow"
	narrow_decision(filtering(["customers"], [col("", "zz")])).outcome == "deny"
}

test_no_mask_no_filter_denial if {
	d := mcpguard.decision with input as sql_call(filtering(["staff"], [col("staff", "email")])) with mcpguard.mask as []
	d.outcome == "allow"
}

# ---------------------------------------------------------------- masked columns in expressions that can fail

computed(calls, src) := {
	"tables_read": [src.table], "filter_columns": [],
	"output_columns": [{"name": "?column?", "sources": [src], "direct": false, "star": false, "calls": calls}],
}

may_fail_reason(d) if {
	some r in d.reasons
	contains(r, "may fail depending on its value")
}

# 1/(ascii(email)-97) fails only when the email starts with "a".
test_masked_column_in_a_failing_expression_denied if {
	every calls in [
		["op:/", "op:-", "ascii"], ["::"], ["substr", "op:-", "ascii"], ["?"],
		["expr:case_expr", "expr:case_when", "op:>", "op:/"],
		["json_build_object"],
	] {
		d := sql_decision(computed(calls, col("customers", "email")))
		d.outcome == "deny"
		may_fail_reason(d)
	}
}

test_masked_column_through_calls_that_cannot_fail_allowed if {
	every calls in [["lower"], ["count"], ["op:||"], ["upper", "btrim"], ["row_to_json"]] {
		d := sql_decision(computed(calls, col("customers", "email")))
		d.outcome == "allow"
	}
}

test_unmasked_column_in_a_failing_expression_allowed if {
	d := sql_decision(computed(["op:/", "op:-", "ascii"], col("customers", "company")))
	d.outcome == "allow"
}

# mask_column_names is written out for speed; it must name exactly the
# columns of the mask rules.
test_mask_column_names_match_the_mask_rules if {
	rules := mcpguard.mask with input as sql_call({})
	count(rules) > 0
	mcpguard.mask_column_names == {lower(r.column) | some r in rules}
}
