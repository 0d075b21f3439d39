package guard

import (
	"fmt"
	"strings"

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
	if tool == tools.QueryDatabase && len(d.Mask) > 0 {
		sf, _ := facts.(*sqlfacts.Facts)
		if err := rm.maskColumns(sf, r, d.Mask, counts); err != nil {
			return nil, err
		}
	}
	for k, v := range r.Structured {
		if k == "columns" {
			continue
		}
		mv, c := rm.M.Value(v)
		r.Structured[k] = mv
		counts.Merge(c)
	}
	if len(counts) == 0 {
		return nil, nil
	}
	return map[string]int(counts), nil
}

// maskColumns applies the policy's column rules. A column is matched by the
// table column PostgreSQL reports it was read from, or, for expressions,
// by the columns the SQL facts say feed it.
func (rm ResultMasker) maskColumns(sf *sqlfacts.Facts, r *tools.Result, rules []policy.MaskRule, counts masking.Counts) error {
	rows, _ := r.Structured["rows"].([]any)
	cov := coverage{rules: rules, columns: r.TableColumns}
	for i, col := range r.Columns {
		rule, whole, err := cov.columnRule(sf, i, len(r.Columns), col)
		if err != nil {
			return err
		}
		if rule == nil {
			continue
		}
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
	return nil
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
