package sqlfacts

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// filters gathers the columns that decide which rows a text returns or
// touches: in WHERE, JOIN ON and USING, GROUP BY, HAVING, ORDER BY,
// DISTINCT ON, windows, LIMIT and OFFSET, CASE conditions, aggregate
// FILTER and ORDER BY, arguments of functions in FROM, and conditions and
// select lists of subqueries used as conditions. A masked column used
// there can be guessed one query or one row at a time although it never
// comes back. Values that are returned or stored (a select list, SET,
// VALUES, INSERT ... SELECT) are the output lineage's business and the
// approval of writes, not filters.
//
// Names are resolved with the lineage's levels, so aliases, subqueries
// and CTEs lead to the table column as they do for output columns. A
// name no FROM item may hold is kept with an empty table.
type filters struct {
	l   *lineage
	acc srcSet
}

func newFilters(l *lineage) *filters {
	return &filters{l: l, acc: srcSet{}}
}

// sorted returns what was gathered, sorted and never nil.
func (f *filters) sorted() []ColumnRef { return f.acc.sorted() }

// statement walks one top-level statement.
func (f *filters) statement(n *pg_query.Node) {
	switch {
	case n.GetSelectStmt() != nil, isDML(n):
		f.query(n, nil, true)
	default:
		// EXPLAIN, CREATE TABLE AS, views, COPY (query), rules, cursors.
		f.generic(n)
	}
}

func isDML(n *pg_query.Node) bool {
	return n.GetInsertStmt() != nil || n.GetUpdateStmt() != nil ||
		n.GetDeleteStmt() != nil || n.GetMergeStmt() != nil
}

// generic walks a statement the lineage does not model: every query found
// is walked as one at the top, and a column outside any query (a DDL
// expression) is unresolved.
func (f *filters) generic(m proto.Message) {
	if n, ok := m.(*pg_query.Node); ok {
		if n.GetSelectStmt() != nil || isDML(n) {
			f.query(n, nil, true)
			return
		}
		if cr := n.GetColumnRef(); cr != nil {
			f.column(cr, nil)
			return
		}
	}
	childNodes(m, func(c *pg_query.Node) { f.generic(c) })
}

// query walks a query at a level below parent. value says that its select
// list (or RETURNING list) is returned or stored, or passes through a FROM
// subquery or CTE where the lineage follows it; otherwise the list itself
// is a condition (IN, ANY, EXISTS, LIMIT).
// TODO(filters): stored values (INSERT ... SELECT api_token, UPDATE SET
// role = email, CREATE TABLE AS) copy a masked value where no mask rule
// may name it; only the approval of writes stands in the way.
func (f *filters) query(n *pg_query.Node, parent *scope, value bool) {
	switch {
	case n.GetSelectStmt() != nil:
		f.selectStmt(n, parent, value)
	case n.GetInsertStmt() != nil:
		s := n.GetInsertStmt()
		sc := f.scopeOf(n, s, parent)
		f.ctes(sc)
		if src := s.GetSelectStmt(); src != nil {
			f.query(src, &scope{parent: sc.parent, ctes: sc.ctes}, true)
		}
		f.onConflict(s, sc)
		f.list(s.GetReturningList(), sc, value)
	case n.GetUpdateStmt() != nil:
		s := n.GetUpdateStmt()
		sc := f.scopeOf(n, s, parent)
		f.ctes(sc)
		f.from(s.GetFromClause(), sc)
		f.list(s.GetTargetList(), sc, true)
		f.expr(s.GetWhereClause(), sc)
		f.list(s.GetReturningList(), sc, value)
	case n.GetDeleteStmt() != nil:
		s := n.GetDeleteStmt()
		sc := f.scopeOf(n, s, parent)
		f.ctes(sc)
		f.from(s.GetUsingClause(), sc)
		f.expr(s.GetWhereClause(), sc)
		f.list(s.GetReturningList(), sc, value)
	case n.GetMergeStmt() != nil:
		s := n.GetMergeStmt()
		sc := f.scopeOf(n, s, parent)
		f.ctes(sc)
		f.fromItem(s.GetSourceRelation(), sc)
		f.expr(s.GetJoinCondition(), sc)
		for _, n := range s.GetMergeWhenClauses() {
			w := n.GetMergeWhenClause()
			f.expr(w.GetCondition(), sc)
			f.list(w.GetTargetList(), sc, true)
			f.list(w.GetValues(), sc, true)
		}
		f.list(s.GetReturningList(), sc, value)
	}
}

// scopeOf returns the level the lineage built for the query node stmt
// (held by n), working it out first if the lineage has not met it.
func (f *filters) scopeOf(n *pg_query.Node, stmt any, parent *scope) *scope {
	if sc, ok := f.l.scopes[stmt]; ok {
		return sc
	}
	f.l.query(n, parent)
	if sc, ok := f.l.scopes[stmt]; ok {
		return sc
	}
	return &scope{parent: parent, ctes: parent.cteEnv()}
}

// ctes walks the CTEs a level defines, used or not: a data-modifying CTE
// runs either way.
func (f *filters) ctes(sc *scope) {
	for _, d := range sc.defs {
		outs := f.l.cteOutputs(d)
		f.query(d.query, d.scope, true)
		if d.compares {
			// SEARCH and CYCLE compare the columns they name: every
			// column of the CTE counts, which errs on the safe side.
			for _, o := range outs {
				f.acc.add(o.Sources...)
			}
		}
	}
}

func (f *filters) selectStmt(n *pg_query.Node, parent *scope, value bool) {
	s := n.GetSelectStmt()
	sc := f.scopeOf(n, s, parent)
	f.ctes(sc)
	outs := f.l.selectOutputs(s, parent)

	// INTERSECT, EXCEPT and UNION without ALL compare whole rows of their
	// arms, and a plain DISTINCT compares the rows it returns: which rows
	// come back, and how many, then depends on every value of the select
	// list, so the select list counts as a condition.
	compares := s.GetOp() != pg_query.SetOperation_SETOP_NONE &&
		(s.GetOp() != pg_query.SetOperation_SETOP_UNION || !s.GetAll())
	if d := s.GetDistinctClause(); len(d) > 0 && d[0].GetNode() == nil {
		compares = true
	}
	if s.GetLarg() != nil || s.GetRarg() != nil {
		for _, arm := range []*pg_query.SelectStmt{s.GetLarg(), s.GetRarg()} {
			if arm != nil {
				f.selectStmt(&pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: arm}}, sc, value && !compares)
			}
		}
	}
	for _, row := range s.GetValuesLists() {
		f.list(row.GetList().GetItems(), sc, value && !compares)
	}
	f.from(s.GetFromClause(), sc)
	f.list(s.GetTargetList(), sc, value && !compares)
	f.expr(s.GetWhereClause(), sc)
	f.expr(s.GetHavingClause(), sc)
	for _, w := range s.GetWindowClause() {
		f.expr(w, sc)
	}
	f.expr(s.GetLimitOffset(), sc)
	f.expr(s.GetLimitCount(), sc)

	// Sort and grouping keys may name an output column by its name or its
	// position. ORDER BY and DISTINCT ON prefer the output name; GROUP BY
	// prefers an input column, so it takes both.
	f.keys(s.GetSortClause(), sc, outs, false)
	f.keys(s.GetDistinctClause(), sc, outs, false)
	f.keys(s.GetGroupClause(), sc, outs, true)
}

// list walks a select, RETURNING, SET or VALUES list: as values returned
// or stored when value is set, else as conditions.
func (f *filters) list(items []*pg_query.Node, sc *scope, value bool) {
	for _, it := range items {
		if rt := it.GetResTarget(); rt != nil {
			// The indirection of a SET target (SET a[i] = ...) is a
			// condition too.
			for _, ind := range rt.GetIndirection() {
				f.expr(ind, sc)
			}
			it = rt.GetVal()
		}
		if value {
			f.value(it, sc)
		} else {
			f.expr(it, sc)
		}
	}
}

// keys walks ORDER BY, DISTINCT ON or GROUP BY items. An integer names
// the output column at that position; a bare name may name an output
// column.
func (f *filters) keys(items []*pg_query.Node, sc *scope, outs []OutputColumn, input bool) {
	for _, it := range items {
		if sb := it.GetSortBy(); sb != nil {
			it = sb.GetNode()
		}
		if c := it.GetAConst(); c != nil && c.GetIval() != nil {
			f.position(outs, int(c.GetIval().GetIval()))
			continue
		}
		if cr := it.GetColumnRef(); cr != nil && !isStar(cr) && len(cr.GetFields()) == 1 {
			name := lastString(cr.GetFields())
			if f.outputNamed(outs, name) && !input && !hasStar(outs) {
				continue
			}
		}
		f.expr(it, sc)
	}
}

// outputNamed adds the sources of the named output columns called name
// and reports whether there was one.
func (f *filters) outputNamed(outs []OutputColumn, name string) bool {
	hit := false
	for _, o := range outs {
		if !o.Star && o.Name == name {
			f.acc.add(o.Sources...)
			hit = true
		}
	}
	return hit
}

// position adds the sources of output column k (1-based). Past a star
// over a table the position is unknown, so every column from the first
// star on may be meant.
func (f *filters) position(outs []OutputColumn, k int) {
	first := -1
	for j, o := range outs {
		if o.Star {
			first = j
			break
		}
	}
	switch {
	case k < 1:
		return
	case first < 0 || k-1 < first:
		if k-1 < len(outs) {
			f.acc.add(outs[k-1].Sources...)
		}
		return
	}
	for _, o := range outs[first:] {
		f.acc.add(o.Sources...)
	}
}

func hasStar(outs []OutputColumn) bool {
	for _, o := range outs {
		if o.Star {
			return true
		}
	}
	return false
}

// from walks FROM items. A subquery's select list passes through (the
// outer level's uses of it are resolved through the lineage); arguments
// of functions in FROM decide how many rows come back, so they count.
func (f *filters) from(items []*pg_query.Node, sc *scope) {
	for _, it := range items {
		f.fromItem(it, sc)
	}
}

func (f *filters) fromItem(n *pg_query.Node, sc *scope) {
	switch {
	case n == nil, n.GetRangeVar() != nil:
	case n.GetRangeSubselect() != nil:
		rs := n.GetRangeSubselect()
		inner := &scope{parent: sc.parent, ctes: sc.ctes}
		if rs.GetLateral() {
			inner = sc
		}
		f.query(rs.GetSubquery(), inner, true)
	case n.GetJoinExpr() != nil:
		j := n.GetJoinExpr()
		f.fromItem(j.GetLarg(), sc)
		f.fromItem(j.GetRarg(), sc)
		f.expr(j.GetQuals(), sc)
		for _, u := range stringList(j.GetUsingClause()) {
			f.add(f.l.unqualified(u, sc), u)
		}
		if j.GetIsNatural() {
			// NATURAL JOIN compares every column the two sides share,
			// which only the catalogue knows for a table: each side's
			// columns count, a table's as a whole row.
			f.natural(j.GetLarg(), sc)
			f.natural(j.GetRarg(), sc)
		}
	case n.GetRangeTableSample() != nil:
		ts := n.GetRangeTableSample()
		f.fromItem(ts.GetRelation(), sc)
		for _, a := range ts.GetArgs() {
			f.expr(a, sc)
		}
		f.expr(ts.GetRepeatable(), sc)
	default:
		// Functions, ROWS FROM, XMLTABLE, JSON_TABLE.
		f.expr(n, sc)
	}
}

// onConflict walks ON CONFLICT: its target columns, conditions and SET
// list, where "excluded" is the row proposed for insertion.
func (f *filters) onConflict(s *pg_query.InsertStmt, sc *scope) {
	oc := s.GetOnConflictClause()
	if oc == nil {
		return
	}
	target := tableRel(s.GetRelation())
	excluded := tableRel(s.GetRelation())
	excluded.refname, excluded.relname, excluded.schema = "excluded", "", ""
	inner := &scope{parent: sc.parent, ctes: sc.ctes}
	inner.add(target)
	inner.quals = append(inner.quals, excluded)
	if inf := oc.GetInfer(); inf != nil {
		for _, e := range inf.GetIndexElems() {
			if name := e.GetIndexElem().GetName(); name != "" {
				f.acc.add(ColumnRef{Table: target.table, Column: name})
			}
			f.expr(e.GetIndexElem().GetExpr(), inner)
		}
		f.expr(inf.GetWhereClause(), inner)
	}
	f.list(oc.GetTargetList(), inner, true)
	f.expr(oc.GetWhereClause(), inner)
}

// value walks an output value: its plain columns are the lineage's
// business, but CASE conditions, aggregate FILTER and ORDER BY, windows,
// and conditions inside subqueries count.
func (f *filters) value(n *pg_query.Node, sc *scope) {
	switch {
	case n == nil, n.GetColumnRef() != nil:
		return
	case n.GetSubLink() != nil:
		sl := n.GetSubLink()
		switch sl.GetSubLinkType() {
		case pg_query.SubLinkType_EXPR_SUBLINK, pg_query.SubLinkType_ARRAY_SUBLINK:
			f.query(sl.GetSubselect(), sc, true)
		default:
			f.query(sl.GetSubselect(), sc, false)
		}
		f.expr(sl.GetTestexpr(), sc)
		return
	case n.GetCaseExpr() != nil:
		ce := n.GetCaseExpr()
		f.expr(ce.GetArg(), sc)
		for _, w := range ce.GetArgs() {
			f.expr(w.GetCaseWhen().GetExpr(), sc)
			f.value(w.GetCaseWhen().GetResult(), sc)
		}
		f.value(ce.GetDefresult(), sc)
		return
	case n.GetFuncCall() != nil:
		fc := n.GetFuncCall()
		srf := setReturningFunctions.has(lastString(fc.GetFuncname()))
		for _, a := range fc.GetArgs() {
			if srf {
				// How many rows it yields depends on the arguments.
				f.expr(a, sc)
			} else {
				f.value(a, sc)
			}
		}
		for _, o := range fc.GetAggOrder() {
			if fc.GetAggWithinGroup() {
				f.value(o.GetSortBy().GetNode(), sc)
			} else {
				f.expr(o, sc)
			}
		}
		f.expr(fc.GetAggFilter(), sc)
		if w := fc.GetOver(); w != nil {
			childNodes(w, func(c *pg_query.Node) { f.expr(c, sc) })
		}
		return
	}
	childNodes(n, func(c *pg_query.Node) { f.value(c, sc) })
}

// expr walks a condition: every column below it counts.
func (f *filters) expr(n *pg_query.Node, sc *scope) {
	switch {
	case n == nil:
		return
	case n.GetColumnRef() != nil:
		f.column(n.GetColumnRef(), sc)
		return
	case n.GetSubLink() != nil:
		sl := n.GetSubLink()
		f.query(sl.GetSubselect(), sc, false)
		f.expr(sl.GetTestexpr(), sc)
		return
	case n.GetSelectStmt() != nil, isDML(n):
		f.query(n, sc, false)
		return
	}
	childNodes(n, func(c *pg_query.Node) { f.expr(c, sc) })
}

// column resolves a column reference used as a condition.
func (f *filters) column(cr *pg_query.ColumnRef, sc *scope) {
	names := stringList(cr.GetFields())
	if isStar(cr) {
		if len(names) > 0 && findRel(names, sc) == nil {
			f.acc.add(ColumnRef{Column: "*"})
			return
		}
		f.acc.add(f.l.columnRef(cr, sc).srcs...)
		return
	}
	name := ""
	if len(names) > 0 {
		name = names[len(names)-1]
	}
	f.add(f.l.columnRef(cr, sc), name)
}

// add records a resolved reference, or name with an empty table when no
// FROM item may hold it.
func (f *filters) add(r ref, name string) {
	if r.unresolved && len(r.srcs) == 0 {
		f.acc.add(ColumnRef{Column: name})
		return
	}
	f.acc.add(r.srcs...)
}

// natural adds the columns a FROM item offers to a NATURAL JOIN.
func (f *filters) natural(n *pg_query.Node, sc *scope) {
	switch {
	case n == nil:
	case n.GetRangeVar() != nil:
		r := f.l.rangeVarRel(n.GetRangeVar(), sc)
		if r.kind == relTable {
			f.acc.add(ColumnRef{Table: r.table, Column: "*"})
			return
		}
		for _, c := range r.cols {
			f.acc.add(c.Sources...)
		}
	case n.GetRangeSubselect() != nil:
		inner := &scope{parent: sc.parent, ctes: sc.ctes}
		if n.GetRangeSubselect().GetLateral() {
			inner = sc
		}
		for _, c := range f.l.query(n.GetRangeSubselect().GetSubquery(), inner) {
			f.acc.add(c.Sources...)
		}
	case n.GetJoinExpr() != nil:
		f.natural(n.GetJoinExpr().GetLarg(), sc)
		f.natural(n.GetJoinExpr().GetRarg(), sc)
	}
}

// setReturningFunctions are built-in functions that yield a set of rows,
// so called in a select list they decide how many rows come back. A
// user-defined one is not known here.
var setReturningFunctions = setOf(
	"generate_series", "generate_subscripts", "unnest", "regexp_matches",
	"regexp_split_to_table", "string_to_table", "json_array_elements",
	"json_array_elements_text", "jsonb_array_elements",
	"jsonb_array_elements_text", "json_each", "json_each_text", "jsonb_each",
	"jsonb_each_text", "json_object_keys", "jsonb_object_keys",
	"json_populate_recordset", "jsonb_populate_recordset",
	"json_to_recordset", "jsonb_to_recordset", "jsonb_path_query",
	"ts_debug", "ts_parse", "ts_stat",
)
