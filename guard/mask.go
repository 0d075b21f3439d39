package guard

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mcp-guard/mcp-guard/masking"
	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/sqlfacts"
	"github.com/mcp-guard/mcp-guard/tools"
)

// ResultMasker masks tool results: columns the policy names, followed to
// their source, and every value by what it looks like.
type ResultMasker struct {
	M *masking.Masker
}

// Text implements Masker.
func (rm ResultMasker) Text(s string) string {
	out, _ := rm.M.String(s)
	return out
}

// MaskResult implements Masker.
func (rm ResultMasker) MaskResult(tool string, facts any, r *tools.Result, d policy.Decision) (map[string]int, error) {
	counts := masking.Counts{}
	m := rm.M
	if len(d.Detectors) > 0 {
		var err error
		if m, err = m.WithDetectors(d.Detectors...); err != nil {
			return nil, fmt.Errorf("the policy asked for an unknown detector: %w", err)
		}
	}
	rm = ResultMasker{M: m}
	if tool == tools.QueryDatabase {
		sf, _ := facts.(*sqlfacts.Facts)
		var covered []bool
		if len(d.Mask) > 0 {
			var err error
			if covered, err = rm.maskColumns(sf, r, d.Mask, counts); err != nil {
				return nil, err
			}
		}
		rm.maskTransformed(sf, r, covered, counts)
	}
	var t masking.Tally
	if tool == tools.QueryDatabase {
		rm.maskRows(r, &t, counts)
	}
	for k, v := range r.Structured {
		if k == "columns" || k == "rows" && tool == tools.QueryDatabase {
			continue
		}
		if mv, changed := rm.maskTree(v, &t, counts, 0); changed {
			r.Structured[k] = mv
		}
	}
	counts.Merge(t.Counts())
	if len(counts) == 0 {
		return nil, nil
	}
	return map[string]int(counts), nil
}

// inertTypes are the PostgreSQL types whose values the Postgres tool
// writes from a parsed value (a time, an interval, a truth value): their
// text holds nothing but that value, so the detectors skip them. Numbers
// are not here: a card number stored as a number is still masked.
var inertTypes = map[string]bool{
	"timestamptz": true, "timestamp": true, "date": true, "time": true,
	"timetz": true, "interval": true, "bool": true,
}

// maskRows masks the rows of a query result in place, column by column,
// skipping columns of inertTypes.
func (rm ResultMasker) maskRows(r *tools.Result, t *masking.Tally, counts masking.Counts) {
	raw, present := r.Structured["rows"]
	if !present {
		return // a failed query has none; adding the key would break the output schema
	}
	rows, ok := raw.([]any)
	if !ok {
		if v, changed := rm.maskTree(raw, t, counts, 0); changed {
			r.Structured["rows"] = v
		}
		return
	}
	skip := make([]bool, len(r.Columns))
	for i, c := range r.Columns {
		skip[i] = inertTypes[c.Type]
	}
	for j, row := range rows {
		vals, ok := row.([]any)
		if !ok {
			if v, changed := rm.maskTree(row, t, counts, 1); changed {
				rows[j] = v
			}
			continue
		}
		for i, v := range vals {
			if i < len(skip) && skip[i] {
				if _, isTime := v.(string); isTime {
					continue
				}
			}
			if mv, changed := rm.maskTree(v, t, counts, 2); changed {
				vals[i] = mv
			}
		}
	}
}

// maskTree masks v in place in one walk: hidden text first, then the
// masker's detectors, on every string. Findings go to t, hidden runs to
// counts. It reports whether v changed, so that unchanged strings are not
// boxed again.
func (rm ResultMasker) maskTree(v any, t *masking.Tally, counts masking.Counts, depth int) (any, bool) {
	if depth > maxHideDepth {
		return rm.M.MaskInPlace(v, t), true
	}
	switch x := v.(type) {
	case string:
		s, hid := rm.unhideString(x, counts)
		out, changed := rm.M.MaskString(s, t)
		if !hid && !changed {
			return v, false
		}
		return out, true
	case []any:
		changed := false
		for i, e := range x {
			if me, ch := rm.maskTree(e, t, counts, depth+1); ch {
				x[i], changed = me, true
			}
		}
		return x, changed
	case map[string]any:
		for k := range x {
			var kt masking.Tally
			if _, ch := rm.M.MaskString(k, &kt); ch {
				// Masked keys: the masker rebuilds the map.
				rm.unhide(x, counts, depth)
				return rm.M.MaskInPlace(x, t), true
			}
		}
		changed := false
		for k, e := range x {
			if me, ch := rm.maskTree(e, t, counts, depth+1); ch {
				x[k], changed = me, true
			}
		}
		return x, changed
	}
	return rm.M.MaskInPlace(v, t), true
}

// maskColumns applies the policy's column rules. A column is matched by the
// table column PostgreSQL reports it was read from, or, for expressions,
// by the columns the SQL facts say feed it.
// covered says which columns a rule masked.
func (rm ResultMasker) maskColumns(sf *sqlfacts.Facts, r *tools.Result, rules []policy.MaskRule, counts masking.Counts) (covered []bool, err error) {
	rows, _ := r.Structured["rows"].([]any)
	cov := coverage{rules: rules, columns: r.TableColumns}
	covered = make([]bool, len(r.Columns))
	for i, col := range r.Columns {
		rule, whole, err := cov.columnRule(sf, i, len(r.Columns), col)
		if err != nil {
			return nil, err
		}
		if rule == nil {
			continue
		}
		covered[i] = true
		strategy := masking.Strategy{Kind: rule.Strategy, Keep: rule.Keep}
		if whole {
			strategy = masking.Strategy{Kind: "redact"}
		}
		name := "column:" + ruleName(rule)
		for _, row := range rows {
			vals, _ := row.([]any)
			if i >= len(vals) || vals[i] == nil {
				continue
			}
			vals[i] = rm.M.Apply(strategy, vals[i])
			counts[name]++
		}
	}
	return covered, nil
}

// coverage decides which mask rule covers a result column.
type coverage struct {
	rules []policy.MaskRule
	// columns reads a table's column names from the catalogue; nil when
	// the tool gave no catalogue.
	columns func(table string) ([]string, bool)
}

// columnRule finds the rule that applies to result column i of n. whole
// says the value must be masked as a whole because a masked column only
// feeds it (through a function, cast, concatenation or a whole-row value).
func (cv coverage) columnRule(sf *sqlfacts.Facts, i, n int, col tools.Column) (*policy.MaskRule, bool, error) {
	if col.Source != nil {
		if r := matchRule(cv.rules, col.Source.Schema, col.Source.Table, col.Source.Column); r != nil {
			return r, false, nil
		}
	}
	if sf == nil {
		return nil, false, nil
	}
	cands, known := candidates(sf.OutputColumns, i, n)
	for _, oc := range cands {
		if oc.Star && oc.Direct && col.Source != nil {
			// A table's own column through * or t.*: PostgreSQL named it.
			continue
		}
		if oc.Star && len(oc.Sources) == 0 {
			known = false
		}
		for _, src := range oc.Sources {
			r, whole := cv.sourceRule(src, oc.Direct && !oc.Star)
			if r == nil {
				continue
			}
			if whole && r.Transformed == "deny" {
				return nil, false, fmt.Errorf("result column %q is computed from the masked column %s, and the policy refuses such expressions", oc.Name, ruleName(r))
			}
			return r, whole, nil
		}
	}
	if !known {
		// The parser cannot tell what feeds this column: any table the
		// statement reads may, so one with a masked column masks it whole.
		for _, t := range sf.TablesRead {
			if r, _ := cv.sourceRule(sqlfacts.ColumnRef{Table: t, Column: "*"}, false); r != nil {
				return r, true, nil
			}
		}
	}
	return nil, false, nil
}

// sourceRule finds the rule covering one source of a result column. A
// whole-row source (column "*") is covered by a rule for any of the
// table's columns, read from the catalogue; when the columns cannot be
// read, by any rule the table could match. whole is true unless the
// value is the plain column.
func (cv coverage) sourceRule(src sqlfacts.ColumnRef, direct bool) (*policy.MaskRule, bool) {
	schema, table := splitTable(src.Table)
	if src.Column != "*" {
		return matchRule(cv.rules, schema, table, src.Column), !direct
	}
	if cv.columns != nil {
		if cols, ok := cv.columns(src.Table); ok {
			for _, c := range cols {
				if r := matchRule(cv.rules, schema, table, c); r != nil {
					return r, true
				}
			}
			return nil, true
		}
	}
	for i := range cv.rules {
		if tableMatches(cv.rules[i].Table, schema, table) {
			return &cv.rules[i], true
		}
	}
	return nil, true
}

// candidates returns the output columns of the facts that may produce
// result column i of n. The parser cannot expand a star over a table, so
// past the first star the positions are unknown: a result column between
// the first and the last star may come from any output column there.
// known is false when the facts do not account for the column at all.
func candidates(outs []sqlfacts.OutputColumn, i, n int) ([]sqlfacts.OutputColumn, bool) {
	first, last := -1, -1
	for j, oc := range outs {
		if oc.Star {
			if first < 0 {
				first = j
			}
			last = j
		}
	}
	if first < 0 {
		if len(outs) == n && i < n {
			return outs[i : i+1], true
		}
		// The parser and the server disagree on the columns.
		return outs, false
	}
	after := len(outs) - last - 1 // plain columns after the last star
	switch {
	case i < first:
		return outs[i : i+1], true
	case i >= n-after:
		j := len(outs) - (n - i)
		return outs[j : j+1], true
	}
	return outs[first : last+1], true
}

func splitTable(t string) (schema, table string) {
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		return t[:i], t[i+1:]
	}
	return "", t
}

func matchRule(rules []policy.MaskRule, schema, table, column string) *policy.MaskRule {
	for i := range rules {
		r := &rules[i]
		if tableMatches(r.Table, schema, table) && (r.Column == "*" || strings.EqualFold(r.Column, column)) {
			return r
		}
	}
	return nil
}

// tableMatches compares a rule's table ("*", "name" or "schema.name") with
// a table; a rule without a schema matches the table in any schema.
func tableMatches(rule, schema, table string) bool {
	if rule == "*" {
		return true
	}
	rs, rt := splitTable(rule)
	if !strings.EqualFold(rt, table) {
		return false
	}
	return rs == "" || schema == "" || strings.EqualFold(rs, schema)
}

func ruleName(r *policy.MaskRule) string {
	return r.Table + "." + r.Column
}

// Text the value detectors cannot read as it stands: the characters
// spaced out by a separator (regexp_replace(body, '(.)', '\1 ', 'g')),
// and base64 broken into lines (encode(..., 'base64') wraps at 76
// characters). unhide builds a plain view of each such run and masks the
// run whole when the detectors find anything in the view.
const (
	minHiddenRun = 8  // characters a spaced-out run must hold
	minB64Run    = 16 // characters a base64 run must hold
	maxSpacing   = 4  // a character and up to three separator bytes
	maxHideDepth = 32 // nesting of result values searched
)

// unhide masks hidden runs in every string inside v, in place for
// slices and maps.
func (rm ResultMasker) unhide(v any, counts masking.Counts, depth int) any {
	if depth > maxHideDepth {
		return v
	}
	switch x := v.(type) {
	case string:
		if s, changed := rm.unhideString(x, counts); changed {
			return s
		}
	case []any:
		for i := range x {
			x[i] = rm.unhide(x[i], counts, depth+1)
		}
	case map[string]any:
		for k := range x {
			x[k] = rm.unhide(x[k], counts, depth+1)
		}
	}
	return v
}

// hidden is a run of s and the plain text it stands for.
type hidden struct {
	start, end int
	plain      string
}

// unhideString masks the hidden runs of s in which the detectors find
// something, and reports whether it masked any.
func (rm ResultMasker) unhideString(s string, counts masking.Counts) (string, bool) {
	if len(s) < 2*minHiddenRun-1 {
		return s, false // too short for a spaced run, and for a base64 one
	}
	spaced, b64 := mayHide(s)
	if !spaced && !b64 {
		return s, false
	}
	var runs []hidden
	if spaced {
		runs = spacedRuns(s)
	}
	if b64 {
		runs = append(runs, base64Runs(s)...)
	}
	var hits []hidden
	for _, h := range runs {
		if _, c := rm.M.String(h.plain); len(c) > 0 {
			hits = append(hits, h)
		}
	}
	if len(hits) == 0 {
		return s, false
	}
	slices.SortFunc(hits, func(a, b hidden) int { return a.start - b.start })
	var b strings.Builder
	last := 0
	for _, h := range hits {
		if h.end <= last {
			continue
		}
		b.WriteString(s[last:max(last, h.start)])
		b.WriteString("[MASKED:hidden_text]")
		counts["hidden_text"]++
		last = h.end
	}
	b.WriteString(s[last:])
	return b.String(), true
}

// spacedRuns finds runs in which every character is followed by the same
// separator of one to three bytes that are neither letters nor digits,
// at any offset, and returns each with the separators removed.
func spacedRuns(s string) []hidden {
	var out []hidden
	for k := 2; k <= maxSpacing; k++ {
		for phase := 0; phase < k; phase++ {
			out = appendSpaced(out, s, k, phase)
		}
	}
	return out
}

func appendSpaced(out []hidden, s string, k, phase int) []hidden {
	i := phase
	for i+k <= len(s) {
		if !sepByte[s[i+1]] {
			i += k
			continue
		}
		sep := s[i+1 : i+k]
		if !separator(sep) {
			i += k
			continue
		}
		j := i
		for j+k <= len(s) && s[j+1:j+k] == sep {
			j += k
		}
		n, end := (j-i)/k, j
		if j < len(s) && !sepByte[s[j]] {
			n, end = n+1, j+1 // the last character needs no separator
		}
		if n >= minHiddenRun {
			plain := make([]byte, 0, n)
			for p := i; p < end; p += k {
				plain = append(plain, s[p])
			}
			if strings.Trim(string(plain), sep) != "" {
				out = append(out, hidden{start: i, end: end, plain: string(plain)})
			}
		}
		i = max(j, i+k)
	}
	return out
}

// mayHide reports, in one pass over s, whether it may hold a spaced run
// (a separator byte repeated at a fixed distance of two to maxSpacing
// bytes often enough in a row to part a run of minHiddenRun characters)
// and whether it holds a run of minB64Run base64 characters, which every
// base64 run, wrapped or not, starts with. Text with neither costs one
// cheap scan.
func mayHide(s string) (spaced, b64 bool) {
	// A spaced run needs minHiddenRun-1 separators: count them first.
	run, seps := 0, 0
	for i := 0; i < len(s); i++ {
		c := hideClass[s[i]]
		seps += int(c >> 1)
		run = (run + 1) * int(c&1)
		b64 = b64 || run >= minB64Run
	}
	if seps >= minHiddenRun-1 {
		spaced = maySpaced(s)
	}
	return spaced, b64
}

// hideClass has bit 0 set for base64 characters and bit 1 for separator
// bytes.
var hideClass = func() (t [256]uint8) {
	for c := range 256 {
		if isB64(byte(c)) {
			t[c] |= 1
		}
		if sepByte[c] {
			t[c] |= 2
		}
	}
	return t
}()

// maySpaced reports whether s has a separator byte repeated at a fixed
// distance of two to maxSpacing bytes often enough in a row to part a
// run of minHiddenRun characters.
func maySpaced(s string) bool {
	// Per distance k and residue i%k: where the streak last grew, and
	// how long it is.
	var last, streak [maxSpacing + 1][maxSpacing]int
	for i := 2; i < len(s); i++ {
		b := s[i]
		if !sepByte[b] {
			continue
		}
		for k := 2; k <= maxSpacing && k <= i; k++ {
			if s[i-k] != b {
				continue
			}
			r := i % k
			if streak[k][r] > 0 && last[k][r] == i-k {
				streak[k][r]++
			} else {
				streak[k][r] = 1
			}
			last[k][r] = i
			if streak[k][r] >= minHiddenRun-2 {
				return true
			}
		}
	}
	return false
}

// sepByte holds the bytes a separator may be made of: ASCII that is
// neither a letter nor a digit.
var sepByte = func() (t [256]bool) {
	for c := range 0x80 {
		t[c] = !(c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z')
	}
	return t
}()

// separator reports whether every byte of sep may be a separator.
func separator(sep string) bool {
	for i := 0; i < len(sep); i++ {
		if !sepByte[sep[i]] {
			return false
		}
	}
	return true
}

// base64Runs finds runs of base64, joining lines of one wrapped block
// (every line but the last of the same length, a multiple of four), and
// returns those that decode to text.
func base64Runs(s string) []hidden {
	var out []hidden
	for i := 0; i < len(s); {
		if !isB64(s[i]) {
			i++
			continue
		}
		start, width, lines := i, 0, 1
		for {
			j := i
			for j < len(s) && isB64(s[j]) {
				j++
			}
			for pad := 0; pad < 2 && j < len(s) && s[j] == '='; pad++ {
				j++
			}
			line := j - i
			wrapped := line%4 == 0 && line >= minB64Run && (width == 0 || line == width) &&
				j+1 < len(s) && s[j] == '\n' && isB64(s[j+1])
			i = j
			if !wrapped {
				break
			}
			width, i, lines = line, j+1, lines+1
		}
		if i-start-(lines-1) < minB64Run {
			continue
		}
		if plain, ok := decodeText(strings.ReplaceAll(s[start:i], "\n", "")); ok {
			out = append(out, hidden{start: start, end: i, plain: plain})
		}
	}
	return out
}

func isB64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '+' || c == '/'
}

// decodeText decodes base64 with or without padding and reports whether
// the result is text.
func decodeText(b64 string) (string, bool) {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "="))
	if err != nil || !utf8.Valid(raw) {
		return "", false
	}
	for _, c := range raw {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			return "", false
		}
	}
	return string(raw), true
}

// Transformed text. A result column computed from table columns (the
// server names no source, the SQL facts name the columns feeding it) may
// hold free text reshaped so that the detectors cannot read it as it
// stands: reversed, case-changed, split, spaced out, with characters
// swapped by translate() or replace(). maskTransformed reads such values
// back through the calls the facts list and masks a value whole
// ("[MASKED:transformed_text]") when the detectors find anything in any
// reading. A value a call reshapes in a way the guard cannot read back
// (an unknown or user-defined function, chr(), to_hex(), overlay(), a
// translate() or replace() with arguments that are not constants) is
// text the guard cannot vouch for, and is masked whole too.

const transformedMarker = "[MASKED:transformed_text]"

// maxJoined bounds the text of one column's values read as one, for
// functions that cut text into rows (regexp_split_to_table, substr over a
// series).
const maxJoined = 1 << 20

// readableCalls are the calls whose output the guard can read back, or
// that cannot carry text at all: the value is searched as it is and in
// the readings of textViews.
var readableCalls = func() map[string]bool {
	m := map[string]bool{"::": true}
	for _, f := range strings.Fields(`lower upper initcap casefold btrim trim
		ltrim rtrim reverse concat concat_ws format coalesce nullif greatest
		least lpad rpad repeat substr substring left right split_part
		string_agg array_agg array_to_string string_to_array
		regexp_split_to_array regexp_split_to_table string_to_table unnest
		array_append array_prepend array_cat to_json to_jsonb json_agg
		jsonb_agg json_build_array jsonb_build_array json_build_object
		jsonb_build_object json_object_agg jsonb_object_agg quote_literal
		quote_ident quote_nullable normalize unaccent max min mode md5
		sha224 sha256 sha384 sha512 length char_length octet_length
		bit_length position strpos count sum avg to_char to_number
		date_trunc date_part extract now round abs ceil floor trunc
		regexp_substr regexp_match regexp_matches regexp_count regexp_like
		starts_with encode decode convert_to convert_from replace translate
		regexp_replace text row_to_json array_to_json json_strip_nulls
		jsonb_strip_nulls jsonb_pretty json_each_text jsonb_each_text
		json_array_elements_text jsonb_array_elements_text json_each
		jsonb_each json_array_elements jsonb_array_elements jsonb_set
		json_object jsonb_object xmlforest xmlelement xmlagg
		record_out`) {
		m[f] = true
	}
	return m
}()

// piecewise are the calls that cut text into pieces, one a row or one an
// element: the column's values are also read joined.
var piecewise = map[string]bool{"regexp_split_to_table": true,
	"string_to_table": true, "unnest": true, "substr": true,
	"substring": true, "left": true, "right": true, "split_part": true,
	"regexp_matches": true, "regexp_substr": true, "regexp_match": true}

// readable reports whether the guard can read back every call, and
// whether any cuts text into pieces.
func readable(calls []sqlfacts.Call) (ok, pieces bool) {
	for _, c := range calls {
		pieces = pieces || piecewise[c.Name]
		switch {
		case strings.HasPrefix(c.Name, "op:") || strings.HasPrefix(c.Name, "expr:"):
			continue
		case !readableCalls[c.Name]:
			return false, pieces
		case c.Name == "translate" || c.Name == "replace":
			if len(c.Const) < 3 || !c.Const[1] || !c.Const[2] {
				return false, pieces
			}
		case c.Name == "regexp_replace":
			if len(c.Const) < 3 || !c.Const[1] || !c.Const[2] ||
				backrefs(c.Args[2]) > 1 {
				return false, pieces // reordered groups cannot be read back
			}
		}
	}
	return true, pieces
}

// codePointCalls turn text into the numbers of its characters or bytes.
var codePointCalls = map[string]bool{"ascii": true, "get_byte": true,
	"get_bit": true, "unicode_assigned": true}

// codePoints reports whether calls read a text's characters as numbers.
func codePoints(calls []sqlfacts.Call) bool {
	for _, c := range calls {
		if codePointCalls[c.Name] {
			return true
		}
	}
	return false
}

// backrefs counts the group references (\1 to \9) in a replacement.
func backrefs(repl string) int {
	n := 0
	for i := 0; i+1 < len(repl); i++ {
		if repl[i] == '\\' && repl[i+1] >= '1' && repl[i+1] <= '9' {
			n++
			i++
		}
	}
	return n
}

// maskTransformed masks the transformed text of computed columns that no
// rule covered.
func (rm ResultMasker) maskTransformed(sf *sqlfacts.Facts, r *tools.Result, covered []bool, counts masking.Counts) {
	rows, _ := r.Structured["rows"].([]any)
	if sf == nil || len(rows) == 0 {
		return
	}
	for i, col := range r.Columns {
		if col.Source != nil || i < len(covered) && covered[i] {
			continue
		}
		calls, ok := transformedCalls(sf.OutputColumns, i, len(r.Columns))
		if !ok {
			continue
		}
		canRead, pieces := readable(calls)
		whole := !canRead || pieces && rm.joinedFinding(rows, i, calls)
		codes := codePoints(calls)
		for _, row := range rows {
			vals, _ := row.([]any)
			if i >= len(vals) || vals[i] == nil || !codes && !hasText(vals[i], 0) {
				continue
			}
			if codes {
				// Text turned into numbers, a character or a byte at a
				// time, spells the text out across rows.
				vals[i] = transformedMarker
				counts["transformed_text"]++
				continue
			}
			if whole || rm.viewFinding(vals[i], calls) {
				vals[i] = transformedMarker
				counts["transformed_text"]++
			}
		}
	}
}

// transformedCalls returns the calls of result column i of n when it is
// computed from table columns.
func transformedCalls(outs []sqlfacts.OutputColumn, i, n int) ([]sqlfacts.Call, bool) {
	cands, known := candidates(outs, i, n)
	if !known || len(cands) != 1 {
		return nil, false // stars: whole rows are the rules' business
	}
	oc := cands[0]
	if oc.Direct || oc.Star || len(oc.Sources) == 0 {
		return nil, false
	}
	return oc.Calls, true
}

// hasText reports whether v is or holds a string.
func hasText(v any, depth int) bool {
	switch x := v.(type) {
	case string:
		return true
	case []any:
		if depth < maxHideDepth {
			for _, e := range x {
				if hasText(e, depth+1) {
					return true
				}
			}
		}
	case map[string]any:
		return true
	}
	return false
}

// viewFinding reports whether a reading of v finds what v as it stands
// does not show: each of its strings, and for an array its elements
// joined.
func (rm ResultMasker) viewFinding(v any, calls []sqlfacts.Call) bool {
	var texts []string
	collectText(v, &texts, 0)
	total := masking.Counts{}
	for _, t := range texts {
		n := rm.findings(t)
		total.Merge(n)
		if rm.textFinding(t, calls, n) {
			return true
		}
	}
	if len(texts) < 2 {
		return false
	}
	return rm.textFinding(strings.Join(texts, ""), calls, total) ||
		rm.textFinding(strings.Join(texts, " "), calls, total)
}

// findings returns what the detectors find in s, by rule.
func (rm ResultMasker) findings(s string) masking.Counts {
	_, c := rm.M.String(s)
	return c
}

// more reports whether c has more findings than base of some rule.
func more(c, base masking.Counts) bool {
	for rule, n := range c {
		if n > base[rule] {
			return true
		}
	}
	return false
}

// joinedFinding reads column i of every row as one text, for calls that
// cut text into rows.
func (rm ResultMasker) joinedFinding(rows []any, i int, calls []sqlfacts.Call) bool {
	var texts []string
	size := 0
	for _, row := range rows {
		vals, _ := row.([]any)
		if i < len(vals) {
			n := len(texts)
			collectText(vals[i], &texts, 0)
			for _, t := range texts[n:] {
				size += len(t)
			}
		}
		if size > maxJoined {
			return true // too much to read back: fail closed
		}
	}
	base := masking.Counts{}
	for _, t := range texts {
		base.Merge(rm.findings(t))
	}
	for _, sep := range []string{"", " ", "\n"} {
		if rm.textFinding(strings.Join(texts, sep), calls, base) {
			return true
		}
	}
	return false
}

func collectText(v any, out *[]string, depth int) {
	switch x := v.(type) {
	case string:
		*out = append(*out, x)
	case []any:
		if depth < maxHideDepth {
			for _, e := range x {
				collectText(e, out, depth+1)
			}
		}
	case map[string]any:
		if raw, err := json.Marshal(x); err == nil {
			*out = append(*out, string(raw))
		}
	}
}

// textFinding reports whether the detectors find more of some rule than
// base (what they find in the text as it stands, and mask there) in a
// reading of s through calls: with each translate() and replace()
// undone, with the literal text regexp_replace() inserted taken out,
// reversed, in either case, and with separators dropped. So lower(email)
// is masked as an email, reverse(email) whole.
func (rm ResultMasker) textFinding(s string, calls []sqlfacts.Call, base masking.Counts) bool {
	bases := []string{s}
	for _, c := range calls {
		switch c.Name {
		case "translate":
			bases = append(bases, untranslate(s, c.Args[1], c.Args[2]))
		case "replace":
			if c.Args[2] != "" {
				bases = append(bases, strings.ReplaceAll(s, c.Args[2], c.Args[1]))
			}
		case "regexp_replace":
			if lit := literalPart(c.Args[2]); lit != "" {
				bases = append(bases, strings.ReplaceAll(s, lit, ""))
				if plainPattern(c.Args[1]) {
					bases = append(bases, strings.ReplaceAll(s, lit, c.Args[1]))
				}
			}
		}
	}
	for _, b := range bases {
		rev := reverseRunes(b)
		for _, v := range []string{b, rev, strings.ToLower(b), strings.ToUpper(b),
			strings.ToLower(rev), strings.ToUpper(rev), dropSeparators(b),
			dropSeparators(rev)} {
			if more(rm.findings(v), base) {
				return true
			}
		}
	}
	return false
}

// untranslate undoes translate(x, from, to) as far as it can: each
// character of to goes back to the one of from it replaced.
func untranslate(s, from, to string) string {
	f, t := []rune(from), []rune(to)
	back := map[rune]rune{}
	for i, r := range t {
		if i < len(f) {
			if _, seen := back[r]; !seen {
				back[r] = f[i]
			}
		}
	}
	return strings.Map(func(r rune) rune {
		if o, ok := back[r]; ok {
			return o
		}
		return r
	}, s)
}

// literalPart is a regexp_replace() replacement without its group
// references (\1 to \9, \&).
func literalPart(repl string) string {
	var b strings.Builder
	for i := 0; i < len(repl); i++ {
		if repl[i] == '\\' && i+1 < len(repl) &&
			(repl[i+1] >= '0' && repl[i+1] <= '9' || repl[i+1] == '&') {
			i++
			continue
		}
		b.WriteByte(repl[i])
	}
	return b.String()
}

// plainPattern reports whether a regular expression is a literal.
func plainPattern(p string) bool {
	return p != "" && !strings.ContainsAny(p, `\.^$|?*+()[]{}`)
}

func reverseRunes(s string) string {
	r := []rune(s)
	slices.Reverse(r)
	return string(r)
}

// dropSeparators removes blanks and the punctuation no detector needs
// inside a finding (keeping @ . - _ + / : = for addresses, keys and
// tokens), so characters spaced out by any separator run together.
func dropSeparators(s string) string {
	return strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf && sepByte[r] && !strings.ContainsRune("@.-_+/:=", r) {
			return -1
		}
		return r
	}, s)
}
