package sqlfacts

import pg_query "github.com/pganalyze/pg_query_go/v6"

// figureName is the name PostgreSQL gives an output column written
// without an alias, following FigureColname in the server's parse_target.c.
func figureName(n *pg_query.Node) string {
	if name, strength := colname(n); strength > 0 {
		return name
	}
	return "?column?"
}

// colname returns a name and how sure it is: 2 for a column or function
// name, 1 for a fallback such as a cast's type name, 0 for none.
func colname(n *pg_query.Node) (string, int) {
	switch {
	case n == nil:
		return "", 0
	case n.GetColumnRef() != nil:
		if name := lastString(n.GetColumnRef().GetFields()); name != "" {
			return name, 2
		}
	case n.GetAIndirection() != nil:
		ind := n.GetAIndirection()
		if name := lastString(ind.GetIndirection()); name != "" {
			return name, 2
		}
		return colname(ind.GetArg())
	case n.GetFuncCall() != nil:
		return lastString(n.GetFuncCall().GetFuncname()), 2
	case n.GetAExpr() != nil:
		if n.GetAExpr().GetKind() == pg_query.A_Expr_Kind_AEXPR_NULLIF {
			return "nullif", 2
		}
	case n.GetTypeCast() != nil:
		tc := n.GetTypeCast()
		name, strength := colname(tc.GetArg())
		if strength <= 1 && tc.GetTypeName() != nil {
			if t := lastString(tc.GetTypeName().GetNames()); t != "" {
				return t, 1
			}
		}
		return name, strength
	case n.GetCollateClause() != nil:
		return colname(n.GetCollateClause().GetArg())
	case n.GetGroupingFunc() != nil:
		return "grouping", 2
	case n.GetMergeSupportFunc() != nil:
		return "merge_action", 2
	case n.GetSubLink() != nil:
		return sublinkName(n.GetSubLink())
	case n.GetCaseExpr() != nil:
		name, strength := colname(n.GetCaseExpr().GetDefresult())
		if strength <= 1 {
			return "case", 1
		}
		return name, strength
	case n.GetAArrayExpr() != nil:
		return "array", 2
	case n.GetRowExpr() != nil:
		return "row", 2
	case n.GetCoalesceExpr() != nil:
		return "coalesce", 2
	case n.GetMinMaxExpr() != nil:
		switch n.GetMinMaxExpr().GetOp() {
		case pg_query.MinMaxOp_IS_GREATEST:
			return "greatest", 2
		case pg_query.MinMaxOp_IS_LEAST:
			return "least", 2
		}
	case n.GetSqlvalueFunction() != nil:
		if name := svfNames[n.GetSqlvalueFunction().GetOp()]; name != "" {
			return name, 2
		}
	case n.GetXmlExpr() != nil:
		if name := xmlNames[n.GetXmlExpr().GetOp()]; name != "" {
			return name, 2
		}
	case n.GetXmlSerialize() != nil:
		return "xmlserialize", 2
	case n.GetJsonParseExpr() != nil:
		return "json", 2
	case n.GetJsonScalarExpr() != nil:
		return "json_scalar", 2
	case n.GetJsonSerializeExpr() != nil:
		return "json_serialize", 2
	case n.GetJsonObjectConstructor() != nil:
		return "json_object", 2
	case n.GetJsonArrayConstructor() != nil, n.GetJsonArrayQueryConstructor() != nil:
		return "json_array", 2
	case n.GetJsonObjectAgg() != nil:
		return "json_objectagg", 2
	case n.GetJsonArrayAgg() != nil:
		return "json_arrayagg", 2
	case n.GetJsonFuncExpr() != nil:
		switch n.GetJsonFuncExpr().GetOp() {
		case pg_query.JsonExprOp_JSON_EXISTS_OP:
			return "json_exists", 2
		case pg_query.JsonExprOp_JSON_QUERY_OP:
			return "json_query", 2
		case pg_query.JsonExprOp_JSON_VALUE_OP:
			return "json_value", 2
		}
	}
	return "", 0
}

// sublinkName names EXISTS, ARRAY and scalar subqueries; a scalar
// subquery takes the name of its first column.
func sublinkName(sl *pg_query.SubLink) (string, int) {
	switch sl.GetSubLinkType() {
	case pg_query.SubLinkType_EXISTS_SUBLINK:
		return "exists", 2
	case pg_query.SubLinkType_ARRAY_SUBLINK:
		return "array", 2
	case pg_query.SubLinkType_EXPR_SUBLINK:
		if name := firstTargetName(sl.GetSubselect().GetSelectStmt()); name != "" {
			return name, 2
		}
	}
	return "", 0
}

// firstTargetName is the name of the first output column of a SELECT; a
// set operation takes it from its leftmost arm.
func firstTargetName(s *pg_query.SelectStmt) string {
	for s != nil && s.GetLarg() != nil {
		s = s.GetLarg()
	}
	if s == nil {
		return ""
	}
	if len(s.GetValuesLists()) > 0 {
		return "column1"
	}
	if len(s.GetTargetList()) == 0 {
		return ""
	}
	rt := s.GetTargetList()[0].GetResTarget()
	if rt.GetName() != "" {
		return rt.GetName()
	}
	return figureName(rt.GetVal())
}

func lastString(nodes []*pg_query.Node) string {
	for i := len(nodes) - 1; i >= 0; i-- {
		if s := nodes[i].GetString_(); s != nil {
			return s.GetSval()
		}
	}
	return ""
}

var svfNames = map[pg_query.SQLValueFunctionOp]string{
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_DATE:        "current_date",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME:        "current_time",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME_N:      "current_time",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP:   "current_timestamp",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP_N: "current_timestamp",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME:           "localtime",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME_N:         "localtime",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP:      "localtimestamp",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP_N:    "localtimestamp",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_ROLE:        "current_role",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_USER:        "current_user",
	pg_query.SQLValueFunctionOp_SVFOP_USER:                "user",
	pg_query.SQLValueFunctionOp_SVFOP_SESSION_USER:        "session_user",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_CATALOG:     "current_catalog",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_SCHEMA:      "current_schema",
}

var xmlNames = map[pg_query.XmlExprOp]string{
	pg_query.XmlExprOp_IS_XMLCONCAT:    "xmlconcat",
	pg_query.XmlExprOp_IS_XMLELEMENT:   "xmlelement",
	pg_query.XmlExprOp_IS_XMLFOREST:    "xmlforest",
	pg_query.XmlExprOp_IS_XMLPARSE:     "xmlparse",
	pg_query.XmlExprOp_IS_XMLPI:        "xmlpi",
	pg_query.XmlExprOp_IS_XMLROOT:      "xmlroot",
	pg_query.XmlExprOp_IS_XMLSERIALIZE: "xmlserialize",
}
