package shellfacts

import (
	"errors"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"mvdan.cc/sh/v3/syntax"
)

// validate refuses characters that make the text read differently to a
// person, a policy and bash: invisible or direction-changing characters,
// spaces bash does not split on, controls, and broken UTF-8.
func validate(s string) *InvalidError {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if reason := refusedRune(r, size); reason != "" {
			return &InvalidError{Offset: i, Rune: r, Reason: reason}
		}
		i += size
	}
	return nil
}

// refusedRune names the class of a refused character, or returns "".
func refusedRune(r rune, size int) string {
	switch {
	case r == utf8.RuneError && size <= 1:
		return "invalid UTF-8"
	case r == '\n' || r == '\t':
		return ""
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
		return "control character"
	case r < 0x80:
		return ""
	case r == '\ufeff':
		return "byte order mark"
	case unicode.Is(unicode.Zs, r) || r == '\u2028' || r == '\u2029':
		return "non-ASCII space"
	case unicode.Is(unicode.Cf, r):
		return "invisible format character"
	case unicode.Is(unicode.Co, r) || unicode.Is(unicode.Cs, r):
		return "private-use or surrogate character"
	case r == '\ufffe' || r == '\uffff':
		return "non-character"
	}
	return ""
}

// cleanText reports whether an expanded string (such as the code given to
// sh -c through $'..' escapes) holds no refused character.
func cleanText(s string) bool {
	return validate(s) == nil
}

// quotedRe finds the parts of a parser message quoted from the input.
var quotedRe = regexp.MustCompile("`[^`]*`|\"(?:[^\"\\\\]|\\\\.)*\"")

// safeMessage keeps a parser message's quoted tokens when they are shell
// syntax (operators, reserved words) and hides other quoted input, which
// could be a secret written into a broken command.
func safeMessage(msg string) string {
	return quotedRe.ReplaceAllStringFunc(msg, func(q string) string {
		inner := q[1 : len(q)-1]
		if syntax.IsKeyword(inner) || len(inner) <= 3 && !hasAlnum(inner) {
			return q
		}
		return "`...`"
	})
}

func hasAlnum(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return true
		}
	}
	return false
}

// parse parses src as bash.
func parse(src string) (*syntax.File, error) {
	p := syntax.NewParser(syntax.Variant(syntax.LangBash))
	f, err := p.Parse(strings.NewReader(src), "")
	if err == nil {
		return f, nil
	}
	pe := &ParseError{Msg: "syntax error", err: err}
	var se syntax.ParseError
	var le syntax.LangError
	switch {
	case errors.As(err, &se):
		pe.Line, pe.Col = int(se.Pos.Line()), int(se.Pos.Col())
		pe.Msg = safeMessage(se.Text)
	case errors.As(err, &le):
		pe.Line, pe.Col = int(le.Pos.Line()), int(le.Pos.Col())
		pe.Msg = le.Feature + " is not supported by bash"
	}
	return nil, pe
}
