package sqlfacts

import (
	"fmt"
	"slices"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// childrenByReflection is what eachChild must give, asked of protobuf's
// own reflection: the set message fields of m in declared order (each
// list element on its own; for a oneof, the member that is set).
func childrenByReflection(m proto.Message) []string {
	pm := m.ProtoReflect()
	var out []string
	fds := pm.Descriptor().Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		if fd.Message() == nil || fd.IsMap() || !pm.Has(fd) {
			continue
		}
		if fd.IsList() {
			l := pm.Get(fd).List()
			for j := range l.Len() {
				out = append(out, childKey(fd.Name(), l.Get(j).Message().Interface()))
			}
			continue
		}
		out = append(out, childKey(fd.Name(), pm.Get(fd).Message().Interface()))
	}
	return out
}

func childKey(name protoreflect.Name, m proto.Message) string {
	return fmt.Sprintf("%s=%p", name, m)
}

// TestEachChildMatchesReflection walks the parse trees of the fuzz seeds
// and of statements with oneofs in several places (constants of every
// type, set operations, DDL) and compares, at every node, eachChild with
// protobuf's reflection: the same children, in the same order, under the
// same field names.
func TestEachChildMatchesReflection(t *testing.T) {
	corpus := append(seedCorpus(t),
		"SELECT 1, 1.5, true, 'a', B'101', NULL, x'1f'::bit(8)",
		"SELECT a FROM t WHERE b IN (SELECT c FROM u) UNION ALL SELECT 2 ORDER BY 1 LIMIT 3",
		"CREATE TABLE x (id int PRIMARY KEY REFERENCES y(id), LIKE z) INHERITS (w)",
		"WITH RECURSIVE r AS (SELECT 1 UNION SELECT n+1 FROM r) SELECT * FROM r",
		"ALTER ROLE bob SET search_path = 'x'; SET LOCAL statement_timeout = 5",
		"COPY (SELECT * FROM t) TO PROGRAM 'cat'",
	)
	nodes := 0
	for _, sql := range corpus {
		tree, err := pg_query.Parse(sql)
		if err != nil {
			continue
		}
		var visit func(m proto.Message)
		visit = func(m proto.Message) {
			nodes++
			var got []string
			eachChild(m, func(name protoreflect.Name, c proto.Message) bool {
				got = append(got, childKey(name, c))
				return true
			})
			if want := childrenByReflection(m); !slices.Equal(got, want) {
				t.Fatalf("%q: children of a %T:\n got %q\nwant %q", sql, m, got, want)
			}
			eachChild(m, func(_ protoreflect.Name, c proto.Message) bool {
				visit(c)
				return true
			})
		}
		visit(tree)
	}
	if nodes < 500 {
		t.Fatalf("only %d nodes compared", nodes)
	}
}

// TestEachChildStops: eachChild ends when its function returns false.
func TestEachChildStops(t *testing.T) {
	tree, err := pg_query.Parse("SELECT a, b, c FROM t")
	if err != nil {
		t.Fatal(err)
	}
	sel := tree.GetStmts()[0].GetStmt().GetSelectStmt()
	n := 0
	eachChild(sel, func(protoreflect.Name, proto.Message) bool {
		n++
		return n < 2
	})
	if n != 2 {
		t.Fatalf("eachChild went on after false: %d calls", n)
	}
}
