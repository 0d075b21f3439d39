package sqlfacts

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// relKind says what a FROM item is, as far as the parser can tell.
type relKind int

const (
	relTable  relKind = iota // a table or view: columns unknown
	relKnown                 // a subquery, CTE or VALUES: columns known
	relOpaque                // a function or table function: data from its arguments
	relJoin                  // an aliased join: its leaves hold the columns
)

// rel is one FROM item.
type rel struct {
	kind    relKind
	refname string          // the name columns are qualified with
	schema  string          // relTable: schema-qualified name, if written so
	table   string          // relTable: the relation as written
	relname string          // relTable without alias: the bare relation name
	renamed map[string]bool // relTable: alias column names (positions unknown)
	cols    []OutputColumn  // relKnown: the columns; relOpaque: known names
	named   bool            // relOpaque: cols name every column
	srcs    []ColumnRef     // relOpaque: sources of the arguments
	leaves  []*rel          // relJoin: the items below
}

// scope is one query level: its FROM items and the CTEs it sees.
type scope struct {
	quals  []*rel // items columns can be qualified with
	leaves []*rel // base items, for unqualified columns and *
	ctes   *cteEnv
	parent *scope
}

func (s *scope) cteEnv() *cteEnv {
	if s == nil {
		return nil
	}
	return s.ctes
}

func (s *scope) add(r *rel) {
	s.quals = append(s.quals, r)
	s.leaves = append(s.leaves, r)
}

// cteEnv is the chain of CTEs visible at a point; the innermost comes first.
type cteEnv struct {
	def    *cteDef
	parent *cteEnv
}

func (e *cteEnv) lookup(name string) *cteDef {
	for ; e != nil; e = e.parent {
		if e.def.name == name {
			return e.def
		}
	}
	return nil
}

// cteDef is one CTE, its outputs worked out on first use.
type cteDef struct {
	name    string
	query   *pg_query.Node
	aliases []string
	scope   *scope
	state   int            // 0 new, 1 being worked out, 2 done
	partial []OutputColumn // recursive CTE: the non-recursive arm
	outs    []OutputColumn
}

// ref is what a column reference resolves to.
type ref struct {
	srcs   []ColumnRef
	direct bool
}

// lineage works out the output columns of a statement.
type lineage struct {
	calls set // t.f column references that are really calls of f
	memo  map[*pg_query.SelectStmt][]OutputColumn
}

func newLineage() *lineage {
	return &lineage{calls: set{}, memo: map[*pg_query.SelectStmt][]OutputColumn{}}
}

// statement returns the output columns of a top-level statement.
func (l *lineage) statement(stmt *pg_query.Node) []OutputColumn {
	out := l.statementColumns(stmt)
	for i := range out {
		if out[i].Sources == nil {
			out[i].Sources = []ColumnRef{}
		}
	}
	return out
}

func (l *lineage) statementColumns(stmt *pg_query.Node) []OutputColumn {
	out := []OutputColumn{}
	switch {
	case stmt.GetSelectStmt() != nil:
		if stmt.GetSelectStmt().GetIntoClause() == nil {
			out = append(out, l.query(stmt, nil)...)
		}
	case stmt.GetInsertStmt() != nil, stmt.GetUpdateStmt() != nil,
		stmt.GetDeleteStmt() != nil, stmt.GetMergeStmt() != nil:
		out = append(out, l.query(stmt, nil)...)
	case stmt.GetExplainStmt() != nil:
		out = append(out, OutputColumn{Name: "QUERY PLAN", Sources: []ColumnRef{}})
	case stmt.GetVariableShowStmt() != nil:
		name := stmt.GetVariableShowStmt().GetName()
		if name == "all" {
			for _, n := range []string{"name", "setting", "description"} {
				out = append(out, OutputColumn{Name: n, Sources: []ColumnRef{}})
			}
			break
		}
		out = append(out, OutputColumn{Name: name, Sources: []ColumnRef{}})
	}
	return out
}

// query returns the output columns of a query node: a SELECT, or the
// RETURNING list of a data-modifying statement.
func (l *lineage) query(n *pg_query.Node, parent *scope) []OutputColumn {
	switch {
	case n.GetSelectStmt() != nil:
		return l.selectOutputs(n.GetSelectStmt(), parent)
	case n.GetInsertStmt() != nil:
		s := n.GetInsertStmt()
		sc := l.level(s.GetWithClause(), parent)
		sc.add(tableRel(s.GetRelation()))
		return l.targets(s.GetReturningList(), sc)
	case n.GetUpdateStmt() != nil:
		s := n.GetUpdateStmt()
		sc := l.level(s.GetWithClause(), parent)
		sc.add(tableRel(s.GetRelation()))
		l.from(s.GetFromClause(), sc)
		return l.targets(s.GetReturningList(), sc)
	case n.GetDeleteStmt() != nil:
		s := n.GetDeleteStmt()
		sc := l.level(s.GetWithClause(), parent)
		sc.add(tableRel(s.GetRelation()))
		l.from(s.GetUsingClause(), sc)
		return l.targets(s.GetReturningList(), sc)
	case n.GetMergeStmt() != nil:
		s := n.GetMergeStmt()
		sc := l.level(s.GetWithClause(), parent)
		sc.add(tableRel(s.GetRelation()))
		l.fromItem(s.GetSourceRelation(), sc)
		return l.targets(s.GetReturningList(), sc)
	}
	return nil
}

// level opens a query level below parent with the CTEs of w in scope.
func (l *lineage) level(w *pg_query.WithClause, parent *scope) *scope {
	env := parent.cteEnv()
	if w != nil {
		var defs []*cteDef
		for _, n := range w.GetCtes() {
			cte := n.GetCommonTableExpr()
			d := &cteDef{
				name:    cte.GetCtename(),
				query:   cte.GetCtequery(),
				aliases: stringList(cte.GetAliascolnames()),
				scope:   &scope{parent: parent, ctes: env},
			}
			env = &cteEnv{def: d, parent: env}
			defs = append(defs, d)
		}
		if w.GetRecursive() {
			for _, d := range defs {
				d.scope.ctes = env
			}
		}
	}
	return &scope{parent: parent, ctes: env}
}

func (l *lineage) cteOutputs(d *cteDef) []OutputColumn {
	switch d.state {
	case 2:
		return d.outs
	case 1:
		return d.partial // a recursive CTE reading itself
	}
	d.state = 1
	if s := d.query.GetSelectStmt(); s != nil && s.GetLarg() != nil {
		d.partial = rename(l.selectOutputs(s.GetLarg(), d.scope), d.aliases)
	}
	d.outs = rename(l.query(d.query, d.scope), d.aliases)
	d.state = 2
	return d.outs
}

func (l *lineage) selectOutputs(s *pg_query.SelectStmt, parent *scope) []OutputColumn {
	if s == nil {
		return nil
	}
	if out, ok := l.memo[s]; ok {
		return out
	}
	l.memo[s] = nil

	sc := l.level(s.GetWithClause(), parent)
	var out []OutputColumn
	switch {
	case s.GetOp() != pg_query.SetOperation_SETOP_NONE &&
		s.GetOp() != pg_query.SetOperation_SET_OPERATION_UNDEFINED:
		out = mergeSetOp(l.selectOutputs(s.GetLarg(), sc), l.selectOutputs(s.GetRarg(), sc))
	case len(s.GetValuesLists()) > 0:
		out = l.values(s.GetValuesLists(), sc)
	default:
		l.from(s.GetFromClause(), sc)
		out = l.targets(s.GetTargetList(), sc)
	}
	l.memo[s] = out
	return out
}

// values names VALUES columns column1, column2, ... as PostgreSQL does.
func (l *lineage) values(rows []*pg_query.Node, sc *scope) []OutputColumn {
	var out []OutputColumn
	for _, row := range rows {
		for i, v := range row.GetList().GetItems() {
			if i == len(out) {
				out = append(out, OutputColumn{Name: "column" + strconv.Itoa(i+1)})
			}
			acc := srcSet{}
			acc.add(out[i].Sources...)
			l.collect(v.ProtoReflect(), sc, acc)
			out[i].Sources = acc.sorted()
		}
	}
	return out
}

func (l *lineage) targets(list []*pg_query.Node, sc *scope) []OutputColumn {
	out := []OutputColumn{}
	for _, n := range list {
		rt := n.GetResTarget()
		if rt == nil {
			continue
		}
		val := rt.GetVal()
		if cr := val.GetColumnRef(); cr != nil && isStar(cr) {
			out = append(out, l.star(stringList(cr.GetFields()), sc)...)
			continue
		}
		if ind := val.GetAIndirection(); ind != nil && indirectionStar(ind) {
			// (composite).*: the fields are unknown to the parser.
			r := l.value(ind.GetArg(), sc)
			out = append(out, OutputColumn{Name: "*", Sources: r.srcs, Star: true})
			continue
		}
		name := rt.GetName()
		if name == "" {
			name = figureName(val)
		}
		r := l.value(val, sc)
		out = append(out, OutputColumn{Name: name, Sources: r.srcs, Direct: r.direct})
	}
	return out
}

// value works out where an expression's value comes from. Only a plain
// column reference, or a scalar subquery returning one, is direct.
func (l *lineage) value(n *pg_query.Node, sc *scope) ref {
	if cr := n.GetColumnRef(); cr != nil {
		return l.columnRef(cr, sc)
	}
	if sl := n.GetSubLink(); sl != nil && sl.GetSubLinkType() == pg_query.SubLinkType_EXPR_SUBLINK {
		if outs := l.query(sl.GetSubselect(), sc); len(outs) > 0 {
			return ref{srcs: outs[0].Sources, direct: outs[0].Direct && !outs[0].Star}
		}
		return ref{srcs: []ColumnRef{}}
	}
	acc := srcSet{}
	if n != nil {
		l.collect(n.ProtoReflect(), sc, acc)
	}
	return ref{srcs: acc.sorted()}
}

// collect adds the sources of every column reference below m.
func (l *lineage) collect(m protoreflect.Message, sc *scope, acc srcSet) {
	switch n := m.Interface().(type) {
	case *pg_query.ColumnRef:
		acc.add(l.columnRef(n, sc).srcs...)
		return
	case *pg_query.SubLink:
		if n.GetSubLinkType() != pg_query.SubLinkType_EXISTS_SUBLINK {
			outs := l.query(n.GetSubselect(), sc)
			switch n.GetSubLinkType() {
			case pg_query.SubLinkType_EXPR_SUBLINK, pg_query.SubLinkType_ARRAY_SUBLINK:
				outs = outs[:min(len(outs), 1)]
			}
			for _, o := range outs {
				acc.add(o.Sources...)
			}
		}
		if t := n.GetTestexpr(); t != nil {
			l.collect(t.ProtoReflect(), sc, acc)
		}
		return
	case *pg_query.SelectStmt:
		for _, o := range l.selectOutputs(n, sc) {
			acc.add(o.Sources...)
		}
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			list := v.List()
			for i := range list.Len() {
				l.collect(list.Get(i).Message(), sc, acc)
			}
			return true
		}
		l.collect(v.Message(), sc, acc)
		return true
	})
}

// from adds the FROM items to the level sc, left to right, so that a
// LATERAL item sees those before it.
func (l *lineage) from(items []*pg_query.Node, sc *scope) {
	for _, it := range items {
		l.fromItem(it, sc)
	}
}

func (l *lineage) fromItem(n *pg_query.Node, sc *scope) {
	switch {
	case n.GetRangeVar() != nil:
		sc.add(l.rangeVarRel(n.GetRangeVar(), sc))
	case n.GetRangeSubselect() != nil:
		rs := n.GetRangeSubselect()
		inner := &scope{parent: sc.parent, ctes: sc.ctes}
		if rs.GetLateral() {
			inner = sc
		}
		cols := rename(l.query(rs.GetSubquery(), inner), aliasCols(rs.GetAlias()))
		sc.add(&rel{kind: relKnown, refname: rs.GetAlias().GetAliasname(), cols: cols})
	case n.GetRangeFunction() != nil:
		sc.add(l.functionRel(n.GetRangeFunction(), sc))
	case n.GetRangeTableSample() != nil:
		l.fromItem(n.GetRangeTableSample().GetRelation(), sc)
	case n.GetRangeTableFunc() != nil:
		tf := n.GetRangeTableFunc()
		r := &rel{kind: relOpaque, refname: tf.GetAlias().GetAliasname(), named: true}
		for _, c := range tf.GetColumns() {
			r.cols = append(r.cols, OutputColumn{Name: c.GetRangeTableFuncCol().GetColname()})
		}
		r.srcs = l.sources(sc, tf.GetDocexpr(), tf.GetRowexpr())
		sc.add(r)
	case n.GetJsonTable() != nil:
		jt := n.GetJsonTable()
		acc := srcSet{}
		l.collect(jt.ProtoReflect(), sc, acc)
		sc.add(&rel{kind: relOpaque, refname: jt.GetAlias().GetAliasname(), srcs: acc.sorted()})
	case n.GetJoinExpr() != nil:
		l.join(n.GetJoinExpr(), sc)
	default:
		sc.add(&rel{kind: relOpaque})
	}
}

// join adds both sides of a join. An aliased join hides the names inside
// it: columns are then qualified with the join alias only.
func (l *lineage) join(j *pg_query.JoinExpr, sc *scope) {
	quals, leaves := len(sc.quals), len(sc.leaves)
	l.fromItem(j.GetLarg(), sc)
	l.fromItem(j.GetRarg(), sc)
	inside := slices.Clone(sc.leaves[leaves:])
	if a := j.GetAlias(); a != nil {
		sc.quals = append(sc.quals[:quals], &rel{kind: relJoin, refname: a.GetAliasname(), leaves: inside})
	}
	if a := j.GetJoinUsingAlias(); a != nil {
		sc.quals = append(sc.quals, &rel{kind: relJoin, refname: a.GetAliasname(), leaves: inside})
	}
}

func (l *lineage) rangeVarRel(rv *pg_query.RangeVar, sc *scope) *rel {
	if rv.GetSchemaname() == "" && rv.GetCatalogname() == "" {
		if d := sc.cteEnv().lookup(rv.GetRelname()); d != nil {
			name := rv.GetRelname()
			if a := rv.GetAlias(); a != nil {
				name = a.GetAliasname()
			}
			cols := rename(l.cteOutputs(d), aliasCols(rv.GetAlias()))
			return &rel{kind: relKnown, refname: name, cols: cols}
		}
	}
	return tableRel(rv)
}

func tableRel(rv *pg_query.RangeVar) *rel {
	r := &rel{
		kind: relTable, table: tableName(rv),
		refname: rv.GetRelname(), relname: rv.GetRelname(),
	}
	if rv.GetSchemaname() != "" {
		r.schema = rv.GetSchemaname() + "." + rv.GetRelname()
	}
	if a := rv.GetAlias(); a != nil {
		r.refname, r.relname, r.schema = a.GetAliasname(), "", ""
		for _, c := range aliasCols(a) {
			if r.renamed == nil {
				r.renamed = map[string]bool{}
			}
			r.renamed[c] = true
		}
	}
	return r
}

// functionRel describes a function in FROM. Its rows come from its
// arguments as far as the parser can tell; its column names are known only
// from a column alias list or a column definition list.
func (l *lineage) functionRel(rf *pg_query.RangeFunction, sc *scope) *rel {
	r := &rel{kind: relOpaque, refname: rf.GetAlias().GetAliasname()}
	acc := srcSet{}
	var defs []*pg_query.Node
	for _, f := range rf.GetFunctions() {
		items := f.GetList().GetItems()
		for i, it := range items {
			if i == 0 {
				l.collect(it.ProtoReflect(), sc, acc)
				if fc := it.GetFuncCall(); fc != nil && r.refname == "" {
					if parts := stringList(fc.GetFuncname()); len(parts) > 0 {
						r.refname = parts[len(parts)-1]
					}
				}
				continue
			}
			defs = append(defs, it.GetList().GetItems()...)
		}
	}
	r.srcs = acc.sorted()
	defs = append(defs, rf.GetColdeflist()...)

	names := aliasCols(rf.GetAlias())
	if len(names) == 0 {
		for _, d := range defs {
			if cd := d.GetColumnDef(); cd != nil {
				names = append(names, cd.GetColname())
			}
		}
	}
	if len(names) > 0 {
		r.named = true
		for _, n := range names {
			r.cols = append(r.cols, OutputColumn{Name: n})
		}
		if rf.GetOrdinality() {
			r.cols = append(r.cols, OutputColumn{Name: "ordinality"})
		}
	}
	return r
}

func (l *lineage) sources(sc *scope, nodes ...*pg_query.Node) []ColumnRef {
	acc := srcSet{}
	for _, n := range nodes {
		if n != nil {
			l.collect(n.ProtoReflect(), sc, acc)
		}
	}
	return acc.sorted()
}

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
				if !r.named || slices.ContainsFunc(r.cols, func(c OutputColumn) bool { return c.Name == name }) {
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
	return ref{srcs: acc.sorted(), direct: direct && found}
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
