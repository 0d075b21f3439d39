package tools

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mcp-guard/mcp-guard/policy"
)

// raisingFunctions are PL/pgSQL functions that raise an error whose text
// holds their argument, under P0001, a class 42 code and ASSERT.
const raisingFunctions = `
CREATE FUNCTION raise_value(x text) RETURNS int LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'bad %', x USING HINT = 'got ' || x; END$$;
CREATE FUNCTION raise_as_42(x text) RETURNS int LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'table %', x USING ERRCODE = 'undefined_table'; END$$;
CREATE FUNCTION assert_value(x text) RETURNS int LANGUAGE plpgsql AS
  $$BEGIN ASSERT false, 'got ' || x; RETURN 1; END$$;`

// TestSQLErrorHidesValues runs statements whose errors quote the values
// that caused them, on the real server, and checks that the message keeps
// its kind and loses the value. secret is a query for the value (or its
// part) the message would otherwise show.
func TestSQLErrorHidesValues(t *testing.T) {
	p, target, db := pgTool(t)
	db.Exec(t, raisingFunctions)
	card := "SELECT card_number FROM customers WHERE id = 1"
	token := "SELECT api_token FROM integrations ORDER BY name LIMIT 1"
	email := "SELECT email FROM staff WHERE login = 'rhea'"
	for _, tc := range []struct {
		name, sql, code, want, secret string
	}{
		{"text to integer", "SELECT token::int FROM sessions ORDER BY id LIMIT 1", "22P02",
			`invalid input syntax for type integer: "[value]"`,
			"SELECT token FROM sessions ORDER BY id LIMIT 1"},
		{"prefixed card number", "SELECT ('x'||card_number)::int FROM customers WHERE id=1",
			"22P02", `for type integer: "[value]"`, card},
		{"quote inside the value", `SELECT ('x"'||card_number)::int FROM customers WHERE id=1`,
			"22P02", `for type integer: "[value]"`, card},
		{"part of a token", "SELECT substr(api_token,1,12)::int FROM integrations ORDER BY name LIMIT 1",
			"22P02", `for type integer: "[value]"`,
			"SELECT substr(api_token,1,12) FROM integrations ORDER BY name LIMIT 1"},
		{"reversed token", "SELECT reverse(api_token)::int FROM integrations ORDER BY name LIMIT 1",
			"22P02", `for type integer: "[value]"`,
			"SELECT reverse(api_token) FROM integrations ORDER BY name LIMIT 1"},
		{"rewritten email", "SELECT replace(email,'@',' at ')::int FROM staff WHERE login='rhea'",
			"22P02", `for type integer: "[value]"`,
			"SELECT replace(email,'@',' at ') FROM staff WHERE login='rhea'"},
		{"out of range", "SELECT ('1e999'||card_number)::float8 FROM customers WHERE id=1",
			"22003", `"[value]" is out of range for type double precision`, card},
		{"datetime field", "SELECT card_number::date FROM customers WHERE id=1",
			"22008", `date/time field value out of range: "[value]"`, card},
		{"unquoted date", "SELECT make_date(substr(card_number,1,4)::int, 13, 1) FROM customers WHERE id=1",
			"22008", "date field value out of range: [value]",
			"SELECT substr(card_number,1,4) FROM customers WHERE id=1"},
		{"datetime format", "SELECT to_timestamp(email, 'YYYY') FROM staff WHERE login='rhea'",
			"22007", `invalid value "[value]"`, "SELECT split_part(email,'.',1) FROM staff WHERE login='rhea'"},
		{"json syntax", "SELECT email::json FROM staff WHERE login='rhea'",
			"22P02", "invalid input syntax for type json", email},
		{"uuid", "SELECT email::uuid FROM staff WHERE login='rhea'",
			"22P02", `invalid input syntax for type uuid: "[value]"`, email},
		{"array literal", "SELECT email::int[] FROM staff WHERE login='rhea'",
			"22P02", `malformed array literal: "[value]"`, email},
		{"invalid parameter", "SELECT convert_from('a'::bytea, email) FROM staff WHERE login='rhea'",
			"22023", `invalid source encoding name "[value]"`, email},
		{"unit", "SELECT date_trunc(email, now()) FROM staff WHERE login='rhea'",
			"22023", `not recognized for type timestamp with time zone`, email},
		{"unquoted number", "SELECT setseed(substr(card_number,1,4)::int) FROM customers WHERE id=1",
			"22023", "setseed parameter [value] is out of allowed range",
			"SELECT substr(card_number,1,4) FROM customers WHERE id=1"},
		{"byte sequence", "SELECT convert_from(decode('c3'||substr(card_number,1,2),'hex'),'UTF8') FROM customers WHERE id=1",
			"22021", "invalid byte sequence for encoding", "SELECT '0x' || substr(card_number,1,2) FROM customers WHERE id=1"},
		{"program limit", "SELECT chr(substr(card_number,1,9)::int) FROM customers WHERE id=1",
			"54000", "requested character too large for encoding: [value]",
			"SELECT substr(card_number,1,9) FROM customers WHERE id=1"},
		{"value as a relation", "SELECT api_token::regclass FROM integrations ORDER BY name LIMIT 1",
			"42P01", `relation "[value]" does not exist`, token},
		{"value as a function", "SELECT api_token::regproc FROM integrations ORDER BY name LIMIT 1",
			"42883", `function "[value]" does not exist`, token},
		{"value as a signature", "SELECT ('f'||card_number||'()')::regprocedure FROM customers WHERE id=1",
			"42883", `function "[value]" does not exist`, card},
		{"value as a role", "SELECT has_table_privilege(api_token, 'customers', 'select') FROM integrations ORDER BY name LIMIT 1",
			"42704", `role "[value]" does not exist`, token},
		{"value as a setting", "SELECT current_setting(api_token) FROM integrations ORDER BY name LIMIT 1",
			"42704", `unrecognized configuration parameter "[value]"`, token},
		{"value as a schema", "SELECT api_token::regnamespace FROM integrations ORDER BY name LIMIT 1",
			"3F000", `schema "[value]" does not exist`, token},
		{"dotted value unquoted", "SELECT replace(email,'@','_')::regconfig FROM staff WHERE login='rhea'",
			"0A000", "cross-database references are not implemented: [value]",
			"SELECT split_part(email,'@',1) FROM staff WHERE login='rhea'"},
		{"too many dotted names", "SELECT ('a.'||replace(email,'@','_'))::regclass FROM staff WHERE login='rhea'",
			"42601", "improper relation name (too many dotted names): [value]",
			"SELECT split_part(email,'@',1) FROM staff WHERE login='rhea'"},
		{"one digit with digits in the statement",
			"SELECT substr(card_number,1,1)::regclass FROM customers WHERE id=1 AND '0123456789' <> ''",
			"42P01", `relation "[value]" does not exist`, ""},
		{"raised by a function", "SELECT raise_value(api_token) FROM integrations ORDER BY name LIMIT 1",
			"P0001", raisedWithheld, token},
		{"raised under a class 42 code", "SELECT raise_as_42(api_token) FROM integrations ORDER BY name LIMIT 1",
			"42P01", raisedWithheld, token},
		{"assertion", "SELECT assert_value(api_token) FROM integrations ORDER BY name LIMIT 1",
			"P0004", raisedWithheld, token},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := failedMessage(t, query(t, p, target, tc.sql, policy.Decision{}, pgLimits), tc.code)
			if !strings.Contains(msg, tc.want) {
				t.Errorf("message %q does not show %q", msg, tc.want)
			}
			if tc.secret != "" {
				v := db.Query(t, tc.secret)[0][0]
				if strings.Contains(strings.ToLower(msg), strings.ToLower(v)) {
					t.Errorf("message %q shows the value %q", msg, v)
				}
			}
		})
	}
}

// TestSQLErrorKeepsStatementNames is the control: names the statement
// wrote stay readable, and messages without values are unchanged.
func TestSQLErrorKeepsStatementNames(t *testing.T) {
	p, target, _ := pgTool(t)
	for _, tc := range []struct {
		name, sql, code, want string
		writes                bool
	}{
		{"division by zero", "SELECT 1/0", "22012", "PostgreSQL error 22012: division by zero", false},
		{"unknown column", "SELECT foo FROM customers", "42703",
			`PostgreSQL error 42703: column "foo" does not exist`, false},
		{"folded column", "SELECT FOO FROM customers", "42703", `column "foo" does not exist`, false},
		{"qualified relation", "SELECT * FROM public.nosuch", "42P01",
			`relation "public.nosuch" does not exist`, false},
		{"literal as a relation", "SELECT 'nosuch'::regclass", "42P01",
			`relation "nosuch" does not exist`, false},
		{"alias and hint", "SELECT c.card_numbr FROM customers c", "42703",
			`column c.card_numbr does not exist (hint: Perhaps you meant to reference the column "c.card_number".)`,
			false},
		{"function signature", "SELECT lower(1)", "42883",
			"function lower(integer) does not exist (hint: No function matches the given " +
				"name and argument types. You might need to add explicit type casts.)", false},
		{"operator", "SELECT * FROM customers WHERE email = 1", "42883",
			"operator does not exist: text = integer", false},
		{"syntax", "SELECT 1 FROM customers WHERE", "42601", "syntax error at end of input", false},
		{"read-only", "UPDATE orders SET status = 'x' WHERE id = 1", "25006",
			"cannot execute UPDATE in a read-only transaction", false},
		{"catalogue names in class 23", "UPDATE staff SET role = 'owner' WHERE login = 'rhea'", "23514",
			`new row for relation "staff" violates check constraint "staff_role_check"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := policy.Decision{Writes: tc.writes}
			msg := failedMessage(t, query(t, p, target, tc.sql, d, pgLimits), tc.code)
			if !strings.Contains(msg, tc.want) {
				t.Errorf("message\n got %q\nwant %q", msg, tc.want)
			}
		})
	}
}

func failedMessage(t *testing.T, res *Result, code string) string {
	t.Helper()
	if !res.Failed {
		t.Fatalf("the statement did not fail: %v", res.Structured)
	}
	if res.Structured["sqlstate"] != code {
		t.Errorf("sqlstate %v, want %s", res.Structured["sqlstate"], code)
	}
	msg, _ := res.Structured["error"].(string)
	if Render(QueryDatabase, res.Structured) != msg {
		t.Errorf("the text differs from the structured error")
	}
	return msg
}

// TestSQLErrorMatchesOutputSchema validates the structured content of
// failed calls against the tool's declared output schema, as clients do
// even on error results.
func TestSQLErrorMatchesOutputSchema(t *testing.T) {
	p, target, _ := pgTool(t)
	schema := compileOutput(t, p.Spec().Output)
	for _, tc := range []struct {
		name, sql string
		l         Limits
	}{
		{"division by zero", "SELECT 1/0", pgLimits},
		{"unknown column", "SELECT foo FROM customers", pgLimits},
		{"value hidden", "SELECT token::int FROM sessions", pgLimits},
		{"row over the size limit", "SELECT repeat('x', 200000)",
			Limits{MaxRows: 10, TimeoutSeconds: 10, MaxOutputBytes: 1000}},
		{"time limit", "SELECT pg_sleep(3)", Limits{MaxRows: 10, TimeoutSeconds: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := query(t, p, target, tc.sql, policy.Decision{}, tc.l)
			if !res.Failed {
				t.Fatalf("the statement did not fail: %v", res.Structured)
			}
			raw, err := json.Marshal(res.Structured)
			if err != nil {
				t.Fatal(err)
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(inst); err != nil {
				t.Errorf("%s\nbreaks the output schema: %v", raw, err)
			}
		})
	}
}

func compileOutput(t *testing.T, raw json.RawMessage) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("mem://output.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("mem://output.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}
