package sqlfacts

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Statement kinds. docs/sql-facts.md lists them with what maps to each.
const (
	KindSelect         = "select"
	KindSelectInto     = "select_into"
	KindInsert         = "insert"
	KindUpdate         = "update"
	KindDelete         = "delete"
	KindMerge          = "merge"
	KindExplain        = "explain"
	KindExplainAnalyze = "explain_analyze"
	KindCreateTableAs  = "create_table_as"
	KindCopy           = "copy"
	KindCopyProgram    = "copy_program"
	KindTransaction    = "transaction"
	KindSet            = "set"
	KindReset          = "reset"
	KindSetRole        = "set_role"
	KindDiscard        = "discard"
	KindShow           = "show"
	KindDo             = "do"
	KindCall           = "call"
	KindDDL            = "ddl"
	KindDrop           = "drop"
	KindTruncate       = "truncate"
	KindAlterRole      = "alter_role"
	KindCreateRole     = "create_role"
	KindAlterSystem    = "alter_system"
	KindGrant          = "grant"
	KindRevoke         = "revoke"
	KindLock           = "lock"
	KindListen         = "listen"
	KindNotify         = "notify"
	KindPrepare        = "prepare"
	KindExecute        = "execute"
	KindVacuum         = "vacuum"
	KindAnalyze        = "analyze"
	KindCluster        = "cluster"
	KindReindex        = "reindex"
	KindCheckpoint     = "checkpoint"
	KindLoad           = "load"
	KindOther          = "other"
)

// readOnlyKinds are the kinds that change nothing. EXPLAIN ANALYZE runs its
// statement, which is fine when that statement is itself read-only: its own
// kind is then also in Kinds.
var readOnlyKinds = map[string]bool{
	KindSelect:         true,
	KindExplain:        true,
	KindExplainAnalyze: true,
	KindShow:           true,
}

// simpleKinds maps statement node names to their kinds, first the most
// specific one. Statements that need a look inside are in classify.
var simpleKinds = map[string][]string{
	"InsertStmt":           {KindInsert},
	"UpdateStmt":           {KindUpdate},
	"DeleteStmt":           {KindDelete},
	"MergeStmt":            {KindMerge},
	"CreateTableAsStmt":    {KindCreateTableAs, KindDDL},
	"TransactionStmt":      {KindTransaction},
	"DiscardStmt":          {KindDiscard},
	"VariableShowStmt":     {KindShow},
	"DoStmt":               {KindDo},
	"CallStmt":             {KindCall},
	"TruncateStmt":         {KindTruncate, KindDDL},
	"LockStmt":             {KindLock},
	"ListenStmt":           {KindListen},
	"UnlistenStmt":         {KindListen},
	"NotifyStmt":           {KindNotify},
	"PrepareStmt":          {KindPrepare},
	"DeallocateStmt":       {KindPrepare},
	"ExecuteStmt":          {KindExecute},
	"ClusterStmt":          {KindCluster},
	"ReindexStmt":          {KindReindex},
	"CheckPointStmt":       {KindCheckpoint},
	"LoadStmt":             {KindLoad},
	"ConstraintsSetStmt":   {KindSet},
	"AlterRoleStmt":        {KindAlterRole, KindDDL},
	"AlterRoleSetStmt":     {KindAlterRole, KindDDL},
	"CreateRoleStmt":       {KindCreateRole, KindDDL},
	"AlterSystemStmt":      {KindAlterSystem, KindDDL},
	"DropStmt":             {KindDrop, KindDDL},
	"DropRoleStmt":         {KindDrop, KindDDL},
	"DropdbStmt":           {KindDrop, KindDDL},
	"DropTableSpaceStmt":   {KindDrop, KindDDL},
	"DropOwnedStmt":        {KindDrop, KindDDL},
	"DropSubscriptionStmt": {KindDrop, KindDDL},
	"DropUserMappingStmt":  {KindDrop, KindDDL},
	// Cursors, SQL-function RETURN and PL/pgSQL assignment: session state
	// or bodies, never read-only here.
	"DeclareCursorStmt": {KindOther},
	"FetchStmt":         {KindOther},
	"ClosePortalStmt":   {KindOther},
	"ReturnStmt":        {KindOther},
	"PLAssignStmt":      {KindOther},
	"SetOperationStmt":  {KindOther},
}

// classify returns the kinds of a statement node, the most specific first,
// or nil when m is not a statement. Every statement node not named here or
// in simpleKinds is DDL.
func classify(m proto.Message) []string {
	switch n := m.(type) {
	case *pg_query.RawStmt:
		return nil
	case *pg_query.SelectStmt:
		if n.GetIntoClause() != nil {
			return []string{KindSelectInto}
		}
		return []string{KindSelect}
	case *pg_query.ExplainStmt:
		if explainAnalyze(n.GetOptions()) {
			return []string{KindExplainAnalyze}
		}
		return []string{KindExplain}
	case *pg_query.CopyStmt:
		if n.GetIsProgram() {
			return []string{KindCopyProgram, KindCopy}
		}
		return []string{KindCopy}
	case *pg_query.VariableSetStmt:
		return setKinds(n)
	case *pg_query.VacuumStmt:
		if n.GetIsVacuumcmd() {
			return []string{KindVacuum}
		}
		return []string{KindAnalyze}
	case *pg_query.GrantStmt:
		return grantKinds(n.GetIsGrant())
	case *pg_query.GrantRoleStmt:
		return grantKinds(n.GetIsGrant())
	}

	name := string(m.ProtoReflect().Descriptor().Name())
	if k, ok := simpleKinds[name]; ok {
		return k
	}
	if strings.HasSuffix(name, "Stmt") {
		return []string{KindDDL}
	}
	return nil
}

func grantKinds(isGrant bool) []string {
	if isGrant {
		return []string{KindGrant, KindDDL}
	}
	return []string{KindRevoke, KindDDL}
}

// setKinds classifies SET and RESET. Changing the role or the session
// authorization is set_role, with set or reset beside it.
func setKinds(n *pg_query.VariableSetStmt) []string {
	reset := n.GetKind() == pg_query.VariableSetKind_VAR_RESET ||
		n.GetKind() == pg_query.VariableSetKind_VAR_RESET_ALL
	base := KindSet
	if reset {
		base = KindReset
	}
	switch strings.ToLower(n.GetName()) {
	case "role", "session_authorization":
		return []string{KindSetRole, base}
	}
	return []string{base}
}

// primaryKind is the most specific kind of a top-level statement.
func primaryKind(stmt *pg_query.Node) string {
	m := nodeMessage(stmt)
	if m == nil {
		return KindOther
	}
	kinds := classify(m)
	if len(kinds) == 0 {
		return KindOther
	}
	return kinds[0]
}

// nodeMessage unwraps a Node to the message it holds, or nil.
func nodeMessage(n *pg_query.Node) proto.Message {
	if n == nil {
		return nil
	}
	var inner proto.Message
	eachChild(n, func(_ protoreflect.Name, m proto.Message) bool {
		inner = m
		return false
	})
	return inner
}

// explainAnalyze reports whether EXPLAIN options ask to run the statement.
// PostgreSQL reads the option as a boolean; anything this code cannot read
// as false counts as true.
func explainAnalyze(options []*pg_query.Node) bool {
	analyze := false
	for _, o := range options {
		d := o.GetDefElem()
		if d == nil || !strings.EqualFold(d.GetDefname(), "analyze") {
			continue
		}
		analyze = !isFalse(d.GetArg())
	}
	return analyze
}

// isFalse reports whether an option argument clearly means false, the way
// PostgreSQL's defGetBoolean reads it.
func isFalse(arg *pg_query.Node) bool {
	if arg == nil {
		return false
	}
	if b := arg.GetBoolean(); b != nil {
		return !b.GetBoolval()
	}
	if i := arg.GetInteger(); i != nil {
		return i.GetIval() == 0
	}
	var s string
	switch {
	case arg.GetString_() != nil:
		s = arg.GetString_().GetSval()
	case arg.GetAConst() != nil:
		c := arg.GetAConst()
		if c.GetIval() != nil {
			return c.GetIval().GetIval() == 0
		}
		if c.GetBoolval() != nil {
			return !c.GetBoolval().GetBoolval()
		}
		s = c.GetSval().GetSval()
	default:
		return false
	}
	switch strings.ToLower(s) {
	case "false", "off":
		return true
	}
	return false
}
