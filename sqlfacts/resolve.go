package sqlfacts

import (
	"cmp"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// columnRef resolves a column reference the way PostgreSQL tries it:
// the longest qualifier naming a FROM item first, then a column whose
// composite value has fields taken from it.
func (l *lineage) columnRef(cr *pg_query.ColumnRef, sc *scope) ref {
	names := stringList(cr.GetFields())
	if isStar(cr) {
		acc := srcSet{}
		for _, c := range l.star(names, sc) {
			acc.add(c.Sources...)
		}
		return ref{srcs: acc.sorted()}
	}
	if len(names) == 0 {
		return ref{srcs: []ColumnRef{}}
	}
	for q := min(len(names)-1, 3); q >= 1; q-- {
		r := findRel(names[:q], sc)
		if r == nil {
			continue
		}
		res := l.resolve(r, names[q])
		if q+1 < len(names) {
			res.direct = false // a field of a composite column
		}
		return res
	}
	res := l.unqualified(names[0], sc)
	if len(names) > 1 {
		res.direct = false
	}
	return res
}

// findRel finds the FROM item a qualifier names, innermost level first.
func findRel(qual []string, sc *scope) *rel {
	for s := sc; s != nil; s = s.parent {
		for _, r := range s.quals {
			if len(qual) == 1 && r.refname == qual[0] {
				return r
			}
			if len(qual) >= 2 && r.relname != "" && r.relname == qual[len(qual)-1] &&
				(r.schema == "" || r.schema == strings.Join(qual[len(qual)-2:], ".")) {
				return r
			}
		}
	}
	return nil
}

// resolve finds column col of the item r.
func (l *lineage) resolve(r *rel, col string) ref {
	switch r.kind {
	case relTable:
		if r.renamed[col] {
			return ref{srcs: []ColumnRef{{Table: r.table, Column: "*"}}, direct: true}
		}
		if wholeRowFunctions.has(col) {
			l.calls.add(col)
			return ref{srcs: sortRefs([]ColumnRef{{r.table, col}, {r.table, "*"}})}
		}
		return ref{srcs: []ColumnRef{{Table: r.table, Column: col}}, direct: true}
	case relKnown:
		if res, hit := knownLookup(r, col); hit {
			return res
		}
		// Not a column of a subquery or CTE: PostgreSQL reads t.f as f(t).
		l.calls.add(col)
		return ref{srcs: wholeRow(r)}
	case relJoin:
		acc, direct := srcSet{}, true
		for _, leaf := range r.leaves {
			res := l.resolve(leaf, col)
			acc.add(res.srcs...)
			direct = direct && res.direct
		}
		return ref{srcs: acc.sorted(), direct: direct}
	}
	return ref{srcs: slices.Clone(r.srcs)}
}

// knownLookup finds col among the known columns of r. A star entry (a
// table whose columns are unknown) may hold it too.
func knownLookup(r *rel, col string) (ref, bool) {
	acc, direct, hit := srcSet{}, true, false
	for _, c := range r.cols {
		switch {
		case c.Star:
			for _, s := range c.Sources {
				if s.Column == "*" {
					s.Column = col
				}
				acc.add(s)
			}
		case c.Name == col:
			acc.add(c.Sources...)
		default:
			continue
		}
		direct = direct && c.Direct
		hit = true
	}
	return ref{srcs: acc.sorted(), direct: direct && hit}, hit
}

// unqualified resolves a bare name: a column of some item of the nearest
// level that may have it, or a whole-row reference to an item so named.
// Without the catalog, every table of a level may have the column, and a
// level with only such tables may also pass the name to outer levels, so
// all candidates are named.
func (l *lineage) unqualified(name string, sc *scope) ref {
	acc, direct, found := srcSet{}, true, false
	for s := sc; s != nil; s = s.parent {
		definite := false
		for _, r := range s.leaves {
			switch r.kind {
			case relTable:
				col := name
				if r.renamed[name] {
					col, definite = "*", true
				}
				acc.add(ColumnRef{Table: r.table, Column: col})
				found = true
			case relKnown:
				if res, hit := knownLookup(r, name); hit {
					acc.add(res.srcs...)
					direct = direct && res.direct
					found, definite = true, true
				}
			case relOpaque:
				if !r.named || hasColumn(r.cols, name) {
					acc.add(r.srcs...)
					direct, found = false, true
					definite = definite || r.named
				}
			}
		}
		if !definite {
			for _, r := range s.quals {
				if r.refname != name {
					continue
				}
				// The whole row covers the column the table may have.
				delete(acc, ColumnRef{Table: r.table, Column: name})
				acc.add(wholeRow(r)...)
				direct, found, definite = false, true, true
			}
		}
		if definite {
			break
		}
	}
	return ref{srcs: acc.sorted(), direct: direct && found, unresolved: !found}
}

// star expands * or q.* in a select list. Items whose columns are known
// expand to those; tables stay one star column naming the table.
func (l *lineage) star(qual []string, sc *scope) []OutputColumn {
	var items []*rel
	if len(qual) == 0 {
		if sc != nil {
			items = sc.leaves
		}
	} else if r := findRel(qual, sc); r != nil {
		items = []*rel{r}
		if r.kind == relJoin {
			items = r.leaves
		}
	} else {
		return []OutputColumn{{Name: "*", Sources: []ColumnRef{}, Star: true}}
	}
	var out []OutputColumn
	for _, r := range items {
		out = append(out, starColumns(r)...)
	}
	return out
}

func starColumns(r *rel) []OutputColumn {
	switch r.kind {
	case relTable:
		return []OutputColumn{{
			Name: "*", Star: true, Direct: true,
			Sources: []ColumnRef{{Table: r.table, Column: "*"}},
		}}
	case relKnown:
		return slices.Clone(r.cols)
	case relJoin:
		var out []OutputColumn
		for _, leaf := range r.leaves {
			out = append(out, starColumns(leaf)...)
		}
		return out
	}
	if !r.named {
		return []OutputColumn{{Name: "*", Star: true, Sources: slices.Clone(r.srcs)}}
	}
	out := make([]OutputColumn, 0, len(r.cols))
	for _, c := range r.cols {
		out = append(out, OutputColumn{Name: c.Name, Sources: slices.Clone(r.srcs)})
	}
	return out
}

// wholeRow is the sources of a whole-row reference to r.
func wholeRow(r *rel) []ColumnRef {
	acc := srcSet{}
	switch r.kind {
	case relTable:
		acc.add(ColumnRef{Table: r.table, Column: "*"})
	case relKnown:
		for _, c := range r.cols {
			acc.add(c.Sources...)
		}
	case relOpaque:
		acc.add(r.srcs...)
	case relJoin:
		for _, leaf := range r.leaves {
			acc.add(wholeRow(leaf)...)
		}
	}
	return acc.sorted()
}

// rename applies a column alias list to known columns. Past a star column
// the positions are unknown, so each remaining alias may be any column of
// the starred tables.
func rename(cols []OutputColumn, aliases []string) []OutputColumn {
	out := slices.Clone(cols)
	for i, a := range aliases {
		if i >= len(out) {
			break
		}
		if out[i].Star {
			var from []ColumnRef
			for _, c := range out[i:] {
				if c.Star {
					from = append(from, c.Sources...)
				}
			}
			for _, rest := range aliases[i:] {
				out = append(out, OutputColumn{Name: rest, Sources: sortRefs(from), Direct: out[i].Direct})
			}
			break
		}
		out[i].Name = a
	}
	return out
}

// mergeSetOp combines the arms of UNION, INTERSECT and EXCEPT: names from
// the left, sources from both. When stars make the positions unknown,
// every left column gets all the right sources and is not direct.
func mergeSetOp(left, right []OutputColumn) []OutputColumn {
	out := slices.Clone(left)
	hasStar := func(c OutputColumn) bool { return c.Star }
	if len(left) == len(right) && !slices.ContainsFunc(left, hasStar) &&
		!slices.ContainsFunc(right, hasStar) {
		for i := range out {
			acc := srcSet{}
			acc.add(left[i].Sources...)
			acc.add(right[i].Sources...)
			out[i].Sources = acc.sorted()
			out[i].Direct = left[i].Direct && right[i].Direct
		}
		return out
	}
	all := srcSet{}
	for _, c := range right {
		all.add(c.Sources...)
	}
	for i := range out {
		acc := srcSet{}
		acc.add(out[i].Sources...)
		for s := range all {
			acc.add(s)
		}
		out[i].Sources = acc.sorted()
		out[i].Direct = false
	}
	return out
}

func hasColumn(cols []OutputColumn, name string) bool {
	return slices.ContainsFunc(cols, func(c OutputColumn) bool { return c.Name == name })
}

func isStar(cr *pg_query.ColumnRef) bool {
	f := cr.GetFields()
	return len(f) > 0 && f[len(f)-1].GetAStar() != nil
}

func indirectionStar(ind *pg_query.A_Indirection) bool {
	f := ind.GetIndirection()
	return len(f) > 0 && f[len(f)-1].GetAStar() != nil
}

func aliasCols(a *pg_query.Alias) []string {
	return stringList(a.GetColnames())
}

// srcSet is a set of column references.
type srcSet map[ColumnRef]struct{}

func (s srcSet) add(refs ...ColumnRef) {
	for _, r := range refs {
		s[r] = struct{}{}
	}
}

func (s srcSet) sorted() []ColumnRef {
	out := make([]ColumnRef, 0, len(s))
	for r := range s {
		out = append(out, r)
	}
	return sortRefs(out)
}

func sortRefs(refs []ColumnRef) []ColumnRef {
	out := slices.Clone(refs)
	if out == nil {
		out = []ColumnRef{}
	}
	slices.SortFunc(out, func(a, b ColumnRef) int {
		return cmp.Or(cmp.Compare(a.Table, b.Table), cmp.Compare(a.Column, b.Column))
	})
	return slices.Compact(out)
}
