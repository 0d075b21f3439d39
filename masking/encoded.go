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
// It reads the run once, counting what hexOfText and base64Like look at.
func candidateRun(s string, i int) (encRun, bool) {
	off := 0 // a "\x" or "0x" prefix before hex
	switch {
	case s[i] == 'x' && i > 0 && s[i-1] == '\\':
		off = 1
	case strings.HasPrefix(s[i:], "0x"):
		off = 2
	}
	upper, lower, other := 0, false, false
	allHex, hexDigits := true, 0
	j := i
	for j < len(s) && j-i < maxEncodedRun {
		c := s[j]
		cl := charClass[c]
		if cl&cB64 == 0 {
			break
		}
		switch {
		case cl&cUpper != 0:
			upper++
		case cl&cLower != 0:
			lower = true
		default:
			other = true
		}
		if j >= i+off {
			allHex = allHex && cl&cHex != 0
			hexDigits += int(cl & cDigit)
		}
		j++
	}
	k := j
	for k < len(s) && k-j < 2 && s[k] == '=' {
		k++
	}
	if k < len(s) && is(s[k], cB64) {
		return encRun{}, false // longer than maxEncodedRun
	}

	r := encRun{start: i, pad: k, text: s[i+off : j], b64: s[i:k]}
	if off == 1 {
		r.start = i - 1
	}
	n := len(r.text)
	r.hex = allHex && n >= 12 && n%2 == 0 && 2*hexDigits >= n
	b64 := (j-i)%4 != 1 && upper > 0 && (lower || other) && (upper > 1 || other)
	return r, r.hex || b64
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
