package sqlfacts

import (
	"slices"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
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
	defs   []*cteDef // the CTEs this level's WITH defines
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
	// compares is set for a CTE with a SEARCH or CYCLE clause, which
	// compares the values of the columns it names.
	compares bool
}

// ref is what a column reference resolves to.
type ref struct {
	srcs   []ColumnRef
	direct bool
	// unresolved is true when no FROM item at any level may hold the
	// column, so the parser cannot say where it comes from.
	unresolved bool
}

// lineage works out the output columns of a statement.
type lineage struct {
	calls set // t.f column references that are really calls of f
	memo  map[*pg_query.SelectStmt][]OutputColumn
	// scopes holds the level built for each query node (a *SelectStmt,
	// *InsertStmt, *UpdateStmt, *DeleteStmt or *MergeStmt), so that the
	// filter walk resolves names with the FROM items the lineage saw.
	scopes map[any]*scope
}

func newLineage() *lineage {
	return &lineage{
		calls:  set{},
		memo:   map[*pg_query.SelectStmt][]OutputColumn{},
		scopes: map[any]*scope{},
	}
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
		l.scopes[s] = sc
		return l.targets(s.GetReturningList(), sc)
	case n.GetUpdateStmt() != nil:
		s := n.GetUpdateStmt()
		sc := l.level(s.GetWithClause(), parent)
		sc.add(tableRel(s.GetRelation()))
		l.from(s.GetFromClause(), sc)
		l.scopes[s] = sc
		return l.targets(s.GetReturningList(), sc)
	case n.GetDeleteStmt() != nil:
		s := n.GetDeleteStmt()
		sc := l.level(s.GetWithClause(), parent)
		sc.add(tableRel(s.GetRelation()))
		l.from(s.GetUsingClause(), sc)
		l.scopes[s] = sc
		return l.targets(s.GetReturningList(), sc)
	case n.GetMergeStmt() != nil:
		s := n.GetMergeStmt()
		sc := l.level(s.GetWithClause(), parent)
		sc.add(tableRel(s.GetRelation()))
		l.fromItem(s.GetSourceRelation(), sc)
		l.scopes[s] = sc
		return l.targets(s.GetReturningList(), sc)
	}
	return nil
}

// level opens a query level below parent with the CTEs of w in scope.
func (l *lineage) level(w *pg_query.WithClause, parent *scope) *scope {
	env := parent.cteEnv()
	var defs []*cteDef
	if w != nil {
		for _, n := range w.GetCtes() {
			cte := n.GetCommonTableExpr()
			d := &cteDef{
				name:     cte.GetCtename(),
				query:    cte.GetCtequery(),
				aliases:  stringList(cte.GetAliascolnames()),
				scope:    &scope{parent: parent, ctes: env},
				compares: cte.GetCycleClause() != nil || cte.GetSearchClause() != nil,
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
	return &scope{parent: parent, ctes: env, defs: defs}
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
	l.scopes[s] = sc
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
			l.collect(v, sc, acc)
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
		oc := OutputColumn{Name: name, Sources: r.srcs, Direct: r.direct}
		if !r.direct {
			oc.Calls = l.exprCalls(val, sc, nil)
		}
		out = append(out, oc)
	}
	return out
}

// unseen stands for a transformation the parser cannot see.
var unseen = Call{Name: "?"}

// exprCalls appends the functions, operators and casts of the expression n
// to out. A column that is itself computed (in a subquery or CTE) and a
// subquery's value add unseen.
func (l *lineage) exprCalls(n *pg_query.Node, sc *scope, out []Call) []Call {
	switch {
	case n == nil:
		return out
	case n.GetColumnRef() != nil:
		cr := n.GetColumnRef()
		if isStar(cr) {
			return out
		}
		if r := l.columnRef(cr, sc); !r.direct && !wholeRows(r.srcs) {
			out = append(out, unseen)
		}
		return out
	case n.GetSubLink() != nil:
		return append(out, unseen)
	case n.GetFuncCall() != nil:
		fc := n.GetFuncCall()
		parts := stringList(fc.GetFuncname())
		c := Call{Name: "?"}
		if len(parts) > 0 {
			c.Name = strings.ToLower(parts[len(parts)-1])
		}
		for _, a := range fc.GetArgs() {
			text, ok := stringConst(a)
			c.Args, c.Const = append(c.Args, text), append(c.Const, ok)
		}
		out = append(out, c)
		for _, a := range fc.GetArgs() {
			out = l.exprCalls(a, sc, out)
		}
		for _, a := range fc.GetAggOrder() {
			out = l.exprCalls(a.GetSortBy().GetNode(), sc, out)
		}
		return out
	case n.GetAExpr() != nil:
		e := n.GetAExpr()
		out = append(out, Call{Name: "op:" + strings.Join(stringList(e.GetName()), ".")})
		return l.exprCalls(e.GetRexpr(), sc, l.exprCalls(e.GetLexpr(), sc, out))
	case n.GetTypeCast() != nil:
		return l.exprCalls(n.GetTypeCast().GetArg(), sc, append(out, Call{Name: "::"}))
	case n.GetCollateClause() != nil:
		return l.exprCalls(n.GetCollateClause().GetArg(), sc, out)
	case n.GetAConst() != nil, n.GetParamRef() != nil:
		return out
	}
	// Any other node (CASE, COALESCE, ARRAY[], ROW(), JSON builders,
	// indirection): name it by its kind and look at the nodes it holds.
	eachChild(n, func(name protoreflect.Name, m proto.Message) bool {
		out = append(out, Call{Name: "expr:" + string(name)})
		childNodes(m, func(c *pg_query.Node) { out = l.exprCalls(c, sc, out) })
		return false // a Node holds one expression
	})
	return out
}

// childNodes calls f on every Node directly below m, not below those.
func childNodes(m proto.Message, f func(*pg_query.Node)) {
	eachChild(m, func(_ protoreflect.Name, child proto.Message) bool {
		if n, ok := child.(*pg_query.Node); ok {
			f(n)
		} else {
			childNodes(child, f)
		}
		return true
	})
}

// wholeRows reports whether every source is a whole row ("t.*"): a row
// value, which is its columns as they are.
func wholeRows(srcs []ColumnRef) bool {
	for _, c := range srcs {
		if c.Column != "*" {
			return false
		}
	}
	return true
}

// stringConst returns the text of a string constant, cast or not.
func stringConst(n *pg_query.Node) (string, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.GetArg()
	}
	if c := n.GetAConst(); c != nil && c.GetSval() != nil {
		return c.GetSval().GetSval(), true
	}
	return "", false
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
		l.collect(n, sc, acc)
	}
	return ref{srcs: acc.sorted()}
}

// collect adds the sources of every column reference below m.
func (l *lineage) collect(m proto.Message, sc *scope, acc srcSet) {
	switch n := m.(type) {
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
			l.collect(t, sc, acc)
		}
		return
	case *pg_query.SelectStmt:
		for _, o := range l.selectOutputs(n, sc) {
			acc.add(o.Sources...)
		}
		return
	}
	eachChild(m, func(_ protoreflect.Name, child proto.Message) bool {
		l.collect(child, sc, acc)
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
		l.collect(jt, sc, acc)
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
		join := &rel{kind: relJoin, refname: a.GetAliasname(), leaves: inside}
		sc.quals = append(sc.quals[:quals], join)
	}
	if a := j.GetJoinUsingAlias(); a != nil {
		using := &rel{kind: relJoin, refname: a.GetAliasname(), leaves: inside}
		sc.quals = append(sc.quals, using)
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
				l.collect(it, sc, acc)
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
			l.collect(n, sc, acc)
		}
	}
	return acc.sorted()
}
