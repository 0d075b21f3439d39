package guard

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/mcp-guard/mcp-guard/sqlfacts"
)

// TestRecordedSQLCannotBeBlinded checks what the transcript keeps of a
// statement: a word such as password in a literal or a comment must not
// blank the other literals, so an auditor sees what ran, while statements
// that really carry credentials keep them out.
func TestRecordedSQLCannotBeBlinded(t *testing.T) {
	g := testGuard(t)
	tests := []struct {
		name string
		sql  string
		keep []string // must be recorded as sent
		drop []string // must not be recorded
	}{
		{"password word in a comment",
			"SELECT word FROM ts_stat('SELECT to_tsvector(''simple'', pg_read_file(''/etc/hostname''))') -- password=x",
			[]string{"pg_read_file(''/etc/hostname'')", "ts_stat('SELECT"}, nil},
		{"password word in a literal",
			"SELECT pg_read_file('/etc/hostname'), 'password=hunter2secret' AS p",
			[]string{"pg_read_file('/etc/hostname')"}, []string{"hunter2secret"}},
		{"server and secret words",
			"SELECT dblink_exec('host=127.0.0.1 dbname=appdb', 'DELETE FROM sessions') /* server secret */",
			[]string{"DELETE FROM sessions", "host=127.0.0.1"}, nil},
		{"user mapping words in a string",
			"SELECT 'create user mapping', lower('SERVER') FROM customers WHERE email = 'a@b.example'",
			[]string{"'create user mapping'", "lower('SERVER')"}, nil},
		{"alter role password",
			"ALTER ROLE report_reader PASSWORD 'Tr0ub4dor&3xyz'",
			[]string{"ALTER ROLE report_reader"}, []string{"Tr0ub4dor"}},
		{"create user with encrypted password",
			"CREATE USER bob WITH ENCRYPTED PASSWORD 'Tr0ub4dor&3xyz' VALID UNTIL '2030-01-01'",
			[]string{"CREATE USER bob"}, []string{"Tr0ub4dor"}},
		{"user mapping",
			"CREATE USER MAPPING FOR bob SERVER remote OPTIONS (user 'bob', password 'Tr0ub4dor&3xyz')",
			[]string{"CREATE USER MAPPING"}, []string{"Tr0ub4dor"}},
		{"alter user mapping",
			"ALTER USER MAPPING FOR bob SERVER remote OPTIONS (SET password 'Tr0ub4dor&3xyz')",
			nil, []string{"Tr0ub4dor"}},
		{"foreign server",
			"CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'db', sslkey 'Tr0ub4dor&3xyz')",
			nil, []string{"Tr0ub4dor"}},
		{"alter server",
			"ALTER SERVER remote OPTIONS (SET sslpassword 'Tr0ub4dor&3xyz')", nil, []string{"Tr0ub4dor"}},
		{"subscription",
			"CREATE SUBSCRIPTION s CONNECTION 'host=db user=rep pwd_file=Tr0ub4dor&3xyz' PUBLICATION p",
			nil, []string{"Tr0ub4dor"}},
		{"alter system conninfo",
			"ALTER SYSTEM SET primary_conninfo = 'host=db user=rep application_name=Tr0ub4dor3xyz'",
			nil, []string{"Tr0ub4dor"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			facts, err := sqlfacts.Analyze(tc.sql)
			if err != nil {
				t.Fatalf("analyze: %v", err)
			}
			// With the call's facts, as the intent record has them, and
			// without, as approvals ask.
			for _, f := range []any{facts, nil} {
				got := g.redactArgs(map[string]any{"sql": tc.sql}, f).(map[string]any)["sql"].(string)
				for _, s := range tc.keep {
					if !strings.Contains(got, s) {
						t.Errorf("facts %v: %q lost from the record: %s", f != nil, s, got)
					}
				}
				for _, s := range tc.drop {
					if strings.Contains(got, s) {
						t.Errorf("facts %v: %q recorded: %s", f != nil, s, got)
					}
				}
			}
		})
	}
}

// TestRecordedSQLThatDoesNotParse checks that a text the parser rejects,
// which never runs, still keeps a password out of the record.
func TestRecordedSQLThatDoesNotParse(t *testing.T) {
	g := testGuard(t)
	sql := "CREATE ROLE bob PASSWORD 'Tr0ub4dor&3xyz' ,,"
	got := g.RedactArgs(map[string]any{"sql": sql}).(map[string]any)["sql"].(string)
	if strings.Contains(got, "Tr0ub4dor") {
		t.Errorf("password recorded: %s", got)
	}
}

// TestRedactValueOnTheText checks that redacting a value's JSON text
// gives what decoding it and redacting every string would: the strings
// with secrets changed, the keys and everything else kept.
func TestRedactValueOnTheText(t *testing.T) {
	g := testGuard(t)
	type inner struct {
		Words []string       `json:"words"`
		Env   map[string]any `json:"env,omitempty"`
	}
	type facts struct {
		Command string  `json:"command"`
		Quoted  string  `json:"quoted"`
		Count   int     `json:"count"`
		Nested  []inner `json:"nested"`
		Nothing *inner  `json:"nothing"`
	}
	tests := []struct {
		name    string
		v       any
		changed bool // whether a secret must go
	}{
		{"plain struct", facts{Command: "ls -l", Quoted: `say "hi" <b>`, Count: 3}, false},
		{"assignment in a field", facts{Command: "PGPASSWORD=hunter2 psql"}, true},
		{"assignment with escapes", facts{Quoted: "a\tTOKEN=\"x<y>\" \u2028 b"}, true},
		{"nested", facts{Nested: []inner{{Words: []string{"ok", "API_KEY=abc123"},
			Env: map[string]any{"SECRET_KEY=abc": "value", "n": 1.5, "b": true}}}}, true},
		{"generic map", map[string]any{"a": []any{"x", map[string]any{"k": "AUTH=zzz"}}}, true},
		{"number", 42, false},
		{"string", "TOKEN=abc", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			var generic any
			if err := json.Unmarshal(raw, &generic); err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(redactGeneric(g, generic))
			got, err := json.Marshal(g.redactValue(tc.v))
			if err != nil {
				t.Fatal(err)
			}
			var gotV, wantV any
			json.Unmarshal(got, &gotV)
			json.Unmarshal(want, &wantV)
			if !reflect.DeepEqual(gotV, wantV) {
				t.Errorf("redacted to\n%s\nwant\n%s", got, want)
			}
			if changed := !reflect.DeepEqual(gotV, generic); changed != tc.changed {
				t.Errorf("changed = %v, want %v: %s", changed, tc.changed, got)
			}
		})
	}
}

// redactGeneric is the plain way to redact a decoded value: every string
// in it through redactText.
func redactGeneric(g *Guard, v any) any {
	switch x := v.(type) {
	case string:
		return g.redactText(x)
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = redactGeneric(g, x[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k := range x {
			out[k] = redactGeneric(g, x[k])
		}
		return out
	}
	return v
}
