package masking

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// minEncodedLen is the shortest encoded form kept as a pattern; a shorter
// base64 fragment would match ordinary text.
const minEncodedLen = 5

// secretPatterns returns the automaton patterns for the server-held
// secrets: each secret raw and in its common encodings, folded to lower
// case. It reports how many secrets were too short, and fails on a secret
// whose masked form would reveal it.
func secretPatterns(secrets []string) ([]acPattern, int, error) {
	var pats []acPattern
	seen := map[string]bool{}
	skipped := 0
	for n, secret := range secrets {
		if len(secret) < MinSecretLen {
			skipped++
			continue
		}
		for _, enc := range encodings(secret) {
			p := foldString(enc)
			if seen[p] {
				continue
			}
			if err := checkOverlap(p); err != nil {
				return nil, 0, fmt.Errorf("%w: secret %d of Options.Secrets", err, n+1)
			}
			seen[p] = true
			pats = append(pats, acPattern{text: p, kw: -1})
		}
	}
	return pats, skipped, nil
}

// encodings returns secret as sent raw and in the encodings a tool's
// output may carry it in: hex, base64 (standard and URL alphabets, padded
// or not, and the stable core at each of the three byte alignments so it
// is found inside a longer base64 blob), URL escaping (query, path and
// every byte), and JSON string escaping (Go's, without HTML escapes,
// ASCII-only, and with an escaped slash).
func encodings(secret string) []string {
	b := []byte(secret)
	out := []string{secret, hex.EncodeToString(b)}

	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		padded := enc.EncodeToString(b)
		out = append(out, padded, strings.TrimRight(padded, "="))
		for k := range 3 {
			// With k unknown bytes before the secret, the characters
			// from ceil(8k/6) up to floor(8(k+n)/6) depend on the
			// secret alone.
			shifted := enc.EncodeToString(append(make([]byte, k), b...))
			lo, hi := (8*k+5)/6, 8*(k+len(b))/6
			if hi-lo >= minEncodedLen {
				out = append(out, shifted[lo:hi])
			}
		}
	}

	out = append(out, url.QueryEscape(secret), url.PathEscape(secret),
		percentAll(b))
	out = append(out, jsonEscapes(secret)...)
	return out
}

// percentAll escapes every byte as %XX.
func percentAll(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, "%%%02X", c)
	}
	return sb.String()
}

// jsonEscapes returns the ways JSON encoders write secret inside a string.
func jsonEscapes(secret string) []string {
	quoted := func(escapeHTML bool) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(escapeHTML)
		_ = enc.Encode(secret) // a string always encodes
		s := strings.TrimSuffix(buf.String(), "\n")
		return s[1 : len(s)-1]
	}
	var out []string
	for _, q := range []string{quoted(true), quoted(false)} {
		slash := strings.ReplaceAll(q, "/", `\/`)
		out = append(out, q, asciiJSON(q), slash, asciiJSON(slash))
	}
	return out
}

// asciiJSON rewrites non-ASCII characters of a JSON string body as \uXXXX
// escapes (with surrogate pairs), as ASCII-only encoders write them.
func asciiJSON(s string) string {
	var sb strings.Builder
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			sb.WriteRune(r)
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&sb, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			fmt.Fprintf(&sb, `\u%04x`, r)
		}
	}
	return sb.String()
}

// maskedFormEdges are the characters at the edges of the detectors'
// masked forms. A secret found in masked text but not in the text before
// it must overlap a masked form's fixed part, and so hold one of them:
// markers start with [ and end with ], a card's "**** **** **** " ends
// with "* ", an email hint is "x***@y***.tld", an SSN's "***-**-". (The
// characters next to those fixed parts came from the input, where the
// first scrub already looked.)
const maskedFormEdges = "[]* "

// checkOverlap rejects a pattern that the masked output itself would
// show: one inside any marker or fixed masked form, or one that starts
// with the end of the secret marker or ends with its start, so that
// masking it next to another secret would rebuild it.
func checkOverlap(p string) error {
	fixed := []string{cardMaskPrefix, "***-**-", "***@", "***%40", "***."}
	for _, m := range markers {
		fixed = append(fixed, m)
	}
	for _, f := range fixed {
		if strings.Contains(foldString(f), p) {
			return ErrWeakSecret
		}
	}
	if strings.Contains(p, foldString(markerPrefix)) {
		return ErrWeakSecret
	}
	m := foldString(markers[rSecret])
	for k := 1; k < len(m); k++ {
		if len(m)-k < len(p) && strings.HasPrefix(p, m[k:]) ||
			k < len(p) && strings.HasSuffix(p, m[:k]) {
			return ErrWeakSecret
		}
	}
	return nil
}
