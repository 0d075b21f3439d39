package sqlfacts

import (
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Redacted replaces every string constant in the text Redact returns.
const Redacted = "'***'"

// Unparsable is what Redact returns for a text the scanner cannot read.
const Unparsable = "<unparsable SQL redacted>"

// Redact returns sql with every string constant replaced by '***': quoted
// strings, escape strings (E'...'), Unicode strings (U&'...'), bit strings
// (B'...', X'...') and dollar-quoted constants. It lexes with PostgreSQL's own
// scanner, so comments and quotes split the text as the server splits it.
// Identifiers, numbers and comments are kept. A text the scanner rejects
// comes back as Unparsable, never in part.
func Redact(sql string) string {
	if !utf8.ValidString(sql) || strings.IndexByte(sql, 0) >= 0 {
		return Unparsable
	}
	res, err := pg_query.Scan(sql)
	if err != nil {
		return Unparsable
	}

	var b strings.Builder
	b.Grow(len(sql))
	last := 0
	for _, tok := range res.GetTokens() {
		switch tok.GetToken() {
		case pg_query.Token_SCONST, pg_query.Token_USCONST,
			pg_query.Token_BCONST, pg_query.Token_XCONST:
		default:
			continue
		}
		start, end := int(tok.GetStart()), int(tok.GetEnd())
		if start < last || end < start || end > len(sql) {
			return Unparsable // offsets out of order: do not guess
		}
		b.WriteString(sql[last:start])
		b.WriteString(Redacted)
		last = end
	}
	b.WriteString(sql[last:])
	return b.String()
}
