package tools

import "unicode"

// suspicious names the class of r when it is a character that makes text
// read differently to a person, the guard and the program that runs it, or
// returns "". Tab and newline are ordinary; a carriage return is allowed
// only where allowCR says so (SQL written on Windows).
func suspicious(r rune, allowCR bool) string {
	switch {
	case r == '\t' || r == '\n':
		return ""
	case r == '\r':
		if allowCR {
			return ""
		}
		return "a control character"
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		return "a control character"
	case r == unicode.ReplacementChar:
		return "a replacement character"
	case unicode.Is(unicode.Cf, r):
		return "an invisible format character"
	case r != ' ' && (unicode.Is(unicode.Zs, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r)):
		return "a non-ASCII space"
	case unicode.Is(unicode.Co, r) || unicode.Is(unicode.Cs, r):
		return "a private-use character"
	case r >= 0xE0000 && r <= 0xE007F:
		return "a tag character"
	case unicode.Is(unicode.Variation_Selector, r):
		return "a variation selector"
	}
	return ""
}

// checkSQLText is checkText for SQL, where a carriage return is ordinary.
func checkSQLText(arg, s string) error {
	for i, r := range s {
		if bad := suspicious(r, true); bad != "" {
			return Invalid("%s contains %s (U+%04X) at byte %d; such characters are refused because people and programs read them differently", arg, bad, r, i)
		}
	}
	return nil
}
