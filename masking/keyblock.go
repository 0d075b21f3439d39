package masking

import "strings"

// keyBlock is a private key block: from its BEGIN line to the end of its
// END line, or to the end of the text when the END line is missing.
type keyBlock struct {
	start, end int
	open       bool
}

const (
	pemBegin = "-----begin"
	pemEnd   = "-----end"
	pemDash  = "-----"
)

// findKeyBlock finds the first private key block whose BEGIN line starts
// at or after from: "-----BEGIN <label>-----" where the label holds
// "PRIVATE KEY" (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP ... KEY BLOCK). A
// header cut short by a line end still counts. When final is false and
// the header runs into the end of s, the block is not reported yet.
func findKeyBlock(s string, from int, final bool) (keyBlock, bool) {
	for {
		i := indexFold(s[from:], pemBegin)
		if i < 0 {
			return keyBlock{}, false
		}
		start := from + i
		label, hdrEnd, complete := pemLabel(s, start+len(pemBegin), final)
		if !complete {
			return keyBlock{}, false
		}
		if indexFold(label, "private key") >= 0 {
			end, found := keyBlockEnd(s, hdrEnd, final)
			return keyBlock{start: start, end: end, open: !found}, true
		}
		from = start + len(pemBegin)
	}
}

// pemLabel reads the label after "-----BEGIN" or "-----END" at p and
// returns it with the end of the line's closing dashes. complete is false
// when the label reaches the end of a non-final s.
func pemLabel(s string, p int, final bool) (string, int, bool) {
	q := p
	for q < len(s) && q-p < maxPEMLabel && is(s[q], cAlnum|cBlank) {
		q++
	}
	label := s[p:q]
	switch {
	case strings.HasPrefix(s[q:], pemDash):
		return label, q + len(pemDash), true
	case q == len(s) || len(s)-q < len(pemDash) && pemDash[:len(s)-q] == s[q:]:
		return label, len(s), final
	}
	return label, q, true
}

// keyBlockEnd finds the END line after p and returns the block's end.
// Without an END line, or when a non-final s ends inside it, the block
// runs to the end of s and found is false.
func keyBlockEnd(s string, p int, final bool) (end int, found bool) {
	i := indexFold(s[p:], pemEnd)
	if i < 0 {
		return len(s), false
	}
	_, end, complete := pemLabel(s, p+i+len(pemEnd), final)
	if !complete {
		return len(s), false
	}
	return end, true
}

// indexFold is strings.Index for a lower case needle, ignoring ASCII case
// in s.
func indexFold(s, needle string) int {
	first := needle[0]
	for i := 0; i+len(needle) <= len(s); i++ {
		if foldByte(s[i]) == first && hasPrefixFold(s[i:], needle) {
			return i
		}
	}
	return -1
}

func hasPrefixFold(s, lowerPrefix string) bool {
	if len(s) < len(lowerPrefix) {
		return false
	}
	for i := 0; i < len(lowerPrefix); i++ {
		if foldByte(s[i]) != lowerPrefix[i] {
			return false
		}
	}
	return true
}
