package masking

import (
	"encoding/base64"
	"strings"
	"unicode/utf8"
)

// Bounds for encoded text: runs shorter than minEncodedRun cannot hold an
// address; longer than maxEncodedRun are not decoded (and keep findings
// short for the Writer).
const (
	minEncodedRun = 8
	maxEncodedRun = 4096
)

// encoded finds hex and base64 runs whose decoded text holds personal
// data (decodeRules), as a query returns it from encode(email, 'hex'),
// encode(..., 'base64'), a bytea cast printed as "\x6a6f..." or to_hex.
// The whole run is redacted with the marker of what it held. runs are the
// run starts the scan found.
func (d *finder) encoded(runs []int) {
	for _, start := range runs {
		if r, ok := candidateRun(d.s, start); ok {
			d.decodeRun(r)
		}
	}
}

// hasEncodedRun reports whether any of the runs is one encoded would
// decode.
func hasEncodedRun(s string, runs []int) bool {
	for _, start := range runs {
		if _, ok := candidateRun(s, start); ok {
			return true
		}
	}
	return false
}

// encRun is a candidate run of encoded text: text is the run after any
// "\x" or "0x" prefix, s[start:pad] what a finding masks.
type encRun struct {
	start, pad int
	text       string
	b64        string // the run with its padding
	hex        bool
}

// candidateRun checks the run of base64 characters starting at i: not too
// long, not glued to more of them, and looking like hex or base64 of text.
func candidateRun(s string, i int) (encRun, bool) {
	j := i
	for j < len(s) && j-i < maxEncodedRun && is(s[j], cB64) {
		j++
	}
	k := j
	for k < len(s) && k-j < 2 && s[k] == '=' {
		k++
	}
	if k < len(s) && is(s[k], cB64) {
		return encRun{}, false // longer than maxEncodedRun
	}

	r := encRun{start: i, pad: k, text: s[i:j], b64: s[i:k]}
	switch {
	case r.text[0] == 'x' && i > 0 && s[i-1] == '\\':
		r.start, r.text = i-1, r.text[1:]
	case strings.HasPrefix(r.text, "0x"):
		r.text = r.text[2:]
	}
	r.hex = hexOfText(r.text)
	return r, r.hex || base64Like(s[i:j])
}

// decodeRun decodes a candidate run and records a finding if the text it
// holds has one.
func (d *finder) decodeRun(r encRun) {
	var plain []byte
	if r.hex {
		plain = decodeHex(d.buf[:0], r.text)
	} else {
		plain = decodeBase64(d.buf[:0], r.b64)
	}
	if cap(plain) > cap(d.buf) {
		d.buf = plain[:0] // keep the grown buffer
	}
	if len(plain) < 6 || !textLike(plain) {
		return
	}
	if rule, ok := d.m.firstFinding(string(plain), d.set&decodeRules); ok {
		d.spans = append(d.spans, span{start: r.start, end: r.pad, rule: rule,
			encoded: true})
	}
}

// hexOfText reports whether s is hex that can hold printable text: an even
// number, at least 12, of hex digits, half of them decimal digits at least
// (every printable ASCII byte starts with 2-7).
func hexOfText(s string) bool {
	if len(s) < 12 || len(s)%2 != 0 {
		return false
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		if !is(s[i], cHex) {
			return false
		}
		digits += int(digitTab[s[i]])
	}
	return 2*digits >= len(s)
}

func decodeHex(dst []byte, s string) []byte {
	for i := 0; i+1 < len(s); i += 2 {
		dst = append(dst, unhex(s[i])<<4|unhex(s[i+1]))
	}
	return dst
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// base64Like reports whether s may be base64 of text: a valid length, and
// mixed case with a digit, a symbol or a second capital, which base64 of
// printable text nearly always has and words ("Customer") do not.
func base64Like(s string) bool {
	if len(s)%4 == 1 {
		return false
	}
	upper, lower, other := 0, false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case is(c, cUpper):
			upper++
		case is(c, cLower):
			lower = true
		default:
			other = true
		}
	}
	return upper > 0 && (lower || other) && (upper > 1 || other)
}

// decodeBase64 appends the decoding of s (either alphabet, padded or not)
// to dst, or returns dst empty if s is not base64.
func decodeBase64(dst []byte, s string) []byte {
	s = strings.TrimRight(s, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	n := enc.DecodedLen(len(s))
	dst = append(dst[:0], make([]byte, len(s)+n)...)
	src := dst[n:]
	copy(src, s)
	m, err := enc.Decode(dst[:n], src)
	if err != nil {
		return dst[:0]
	}
	return dst[:m]
}

// textLike reports whether b is UTF-8 text without control characters
// other than tab and line ends.
func textLike(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			return false
		}
	}
	return utf8.Valid(b)
}

// firstFinding reports the highest-priority finding of set in text.
func (m *Masker) firstFinding(text string, set ruleSet) (ruleID, bool) {
	sc := getScratch()
	defer putScratch(sc)
	m.ac.scan(text, sc)
	if !mayDetect(sc, set, text) {
		return 0, false
	}
	best, found := numRules, false
	for _, sp := range m.spans(text, sc, set, true) {
		best, found = min(best, sp.rule), true
	}
	return best, found
}
