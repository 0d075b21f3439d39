package masking

import (
	"encoding/base64"
	"encoding/hex"
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
// The whole run is redacted with the marker of what it held.
func (d *finder) encoded() {
	s := d.s
	for i := 0; i < len(s); {
		if !is(s[i], cB64) {
			i++
			continue
		}
		j := i
		for j < len(s) && j-i < maxEncodedRun && is(s[j], cB64) {
			j++
		}
		k := j
		for k < len(s) && k-j < 2 && s[k] == '=' {
			k++
		}
		glued := i > 0 && is(s[i-1], cB64) || k < len(s) && is(s[k], cB64)
		if !glued && j-i >= minEncodedRun {
			d.decodeRun(i, j, k)
		}
		i = k
	}
}

// decodeRun decodes s[i:j] (padding up to k) as hex, "\x" or "0x" hex, or
// base64, and records a finding if the text it holds has one.
func (d *finder) decodeRun(i, j, k int) {
	var buf [maxEncodedRun]byte
	run := d.s[i:j]
	start := i
	switch {
	case strings.HasPrefix(run, "x") && i > 0 && d.s[i-1] == '\\':
		run, start = run[1:], i-1
	case strings.HasPrefix(run, "0x"):
		run = run[2:]
	}

	var plain []byte
	if len(run)%2 == 0 && allHex(run) {
		var src [maxEncodedRun]byte
		n, err := hex.Decode(buf[:], src[:copy(src[:], run)])
		if err == nil {
			plain = buf[:n]
		}
	} else if n, ok := decodeBase64(buf[:], d.s[i:k]); ok {
		plain = buf[:n]
	}
	if len(plain) < 6 || !textLike(plain) {
		return
	}
	if r, ok := d.m.firstFinding(string(plain), d.set&decodeRules); ok {
		d.spans = append(d.spans, span{start: start, end: k, rule: r, encoded: true})
	}
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !is(s[i], cHex) {
			return false
		}
	}
	return true
}

// decodeBase64 decodes either alphabet, padded or not, into dst.
func decodeBase64(dst []byte, s string) (int, bool) {
	s = strings.TrimRight(s, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	if len(s)%4 == 1 {
		return 0, false
	}
	var src [maxEncodedRun]byte
	n, err := enc.Decode(dst, src[:copy(src[:], s)])
	return n, err == nil
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
	if !mayDetect(sc, set, len(text)) {
		return 0, false
	}
	best, found := numRules, false
	for _, sp := range m.spans(text, sc, set, true) {
		best, found = min(best, sp.rule), true
	}
	return best, found
}
