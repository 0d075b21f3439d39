package sqlfacts

import (
	"slices"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// set is a set of strings that lists itself sorted.
type set map[string]struct{}

func (s set) add(v string) { s[v] = struct{}{} }

func setOf(vals ...string) set {
	s := make(set, len(vals))
	for _, v := range vals {
		s.add(v)
	}
	return s
}

func (s set) has(v string) bool {
	_, ok := s[v]
	return ok
}

func (s set) sorted() []string {
	out := make([]string, 0, len(s))
	for v := range s {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// sideEffectFunctions are functions that change state although they are
// called from a SELECT: settings, sequences, notifications, other
// connections, large objects, server files, backends, replication,
// advisory locks, and functions that run SQL given as text. Calling one
// clears ReadOnly whatever the schema written.
var sideEffectFunctions = setOf(
	"set_config", "nextval", "setval", "pg_notify", "dblink", "dblink_exec",
	"dblink_connect", "dblink_connect_u", "dblink_send_query", "dblink_open",
	"dblink_fetch", "dblink_close", "dblink_disconnect", "lo_import",
	"lo_export", "lo_unlink", "lo_create", "lo_creat", "lo_from_bytea",
	"lo_put", "lowrite", "lo_truncate", "lo_truncate64", "pg_file_write",
	"pg_file_unlink", "pg_file_rename", "pg_file_sync", "pg_terminate_backend",
	"pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
	"pg_switch_wal", "pg_create_restore_point", "pg_promote",
	"pg_backup_start", "pg_backup_stop", "pg_wal_replay_pause",
	"pg_wal_replay_resume", "pg_log_backend_memory_contexts", "pg_stat_reset",
	"pg_stat_reset_shared", "pg_stat_reset_single_table_counters",
	"pg_stat_reset_single_function_counters", "pg_stat_reset_slru",
	"pg_stat_reset_replication_slot", "pg_stat_reset_subscription_stats",
	"pg_create_physical_replication_slot",
	"pg_create_logical_replication_slot", "pg_drop_replication_slot",
	"pg_copy_physical_replication_slot", "pg_copy_logical_replication_slot",
	"pg_replication_slot_advance", "pg_logical_slot_get_changes",
	"pg_logical_slot_get_binary_changes", "pg_logical_emit_message",
	"pg_replication_origin_create", "pg_replication_origin_drop",
	"pg_replication_origin_advance", "pg_replication_origin_session_setup",
	"pg_import_system_collations", "pg_advisory_lock",
	"pg_advisory_lock_shared", "pg_advisory_xact_lock",
	"pg_advisory_xact_lock_shared", "pg_try_advisory_lock",
	"pg_try_advisory_lock_shared", "pg_try_advisory_xact_lock",
	"pg_try_advisory_xact_lock_shared", "pg_advisory_unlock",
	"pg_advisory_unlock_shared", "pg_advisory_unlock_all", "txid_current",
	"pg_current_xact_id", "query_to_xml", "query_to_xmlschema",
	"query_to_xml_and_xmlschema", "cursor_to_xml", "cursor_to_xmlschema",
)

// wholeRowFunctions are built-in functions that take one argument of any
// row type. PostgreSQL lets t.f stand for f(t), so "SELECT c.to_json FROM
// customers c" calls to_json on the whole row while looking like a column.
// The list comes from pg_proc (one argument of type record, any,
// anyelement, anycompatible, anynonarray, or variadic any).
var wholeRowFunctions = setOf(
	"any_out", "anycompatible_out", "anycompatiblenonarray_out",
	"anyelement_out", "anynonarray_out", "array_agg", "concat", "concat_ws",
	"count", "cume_dist", "dense_rank", "first_value", "format", "hash_record",
	"hash_record_extended", "json_agg", "json_agg_strict", "json_build_array",
	"json_build_object", "jsonb_agg", "jsonb_agg_strict", "jsonb_build_array",
	"jsonb_build_object", "lag", "last_value", "lead", "mode", "num_nonnulls",
	"num_nulls", "percent_rank", "pg_collation_for", "pg_column_compression",
	"pg_column_size", "pg_column_toast_chunk_id", "pg_typeof", "quote_literal",
	"quote_nullable", "rank", "record_out", "record_send", "row_to_json",
	"to_json", "to_jsonb", "hstore",
)

// relationObjects are DROP targets that are relations.
var relationObjects = map[pg_query.ObjectType]bool{
	pg_query.ObjectType_OBJECT_TABLE:         true,
	pg_query.ObjectType_OBJECT_VIEW:          true,
	pg_query.ObjectType_OBJECT_MATVIEW:       true,
	pg_query.ObjectType_OBJECT_FOREIGN_TABLE: true,
	pg_query.ObjectType_OBJECT_SEQUENCE:      true,
	pg_query.ObjectType_OBJECT_INDEX:         true,
}

// cteScope is the chain of CTE names visible at a point of the tree.
type cteScope struct {
	name   string
	parent *cteScope
}

func (s *cteScope) has(name string) bool {
	for ; s != nil; s = s.parent {
		if s.name == name {
			return true
		}
	}
	return false
}

// collector walks the whole parse tree and gathers the facts that do not
// need column lineage.
type collector struct {
	kinds, read, written   set
	funcs, names, ops      set
	locks, roleOpts        set
	writeNoWhere, sideEffx bool
	explain                *Explain
	copy                   *Copy
	settings               []Setting
}

func newCollector() *collector {
	return &collector{
		kinds: set{}, read: set{}, written: set{},
		funcs: set{}, names: set{}, ops: set{},
		locks: set{}, roleOpts: set{},
	}
}

// facts turns what was gathered into Facts (without the statement count,
// the first kind and the output columns).
func (c *collector) facts() *Facts {
	f := &Facts{
		Kinds:             c.kinds.sorted(),
		TablesRead:        c.read.sorted(),
		TablesWritten:     c.written.sorted(),
		Functions:         c.funcs.sorted(),
		FunctionNames:     c.names.sorted(),
		Operators:         c.ops.sorted(),
		WriteWithoutWhere: c.writeNoWhere,
		RowLocks:          c.locks.sorted(),
		Explain:           c.explain,
		Copy:              c.copy,
		Set:               c.settings,
	}
	if len(c.roleOpts) > 0 {
		f.RoleOptions = c.roleOpts.sorted()
	}
	f.ReadOnly = len(c.locks) == 0 && !c.sideEffx
	for _, k := range f.Kinds {
		if !readOnlyKinds[k] {
			f.ReadOnly = false
		}
	}
	return f
}

// walk visits m and everything below it. sc holds the CTE names in scope;
// write says that a relation met here is acted on (a DDL target) rather
// than read.
func (c *collector) walk(m proto.Message, sc *cteScope, write bool) {
	kinds := classify(m)
	for _, k := range kinds {
		c.kinds.add(k)
	}
	switch n := m.(type) {
	case *pg_query.SelectStmt:
		sc = c.with(n.GetWithClause(), sc)
		if into := n.GetIntoClause(); into != nil {
			c.table(into.GetRel(), true)
			c.children(into, sc, false, "rel")
		}
		c.children(m, sc, false, "with_clause", "into_clause")
		return
	case *pg_query.InsertStmt:
		// INSERT ... VALUES holds its rows as a SELECT node; only a real
		// query counts as a select.
		if v := n.GetSelectStmt().GetSelectStmt(); v != nil && len(v.GetValuesLists()) > 0 &&
			v.GetWithClause() == nil && v.GetOp() == pg_query.SetOperation_SETOP_NONE {
			inner := c.with(n.GetWithClause(), sc)
			c.children(v, inner, false)
			c.dml(m, nil, n.GetRelation(), inner, "select_stmt")
			return
		}
		c.dml(m, n.GetWithClause(), n.GetRelation(), sc)
		return
	case *pg_query.UpdateStmt:
		c.writeNoWhere = c.writeNoWhere || n.GetWhereClause() == nil
		c.dml(m, n.GetWithClause(), n.GetRelation(), sc)
		return
	case *pg_query.DeleteStmt:
		c.writeNoWhere = c.writeNoWhere || n.GetWhereClause() == nil
		c.dml(m, n.GetWithClause(), n.GetRelation(), sc)
		return
	case *pg_query.MergeStmt:
		c.dml(m, n.GetWithClause(), n.GetRelation(), sc)
		return
	case *pg_query.RangeVar:
		c.rangeVar(n, sc, write)
		return
	case *pg_query.FuncCall:
		c.funcCall(n)
	case *pg_query.A_Expr:
		if name := nameList(n.GetName()); name != "" {
			c.ops.add(name)
		}
	case *pg_query.ColumnRef:
		c.attributeCall(n.GetFields(), 2)
	case *pg_query.A_Indirection:
		c.attributeCall(n.GetIndirection(), 1)
	case *pg_query.LockingClause:
		c.locks.add(lockName(n.GetStrength()))
		return // locked_rels name FROM items, not tables
	case *pg_query.CopyStmt:
		c.copyStmt(n)
		if rel := n.GetRelation(); rel != nil {
			c.table(rel, n.GetIsFrom())
		}
		c.children(m, sc, false, "relation")
		return
	case *pg_query.ExplainStmt:
		if c.explain == nil {
			c.explain = &Explain{}
		}
		c.explain.Analyze = c.explain.Analyze || explainAnalyze(n.GetOptions())
	case *pg_query.VariableSetStmt:
		c.variableSet(n)
	case *pg_query.TransactionStmt:
		for _, o := range n.GetOptions() {
			if d := o.GetDefElem(); d != nil {
				c.settings = append(c.settings, Setting{
					Name: d.GetDefname(), Value: constText(d.GetArg(), true),
					Local: true, Via: "transaction",
				})
			}
		}
	case *pg_query.AlterRoleStmt:
		c.roleOptions(n.GetOptions())
	case *pg_query.CreateRoleStmt:
		c.roleOptions(n.GetOptions())
	case *pg_query.DropStmt:
		c.dropTargets(n)
	case *pg_query.Constraint:
		if pk := n.GetPktable(); pk != nil {
			c.table(pk, false)
		}
		c.children(m, sc, write, "pktable")
		return
	case *pg_query.TableLikeClause:
		// CREATE TABLE ... (LIKE t) copies t's definition: t is read.
		if rel := n.GetRelation(); rel != nil {
			c.table(rel, false)
		}
		return
	case *pg_query.CreateStmt:
		for _, inh := range n.GetInhRelations() {
			c.walk(inh, sc, false)
		}
		c.children(m, sc, true, "inh_relations")
		return
	}

	// Below a DDL or maintenance statement, relations are acted on.
	if len(kinds) > 0 {
		write = slices.Contains(kinds, KindDDL) || kinds[0] == KindLock ||
			kinds[0] == KindVacuum || kinds[0] == KindAnalyze ||
			kinds[0] == KindCluster || kinds[0] == KindReindex
	}
	before := len(c.settings)
	c.children(m, sc, write)

	// A SET inside ALTER ROLE, ALTER SYSTEM, ALTER DATABASE or a function
	// definition changes a stored default, not this session.
	if len(c.settings) == before {
		return
	}
	if via := storedSetVia[m.ProtoReflect().Descriptor().Name()]; via != "" {
		for i := before; i < len(c.settings); i++ {
			c.settings[i].Via, c.settings[i].Local = via, false
		}
	}
}

// storedSetVia names the statements whose SET clause stores a setting.
var storedSetVia = map[protoreflect.Name]string{
	"AlterRoleSetStmt":     "alter_role",
	"AlterSystemStmt":      "alter_system",
	"AlterDatabaseSetStmt": "alter_database",
	"CreateFunctionStmt":   "function",
	"AlterFunctionStmt":    "function",
}

// children walks every message directly below m except those in the
// fields named in skip.
func (c *collector) children(m proto.Message, sc *cteScope, write bool,
	skip ...protoreflect.Name) {
	eachChild(m, func(name protoreflect.Name, child proto.Message) bool {
		if len(skip) == 0 || !slices.Contains(skip, name) {
			c.walk(child, sc, write)
		}
		return true
	})
}

// with walks a WITH clause and returns the scope its statement sees. A
// CTE of a plain WITH sees only the CTEs before it; with RECURSIVE every
// CTE sees them all, itself included.
func (c *collector) with(w *pg_query.WithClause, sc *cteScope) *cteScope {
	if w == nil {
		return sc
	}
	all := sc
	for _, n := range w.GetCtes() {
		all = &cteScope{name: n.GetCommonTableExpr().GetCtename(), parent: all}
	}
	seen := sc
	for _, n := range w.GetCtes() {
		cte := n.GetCommonTableExpr()
		inner := seen
		if w.GetRecursive() {
			inner = all
		}
		c.children(n, inner, false)
		seen = &cteScope{name: cte.GetCtename(), parent: seen}
	}
	return all
}

// dml walks INSERT, UPDATE, DELETE and MERGE: the target relation is
// written, everything else is read.
func (c *collector) dml(m proto.Message, w *pg_query.WithClause,
	target *pg_query.RangeVar, sc *cteScope, skip ...protoreflect.Name) {
	sc = c.with(w, sc)
	if target != nil {
		c.table(target, true)
	}
	c.children(m, sc, false, append(skip, "with_clause", "relation")...)
}

// rangeVar records a relation met in the tree, unless it names a CTE.
func (c *collector) rangeVar(rv *pg_query.RangeVar, sc *cteScope, write bool) {
	if !write && rv.GetSchemaname() == "" && rv.GetCatalogname() == "" &&
		sc.has(rv.GetRelname()) {
		return
	}
	c.table(rv, write)
}

func (c *collector) table(rv *pg_query.RangeVar, write bool) {
	name := tableName(rv)
	if name == "" {
		return
	}
	if write {
		c.written.add(name)
		return
	}
	c.read.add(name)
}

// tableName is the relation name as written: catalog, schema and name
// where present, in SQL form.
func tableName(rv *pg_query.RangeVar) string {
	parts := make([]string, 0, 3)
	for _, p := range []string{rv.GetCatalogname(), rv.GetSchemaname(), rv.GetRelname()} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return qualifiedName(parts)
}

// qualifiedName joins name parts with dots, each in SQL form: as is when
// it could be written without quotes, else double-quoted. So the table
// "a.b" and the table b in schema a stay apart, and "Lower" stays apart
// from lower.
func qualifiedName(parts []string) string {
	quoted := make([]string, len(parts))
	for i, p := range parts {
		quoted[i] = quoteIdent(p)
	}
	return strings.Join(quoted, ".")
}

func quoteIdent(s string) string {
	plain := s != ""
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r == '_':
		case i > 0 && (r >= '0' && r <= '9' || r == '$'):
		default:
			plain = false
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// funcCall records a function call, and a setting when it is set_config.
func (c *collector) funcCall(fc *pg_query.FuncCall) {
	parts := stringList(fc.GetFuncname())
	if len(parts) == 0 {
		return
	}
	c.addFunction(parts)
	if strings.EqualFold(parts[len(parts)-1], "set_config") {
		c.setConfig(fc.GetArgs())
	}
}

func (c *collector) addFunction(parts []string) {
	c.funcs.add(qualifiedName(parts))
	bare := parts[len(parts)-1]
	c.names.add(quoteIdent(bare))
	if sideEffectFunctions.has(strings.ToLower(bare)) {
		c.sideEffx = true
	}
}

// attributeCall records t.f or (t).f written as a column when f is a
// built-in that takes a whole row: PostgreSQL may run it as f(t). A column
// reference needs a qualifier (min 2 fields), an indirection does not.
func (c *collector) attributeCall(fields []*pg_query.Node, min int) {
	if len(fields) < min {
		return
	}
	last := fields[len(fields)-1].GetString_()
	if last != nil && wholeRowFunctions.has(last.GetSval()) {
		c.addFunction([]string{last.GetSval()})
	}
}

// setConfig records set_config(name, value, is_local). Names and values
// that are not constants are recorded as "*".
func (c *collector) setConfig(args []*pg_query.Node) {
	s := Setting{Name: "*", Value: "*", Via: "set_config"}
	if len(args) > 0 {
		if v, ok := constString(args[0]); ok {
			s.Name = strings.ToLower(v)
		}
	}
	if len(args) > 1 {
		if v, ok := constString(args[1]); ok {
			s.Value = v
		}
	}
	if len(args) > 2 {
		s.Local = !isFalse(args[2])
	}
	c.settings = append(c.settings, s)
}

func (c *collector) copyStmt(n *pg_query.CopyStmt) {
	cp := &Copy{Program: n.GetIsProgram(), To: !n.GetIsFrom(), Filename: n.GetFilename()}
	if rel := n.GetRelation(); rel != nil {
		cp.Table = tableName(rel)
	}
	if c.copy == nil || (cp.Program && !c.copy.Program) {
		c.copy = cp
	}
}

// variableSet records the settings a SET or RESET changes.
func (c *collector) variableSet(n *pg_query.VariableSetStmt) {
	name := n.GetName()
	s := Setting{Name: name, Local: n.GetIsLocal(), Via: "set"}
	switch n.GetKind() {
	case pg_query.VariableSetKind_VAR_SET_VALUE:
		vals := make([]string, 0, len(n.GetArgs()))
		for _, a := range n.GetArgs() {
			vals = append(vals, constText(a, false))
		}
		s.Value = strings.Join(vals, ", ")
	case pg_query.VariableSetKind_VAR_SET_DEFAULT:
		s.Value = "DEFAULT"
	case pg_query.VariableSetKind_VAR_SET_CURRENT:
		s.Value = "FROM CURRENT"
	case pg_query.VariableSetKind_VAR_RESET:
		s.Reset, s.Via = true, "reset"
	case pg_query.VariableSetKind_VAR_RESET_ALL:
		s.Name, s.Reset, s.Via = "all", true, "reset"
	case pg_query.VariableSetKind_VAR_SET_MULTI:
		c.setMulti(n)
		return
	}
	c.settings = append(c.settings, s)
}

// setMulti records SET TRANSACTION and SET SESSION CHARACTERISTICS AS
// TRANSACTION. The latter changes the session defaults, so its settings
// are named default_transaction_*, as PostgreSQL names them.
func (c *collector) setMulti(n *pg_query.VariableSetStmt) {
	prefix, local := "", true
	if strings.EqualFold(n.GetName(), "SESSION CHARACTERISTICS") {
		prefix, local = "default_", false
	}
	for _, a := range n.GetArgs() {
		s := Setting{Local: local, Via: "set"}
		if d := a.GetDefElem(); d != nil {
			s.Name = prefix + d.GetDefname()
			s.Value = constText(d.GetArg(), true)
		} else {
			// SET TRANSACTION SNAPSHOT 'id'
			s.Name = strings.ToLower(strings.ReplaceAll(n.GetName(), " ", "_"))
			s.Value = constText(a, false)
		}
		c.settings = append(c.settings, s)
	}
}

func (c *collector) roleOptions(opts []*pg_query.Node) {
	for _, o := range opts {
		if d := o.GetDefElem(); d != nil {
			c.roleOpts.add(strings.ToLower(d.GetDefname()))
		}
	}
}

// dropTargets records the relations a DROP removes. Their names are lists
// of strings, not RangeVars.
func (c *collector) dropTargets(n *pg_query.DropStmt) {
	if !relationObjects[n.GetRemoveType()] {
		return
	}
	for _, o := range n.GetObjects() {
		if l := o.GetList(); l != nil {
			if name := qualifiedName(stringList(l.GetItems())); name != "" {
				c.written.add(name)
			}
		}
	}
}

// stringList returns the String values of a list of nodes, skipping others.
func stringList(nodes []*pg_query.Node) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		if s := n.GetString_(); s != nil {
			out = append(out, s.GetSval())
		}
	}
	return out
}

func nameList(nodes []*pg_query.Node) string {
	return strings.Join(stringList(nodes), ".")
}

func lockName(s pg_query.LockClauseStrength) string {
	switch s {
	case pg_query.LockClauseStrength_LCS_FORKEYSHARE:
		return "for_key_share"
	case pg_query.LockClauseStrength_LCS_FORSHARE:
		return "for_share"
	case pg_query.LockClauseStrength_LCS_FORNOKEYUPDATE:
		return "for_no_key_update"
	case pg_query.LockClauseStrength_LCS_FORUPDATE:
		return "for_update"
	}
	return "for_update" // unknown strength: assume the strongest
}

// constString returns the text of a string constant, looking through casts.
func constString(n *pg_query.Node) (string, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		return constString(tc.GetArg())
	}
	if s := n.GetAConst().GetSval(); s != nil {
		return s.GetSval(), true
	}
	return "", false
}

// constText renders a constant setting value. With modes set, integers 0
// and 1 are the off/on of transaction modes. Anything that is not a
// constant renders as "*".
func constText(n *pg_query.Node, modes bool) string {
	if n == nil {
		return ""
	}
	if tc := n.GetTypeCast(); tc != nil {
		return constText(tc.GetArg(), modes)
	}
	if s := n.GetString_(); s != nil {
		return s.GetSval()
	}
	ac := n.GetAConst()
	if ac == nil {
		return "*"
	}
	switch {
	case ac.GetIsnull():
		return "NULL"
	case ac.GetSval() != nil:
		return ac.GetSval().GetSval()
	case ac.GetIval() != nil:
		i := ac.GetIval().GetIval()
		if modes && (i == 0 || i == 1) {
			return map[int32]string{0: "off", 1: "on"}[i]
		}
		return strconv.Itoa(int(i))
	case ac.GetFval() != nil:
		return ac.GetFval().GetFval()
	case ac.GetBoolval() != nil:
		return strconv.FormatBool(ac.GetBoolval().GetBoolval())
	case ac.GetBsval() != nil:
		return ac.GetBsval().GetBsval()
	}
	return "*"
}
