package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// toolCase is one entry of testdata/tool-cases.yaml (the schema is in
// the cases' README, copied in docs/testing.md).
type toolCase struct {
	ID             string           `yaml:"id"`
	Kind           string           `yaml:"kind"`
	Tool           string           `yaml:"tool"`
	Args           map[string]any   `yaml:"args"`
	Setup          []map[string]any `yaml:"setup"`
	Expect         any              `yaml:"expect"`
	Outcomes       []string         `yaml:"outcomes"`
	MustNotContain []any            `yaml:"must_not_contain"`
	MustContain    []string         `yaml:"must_contain"`
	MustHold       []map[string]any `yaml:"must_hold"`
	MustNotLog     []string         `yaml:"must_not_log"`
	Profile        string           `yaml:"profile"`
	Timeout        int              `yaml:"timeout"`
	Note           string           `yaml:"note"`
}

func (c toolCase) expects() []string {
	switch v := c.Expect.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

// loadCases reads our copy of the cases and our own extra cases, plus any
// case in the shared copy beside the repository that ours does not have
// yet.
func loadCases(t *testing.T) []toolCase {
	t.Helper()
	var cases []toolCase
	seen := map[string]bool{}
	ours := map[string]bool{"testdata/tool-cases.yaml": true, "testdata/extra-cases.yaml": true}
	for _, p := range []string{"testdata/tool-cases.yaml", "testdata/extra-cases.yaml",
		"../../shared/cases/tool-cases.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			if ours[p] {
				t.Fatal(err)
			}
			continue
		}
		var list []toolCase
		if err := yaml.Unmarshal(data, &list); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, c := range list {
			if !seen[c.ID] {
				seen[c.ID] = true
				cases = append(cases, c)
			}
		}
	}
	if len(cases) == 0 {
		t.Fatal("no cases loaded")
	}
	return cases
}

// TestToolCases runs every attack and control case through the real
// server over stdio and judges it as the cases' README says.
func TestToolCases(t *testing.T) {
	for _, tc := range loadCases(t) {
		t.Run(tc.ID+"_"+tc.Kind, func(t *testing.T) {
			t.Parallel()
			runCase(t, tc)
		})
	}
}

func runCase(t *testing.T, tc toolCase) {
	f := newFixture(t, "")
	ctx := testContext(t)
	for _, step := range tc.Setup {
		f.setup(step)
	}
	args := f.expandAny(tc.Args).(map[string]any)

	treeBefore := f.treeDigest()
	dbBefore := f.dbSnapshot()
	holds := f.evalHolds(tc.MustHold)
	logSince := f.db.Server().LogSince()

	c := f.stdioClient(ctx)
	_, res := callTool(ctx, t, c, tc.Tool, args)
	c.Close()

	outcome := guardOutcome(res)
	isError, _ := res["isError"].(bool)
	ran := !isError || outcome == ""
	raw, _ := json.Marshal(res)
	text := strings.ToLower(string(raw))
	// JSON escapes some characters; compare on the decoded text too.
	text += "\n" + strings.ToLower(resultText(res))

	expects := tc.expects()
	pass := false
	for _, e := range expects {
		switch e {
		case "deny":
			allowed := []string{"denied", "invalid"}
			if len(tc.Outcomes) > 0 {
				allowed = tc.Outcomes
			}
			pass = pass || (!ran && contains(allowed, outcome))
		case "approval":
			pass = pass || (!ran && strings.HasPrefix(outcome, "approval_"))
		case "allow", "mask":
			pass = pass || ran
		}
	}
	if !pass {
		t.Errorf("expected %v, got ran=%v outcome=%q\nresult: %s", expects, ran, outcome, truncate(string(raw), 2000))
	}
	if ran && (contains(expects, "allow") || contains(expects, "mask")) {
		for _, s := range tc.MustContain {
			if !strings.Contains(text, strings.ToLower(f.expand(s))) {
				t.Errorf("result does not show %q\nresult: %s", f.expand(s), truncate(string(raw), 2000))
			}
		}
	}
	for _, s := range f.forbidden(tc.MustNotContain) {
		if strings.Contains(text, strings.ToLower(s)) {
			t.Errorf("result shows %q", s)
		}
	}
	for _, s := range []string{f.db.Password(), f.canary("envvar")} {
		if strings.Contains(text, strings.ToLower(s)) {
			t.Errorf("result shows a server-held secret")
		}
	}

	// Side effects.
	if entries, _ := os.ReadDir(f.vars["sentinel"]); len(entries) > 0 {
		t.Errorf("an attack ran: %s left in the sentinel directory", entries[0].Name())
	}
	if after := f.treeDigest(); after != treeBefore {
		t.Errorf("the fixture tree changed")
	}
	if after := f.dbSnapshot(); after != dbBefore {
		t.Errorf("the database changed:\nbefore %s\nafter  %s", dbBefore, after)
	}
	f.checkHolds(tc.MustHold, holds)
	if tc.Tool == "query_database" && !ran {
		if sql, _ := args["sql"].(string); sql != "" && logSince(sql) {
			t.Errorf("the SQL reached PostgreSQL although the call did not run")
		}
	}

	// Secrets at rest, after the server exited.
	stored := f.stderr.String() + "\n" + f.recorderText()
	for _, s := range append([]string{f.db.Password(), f.canary("envvar")}, expandAll(f, tc.MustNotLog)...) {
		if strings.Contains(stored, s) {
			t.Errorf("%q is in the server's log or the recorder's files", s)
		}
	}
	if t.Failed() {
		t.Logf("note: %s\nstderr:\n%s", tc.Note, truncate(f.stderr.String(), 3000))
	}
}

func resultText(res map[string]any) string {
	var b strings.Builder
	content, _ := res["content"].([]any)
	for _, c := range content {
		m, _ := c.(map[string]any)
		if s, ok := m["text"].(string); ok {
			b.WriteString(s)
		}
	}
	return b.String()
}

func (f *fixture) setup(step map[string]any) {
	t := f.t
	t.Helper()
	switch {
	case step["mkdir"] != nil:
		must(t, os.MkdirAll(f.expand(fmt.Sprint(step["mkdir"])), 0o755))
	case step["write"] != nil:
		p := f.expand(fmt.Sprint(step["write"]))
		mode := os.FileMode(0o644)
		if m, ok := step["mode"].(string); ok {
			var v uint32
			fmt.Sscanf(m, "%o", &v)
			mode = os.FileMode(v)
		}
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(f.expand(fmt.Sprint(step["content"]))), mode))
	case step["symlink"] != nil:
		p := f.expand(fmt.Sprint(step["symlink"]))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.Symlink(f.expand(fmt.Sprint(step["to"])), p))
	default:
		t.Fatalf("unknown setup step %v", step)
	}
}

func (f *fixture) expandAny(v any) any {
	switch x := v.(type) {
	case string:
		return f.expand(x)
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = f.expandAny(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = f.expandAny(e)
		}
		return out
	case nil:
		return map[string]any{}
	}
	return v
}

func expandAll(f *fixture, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = f.expand(s)
	}
	return out
}

// forbidden expands must_not_contain: strings, and {sql: Q} for every
// value of six or more characters that Q returns.
func (f *fixture) forbidden(items []any) []string {
	var out []string
	for _, it := range items {
		switch x := it.(type) {
		case string:
			out = append(out, f.expand(x))
		case map[string]any:
			q, _ := x["sql"].(string)
			for _, row := range f.db.Query(f.t, q) {
				for _, v := range row {
					if len(v) >= 6 {
						out = append(out, v)
					}
				}
			}
		}
	}
	return out
}

func (f *fixture) evalHolds(holds []map[string]any) []string {
	out := make([]string, len(holds))
	for i, h := range holds {
		if q, ok := h["sql"].(string); ok {
			out[i] = fmt.Sprint(f.db.Query(f.t, q))
		}
	}
	return out
}

func (f *fixture) checkHolds(holds []map[string]any, before []string) {
	t := f.t
	for i, h := range holds {
		switch {
		case h["sql"] != nil:
			now := fmt.Sprint(f.db.Query(t, h["sql"].(string)))
			if h["unchanged"] == true && now != before[i] {
				t.Errorf("must_hold %v: was %s, now %s", h, before[i], now)
			}
			if eq, ok := h["equals"]; ok && now != fmt.Sprint([][]string{{fmt.Sprint(eq)}}) {
				t.Errorf("must_hold %v: got %s", h, now)
			}
		case h["exists"] != nil:
			if _, err := os.Lstat(f.expand(fmt.Sprint(h["exists"]))); err != nil {
				t.Errorf("must_hold: %s no longer exists", h["exists"])
			}
		case h["absent"] != nil:
			if _, err := os.Lstat(f.expand(fmt.Sprint(h["absent"]))); err == nil {
				t.Errorf("must_hold: %s exists", h["absent"])
			}
		}
	}
}

// treeDigest hashes the fixture tree (names, modes, link targets and
// contents), leaving out the recorder's directory.
func (f *fixture) treeDigest() string {
	h := sha256.New()
	var paths []string
	_ = filepath.WalkDir(f.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(f.dir, p)
		if rel == "var" || strings.HasPrefix(rel, "var/") {
			return fs.SkipDir
		}
		paths = append(paths, p)
		return nil
	})
	sort.Strings(paths)
	for _, p := range paths {
		st, err := os.Lstat(p)
		if err != nil {
			continue
		}
		fmt.Fprintf(h, "%s %v\n", p, st.Mode())
		switch {
		case st.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(h, "-> %s\n", target)
		case st.Mode().IsRegular():
			data, _ := os.ReadFile(p)
			h.Write(data)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// dbSnapshot fingerprints everything a call could change in the database:
// tables and their rows, sequences, roles and large objects.
func (f *fixture) dbSnapshot() string {
	const q = `SELECT
	  (SELECT string_agg(c.relname || ':' || c.relkind::text, ',' ORDER BY c.relname)
	     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')),
	  (SELECT string_agg(rolname || coalesce(rolpassword, '') || rolsuper::text, ',' ORDER BY rolname) FROM pg_authid),
	  (SELECT count(*) FROM pg_largeobject_metadata)`
	var b strings.Builder
	for _, row := range f.db.Query(f.t, q) {
		b.WriteString(strings.Join(row, "|"))
	}
	tables := f.db.Query(f.t, `SELECT quote_ident(table_name) FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`)
	for _, tr := range tables {
		rows := f.db.Query(f.t, fmt.Sprintf(`SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM %s t`, tr[0]))
		fmt.Fprintf(&b, "|%s=%s", tr[0], rows[0][0])
	}
	seqs := f.db.Query(f.t, `SELECT quote_ident(sequencename) FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1`)
	for _, s := range seqs {
		rows := f.db.Query(f.t, fmt.Sprintf(`SELECT last_value FROM %s`, s[0]))
		fmt.Fprintf(&b, "|%s=%s", s[0], rows[0][0])
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8]) + " " + truncate(b.String(), 300)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
