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
	for i, col := range r.Columns {
		rule, whole, err := columnRule(sf, i, col, rules)
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

// columnRule finds the rule that applies to result column i. whole says
// the value must be masked as a whole because a masked column only feeds
// it (through a function, cast, concatenation or a whole-row value).
func columnRule(sf *sqlfacts.Facts, i int, col tools.Column, rules []policy.MaskRule) (*policy.MaskRule, bool, error) {
	if col.Source != nil {
		if r := matchRule(rules, col.Source.Schema, col.Source.Table, col.Source.Column); r != nil {
			return r, false, nil
		}
	}
	if sf == nil || i >= len(sf.OutputColumns) {
		return nil, false, nil
	}
	oc := sf.OutputColumns[i]
	for _, src := range oc.Sources {
		schema, table := splitTable(src.Table)
		var r *policy.MaskRule
		if src.Column == "*" {
			r = matchTable(rules, schema, table)
		} else {
			r = matchRule(rules, schema, table, src.Column)
		}
		if r == nil {
			continue
		}
		whole := !oc.Direct || src.Column == "*"
		if whole && r.Transformed == "deny" {
			return nil, false, fmt.Errorf("result column %q is computed from the masked column %s, and the policy refuses such expressions", oc.Name, ruleName(r))
		}
		return r, whole, nil
	}
	if oc.Star && col.Source == nil {
		// An unresolved star: nothing more is known than the tables.
		return nil, false, nil
	}
	return nil, false, nil
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

// matchTable finds a rule naming this table itself, for a whole-row value
// such as row_to_json(t). Rules for any table ("*") are left to the value
// detectors here, since the guard cannot tell which columns a row holds.
func matchTable(rules []policy.MaskRule, schema, table string) *policy.MaskRule {
	for i := range rules {
		if rules[i].Table != "*" && tableMatches(rules[i].Table, schema, table) {
			return &rules[i]
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
