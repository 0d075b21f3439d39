package masking

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// Character classes, one bit each in charClass.
const (
	cDigit uint16 = 1 << iota
	cUpper
	cLower
	cLocal  // email local part: [A-Za-z0-9._%+-]
	cLabel  // domain label: [A-Za-z0-9-]
	cB64URL // [A-Za-z0-9_-]
	cIdent  // key names: [A-Za-z0-9_.-]
	cBearer // RFC 6750 b64token: [A-Za-z0-9._~+/-]
	cStop   // ends an unquoted value
	cBlank  // space or tab
	cPath   // webhook path: [A-Za-z0-9/_-]
	cB64    // either base64 alphabet: [A-Za-z0-9+/_-]
	cHex    // [0-9a-fA-F]

	cAlnum = cDigit | cUpper | cLower
)

var charClass = func() (t [256]uint16) {
	set := func(chars string, c uint16) {
		for i := 0; i < len(chars); i++ {
			t[chars[i]] |= c
		}
	}
	const digits = "0123456789"
	const upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	const lower = "abcdefghijklmnopqrstuvwxyz"
	const alnum = digits + upper + lower
	set(digits, cDigit)
	set(upper, cUpper)
	set(lower, cLower)
	set(alnum+"._%+-", cLocal)
	set(alnum+"-", cLabel)
	set(alnum+"_-", cB64URL)
	set(alnum+"_.-", cIdent)
	set(alnum+"._~+/-", cBearer)
	set(" \t\r\n\v\f\"'`,;&)]}<>", cStop)
	set(" \t", cBlank)
	set(alnum+"/_-", cPath)
	set(alnum+"+/_-", cB64)
	set(digits+"abcdefABCDEF", cHex)
	return t
}()

func is(c byte, class uint16) bool { return charClass[c]&class != 0 }

// Bounds that keep every finding short, so the Writer can hold back a
// window that is sure to contain one whole.
const (
	maxDomain   = 253
	maxLabel    = 63
	maxToken    = 4096
	maxJWTPart  = 4096
	maxKeyName  = 64
	maxValue    = 4096
	maxPEMLabel = 64
)

// finder collects the findings of the enabled rules in one segment.
type finder struct {
	m     *Masker
	s     string
	set   ruleSet
	spans []span
	buf   []byte // for decoding, reused
	// emailFloor is the end of the last email separator seen; a local
	// part does not reach back past it.
	emailFloor int
}

func (d *finder) add(start, end int, r ruleID) {
	if d.set.has(r) && end > start {
		d.spans = append(d.spans, span{start: start, end: end, rule: r})
	}
}

// atKeyword runs the detector that keyword hit h anchors.
func (d *finder) atKeyword(h hit) {
	switch h.kw {
	case kwAt, kwPct40:
		d.email(h.start(), h.end)
	case kwBearer:
		d.bearer(h)
	case kwAuthorization:
		d.authorization(h)
	case kwAKIA, kwASIA:
		d.awsAccessKey(h)
	case kwGHP, kwGHO, kwGHU, kwGHS, kwGHR:
		d.prefixed(h.start(), h.end, keywords[h.kw], rGitHub, cAlnum, 20)
	case kwGitHubPAT:
		d.prefixed(h.start(), h.end, keywords[h.kw], rGitHub, cB64URL, 20)
	case kwXox:
		d.slackToken(h)
	case kwXapp:
		d.prefixed(h.start(), h.end, keywords[h.kw], rSlack, cLabel, 10)
	case kwSlackHook:
		d.slackWebhook(h)
	case kwSkLive, kwSkTest, kwRkLive, kwRkTest, kwPkLive, kwPkTest, kwWhsec:
		d.stripeKey(h)
	case kwSkDash:
		d.skDash(h)
	case kwAIza:
		d.prefixed(h.start(), h.end, "AIza", rGoogle, cB64URL, 35)
	case kwEyJ:
		d.jwt(h)
	case kwScheme:
		d.urlPassword(h)
	case kwPass, kwSecret, kwKey, kwToken:
		d.assignment(h)
	case kwIdentifiedBy:
		d.identifiedBy(h)
	}
	// kwBegin: key blocks are cut out before segments are searched.
}

// prefixed finds a token that starts with the exact prefix at start, is
// not glued to a word before it, and has at least minLen body characters
// of class from body on.
func (d *finder) prefixed(start, body int, prefix string, r ruleID,
	class uint16, minLen int) {
	s := d.s
	if !strings.HasPrefix(s[start:], prefix) {
		return
	}
	if start > 0 && is(s[start-1], cAlnum) {
		return
	}
	j := body
	for j < len(s) && j-body < maxToken && is(s[j], class) {
		j++
	}
	if j-body >= minLen {
		d.add(start, j, r)
	}
}

// slackToken finds xoxb-, xoxp-, xoxa-, xoxr-, xoxs- and xoxe- tokens.
func (d *finder) slackToken(h hit) {
	s := d.s
	if h.end+1 >= len(s) || s[h.end+1] != '-' ||
		!strings.ContainsRune("baprse", rune(s[h.end])) {
		return
	}
	d.prefixed(h.start(), h.end+2, "xox", rSlack, cLabel, 10)
}

// slackWebhook masks the secret path of a hooks.slack.com URL.
func (d *finder) slackWebhook(h hit) {
	s := d.s
	j := h.end
	for j < len(s) && j-h.end < maxToken && is(s[j], cPath) {
		j++
	}
	if j-h.end >= 10 {
		d.add(h.end, j, rSlack)
	}
}

// Shortest Stripe key bodies: a body of letters and digits, and one with
// underscores, which names (pk_test_users_table) also have.
const (
	minStripeBody      = 10
	minStripeWordyBody = 16
)

// stripeKey finds Stripe secret (sk_), restricted (rk_) and publishable
// (pk_) keys, live or test, and webhook secrets (whsec_). The body is
// letters, digits and underscores (sk_test_demo_not_a_real_key_...), not
// ending in an underscore.
func (d *finder) stripeKey(h hit) {
	s, start := d.s, h.start()
	if !strings.HasPrefix(s[start:], keywords[h.kw]) ||
		start > 0 && is(s[start-1], cAlnum) {
		return
	}
	j := h.end
	for j < len(s) && j-h.end < maxToken && (is(s[j], cAlnum) || s[j] == '_') {
		j++
	}
	for j > h.end && s[j-1] == '_' {
		j--
	}
	n := j - h.end
	if n >= minStripeWordyBody ||
		n >= minStripeBody && strings.IndexByte(s[h.end:j], '_') < 0 {
		d.add(start, j, rStripe)
	}
}

// skDash finds OpenAI (sk-, sk-proj-) and Anthropic (sk-ant-) keys.
func (d *finder) skDash(h hit) {
	r := rOpenAI
	if strings.HasPrefix(d.s[h.end:], "ant-") {
		r = rAnthropic
	}
	d.prefixed(h.start(), h.end, "sk-", r, cB64URL, 20)
}

// awsAccessKey finds AKIA/ASIA followed by exactly 16 upper case letters
// or digits.
func (d *finder) awsAccessKey(h hit) {
	s, start := d.s, h.start()
	if p := s[start:h.end]; p != "AKIA" && p != "ASIA" {
		return
	}
	if start > 0 && is(s[start-1], cAlnum) {
		return
	}
	j := h.end
	for j < len(s) && j-h.end < 17 && is(s[j], cUpper|cDigit) {
		j++
	}
	if j-h.end == 16 && (j == len(s) || !is(s[j], cAlnum)) {
		d.add(start, j, rAWSAccess)
	}
}

// jwt finds a JWS (three dot-separated base64url parts, the signature
// possibly empty) or JWE (five parts) whose header is JSON naming "alg".
func (d *finder) jwt(h hit) {
	s, start := d.s, h.start()
	if !strings.HasPrefix(s[start:], "eyJ") {
		return
	}
	if start > 0 && (is(s[start-1], cB64URL) || s[start-1] == '.') {
		return
	}
	p, parts, headerEnd, end := start, 0, 0, start
	for parts < 5 {
		q := p
		for q < len(s) && q-p < maxJWTPart && is(s[q], cB64URL) {
			q++
		}
		if parts == 0 {
			headerEnd = q
		}
		if parts == 1 && q == p {
			return
		}
		parts++
		end = q
		if parts < 5 && q < len(s) && s[q] == '.' {
			p = q + 1
			continue
		}
		break
	}
	if parts >= 3 && jwtHeader(s[start:headerEnd]) {
		d.add(start, end, rJWT)
	}
}

func jwtHeader(part string) bool {
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return false
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw, &header); err != nil {
		return false
	}
	_, ok := header["alg"]
	return ok
}

// bearer masks the token after the word Bearer.
func (d *finder) bearer(h hit) {
	s, start := d.s, h.start()
	if start > 0 && is(s[start-1], cAlnum) {
		return
	}
	p := skipBlanks(s, h.end)
	if p == h.end {
		return
	}
	if end, ok := bearerToken(s, p, false); ok {
		d.add(p, end, rBearer)
	}
}

// bearerToken returns the end of the b64token at p. Outside an
// Authorization header a token must look random: 20 characters, or 8
// with a digit or symbol, so prose such as "a Bearer token" is left alone.
func bearerToken(s string, p int, inHeader bool) (int, bool) {
	j, mixed := p, false
	for j < len(s) && j-p < maxToken && is(s[j], cBearer) {
		mixed = mixed || !is(s[j], cUpper|cLower)
		j++
	}
	n := j - p
	for j < len(s) && s[j] == '=' {
		j++
	}
	return j, n > 0 && (inHeader || n >= 20 || n >= 8 && mixed)
}

// authorization masks the credentials of an Authorization header (or
// Proxy-Authorization, or an "authorization" key), keeping the scheme.
func (d *finder) authorization(h hit) {
	s, start := d.s, h.start()
	if start > 0 && is(s[start-1], cAlnum) || start > 0 && s[start-1] == '_' {
		return
	}
	p, sep := afterKey(s, h.end)
	if sep != sepAssign {
		return
	}
	vs, ve, ok := headerValue(s, p)
	if !ok {
		return
	}

	// Split "Scheme credentials"; a lone word is the credential itself.
	w := vs
	for w < ve && is(s[w], cUpper|cLower) {
		w++
	}
	c := skipBlanks(s[:ve], w)
	if w == vs || c == w || c == ve {
		d.add(vs, ve, rAuthorization)
		return
	}
	if strings.EqualFold(s[vs:w], "bearer") {
		if end, ok := bearerToken(s[:ve], c, true); ok {
			d.add(c, end, rBearer)
		}
		return
	}
	if worthMasking(s[c:ve]) {
		d.add(c, ve, rAuthorization)
	}
}

// headerValue returns the extent of a header value at p: inside its
// quotes, or up to the end of the line or a quote.
func headerValue(s string, p int) (int, int, bool) {
	if strings.HasPrefix(s[p:], `\"`) || isQuoteAt(s, p) {
		return valueAt(s, p, true)
	}
	ve := p
	for ve < len(s) && ve-p < maxValue && !strings.ContainsRune("\r\n\"'`", rune(s[ve])) {
		ve++
	}
	for ve > p && is(s[ve-1], cBlank) {
		ve--
	}
	if !worthMasking(s[p:ve]) {
		return 0, 0, false
	}
	return p, ve, true
}

// urlPassword masks the password in scheme://user:password@host.
func (d *finder) urlPassword(h hit) {
	s := d.s
	p := h.end
	at, colon := -1, -1
	for j := p; j < len(s) && j-p < maxToken; j++ {
		c := s[j]
		if c == '/' || c == '?' || c == '#' || is(c, cStop) {
			break
		}
		if c == '@' {
			at = j
		}
		if c == ':' && colon < 0 {
			colon = j
		}
	}
	if at < 0 || colon < 0 || colon > at {
		return
	}
	if pw := s[colon+1 : at]; pw != "" && !strings.HasPrefix(pw, markerPrefix) {
		d.add(colon+1, at, rURLPassword)
	}
}

// Separator kinds after a key name.
const (
	sepNone   = iota
	sepAssign // ':', '=', ':=' or '=>'
	sepBlank  // blanks only
)

// afterKey parses what follows a key that ends at p: an optional closing
// quote (", ' or \"), blanks and a separator. It returns where the value
// starts and which separator it saw.
func afterKey(s string, p int) (int, int) {
	switch {
	case strings.HasPrefix(s[p:], `\"`):
		p += 2
	case p < len(s) && (s[p] == '"' || s[p] == '\''):
		p++
	}
	q := skipBlanks(s, p)
	if q < len(s) {
		switch s[q] {
		case ':':
			q++
			if q < len(s) && s[q] == '=' {
				q++
			}
			return skipBlanks(s, q), sepAssign
		case '=':
			q++
			if q < len(s) && s[q] == '=' {
				return q, sepNone // a comparison, not an assignment
			}
			if q < len(s) && s[q] == '>' {
				q++
			}
			return skipBlanks(s, q), sepAssign
		}
	}
	if q > p {
		return q, sepBlank
	}
	return q, sepNone
}

func skipBlanks(s string, p int) int {
	q := p
	for q < len(s) && q-p < 64 && is(s[q], cBlank) {
		q++
	}
	return q
}

func isQuoteAt(s string, p int) bool {
	return p < len(s) && (s[p] == '"' || s[p] == '\'' || s[p] == '`')
}

// valueAt returns the extent of the value that starts at p: inside its
// quotes if it is quoted (an unclosed quote runs to the end of the line),
// else up to a blank or delimiter. structured allows values that start
// with { or [.
func valueAt(s string, p int, structured bool) (int, int, bool) {
	if p >= len(s) {
		return 0, 0, false
	}
	var vs, ve int
	switch {
	case strings.HasPrefix(s[p:], `\"`):
		vs = p + 2
		ve = vs
		for ve < len(s) && ve-vs < maxValue && s[ve] != '\n' &&
			!strings.HasPrefix(s[ve:], `\"`) {
			ve++
		}
	case isQuoteAt(s, p):
		vs = p + 1
		ve = quotedEnd(s, vs, s[p])
	default:
		vs, ve = p, p
		for ve < len(s) && ve-vs < maxValue && !is(s[ve], cStop) {
			ve++
		}
		if !structured && ve > vs && (s[vs] == '{' || s[vs] == '[') {
			return 0, 0, false
		}
	}
	if !worthMasking(s[vs:ve]) {
		return 0, 0, false
	}
	return vs, ve, true
}

// quotedEnd returns where a value quoted by q that starts at start ends.
func quotedEnd(s string, start int, q byte) int {
	j := start
	for j < len(s) && j-start < maxValue {
		c := s[j]
		switch {
		case c == '\n':
			return j
		case c == '\\' && q == '"' && j+1 < len(s) && s[j+1] != '\n':
			j += 2
			continue
		case c == q && q == '\'' && j+1 < len(s) && s[j+1] == '\'':
			j += 2 // SQL doubles a quote inside a string
			continue
		case c == q:
			return j
		}
		j++
	}
	return min(j, len(s))
}

// worthMasking rejects empty values, placeholders and masked forms.
func worthMasking(v string) bool {
	v = strings.TrimRight(v, " \t\r")
	if v == "" || strings.HasPrefix(v, markerPrefix) ||
		strings.Trim(v, "*") == "" {
		return false
	}
	switch strings.ToLower(v) {
	case "null", "nil", "none", "true", "false", "undefined":
		return false
	}
	return true
}

// assignment masks the value of a credential-like key: password=...,
// "api_key": "...", AWS_SECRET_ACCESS_KEY = ..., --password ...,
// PASSWORD 'x' (SQL) and <password>...</password>.
func (d *finder) assignment(h hit) {
	s := d.s
	i := h.start()
	for i > 0 && h.start()-i < maxKeyName && is(s[i-1], cIdent) {
		i--
	}
	j := h.end
	for j < len(s) && j-h.end < maxKeyName && is(s[j], cIdent) {
		j++
	}
	r, ok := credentialKey(s[i:j])
	if !ok || !d.set.has(r) {
		return
	}

	if i > 0 && s[i-1] == '<' && j < len(s) && s[j] == '>' {
		vs := j + 1
		ve := vs
		for ve < len(s) && ve-vs < maxValue && s[ve] != '<' && s[ve] != '\n' {
			ve++
		}
		if worthMasking(s[vs:ve]) {
			d.add(vs, ve, r)
		}
		return
	}

	p, sep := afterKey(s, j)
	switch {
	case sep == sepNone:
		return
	case sep == sepBlank && s[i] != '-' && !isQuoteAt(s, p):
		return // prose like "password is", unless a flag or SQL's PASSWORD 'x'
	}
	vs, ve, ok := valueAt(s, p, false)
	if !ok {
		return
	}
	if p == vs && proseColon(s, j, p) && proseKey(s[i:j]) && plainWord(s[vs:ve]) {
		return // "the secret: patience": a word of prose, not a value
	}
	d.add(vs, ve, r)
}

// proseColon reports whether an unquoted key ending at j is followed by
// a colon and blanks up to the value at p, as in prose ("secret: ...").
func proseColon(s string, j, p int) bool {
	k := p
	for k > j && is(s[k-1], cBlank) {
		k--
	}
	return k < p && k == j+1 && s[j] == ':'
}

// proseKey reports whether a key is a bare word that prose uses with a
// colon ("Secret:", "token:"), as a compound key (client_secret,
// api_token) or a password key is not.
func proseKey(key string) bool {
	return strings.EqualFold(key, "secret") || strings.EqualFold(key, "token")
}

// plainWord reports whether an unquoted value is an ordinary word: up to
// 19 lower case letters, maybe capitalised, maybe followed by a full
// stop, "!", "?" or ":". Credentials have digits, symbols, mixed case or
// length.
func plainWord(v string) bool {
	v = strings.TrimRight(v, ".!?:")
	if v == "" || len(v) >= 20 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !is(c, cLower) && !(i == 0 && is(c, cUpper)) {
			return false
		}
	}
	return true
}

// credentialSuffixes end the normalized names of keys whose values are
// credentials.
var credentialSuffixes = []string{"password", "passwd", "passphrase",
	"secret", "apikey", "token", "accesskey", "secretkey", "privatekey"}

// credentialKey reports whether a key name names a credential, and which
// rule covers it. The name is compared in lower case without _ . and -.
func credentialKey(name string) (ruleID, bool) {
	var buf [2*maxKeyName + 16]byte
	n := 0
	for i := 0; i < len(name) && n < len(buf); i++ {
		c := name[i]
		if c == '_' || c == '.' || c == '-' {
			continue
		}
		buf[n] = foldByte(c)
		n++
	}
	norm := string(buf[:n]) // does not escape for short names
	if strings.HasSuffix(norm, "secretaccesskey") {
		return rAWSSecret, true
	}
	for _, suf := range credentialSuffixes {
		if strings.HasSuffix(norm, suf) {
			return rGeneric, true
		}
	}
	return 0, false
}

// identifiedBy masks the quoted password in SQL's IDENTIFIED BY '...'.
func (d *finder) identifiedBy(h hit) {
	s, start := d.s, h.start()
	if start > 0 && is(s[start-1], cAlnum) {
		return
	}
	p := skipBlanks(s, h.end)
	if !isQuoteAt(s, p) {
		return
	}
	if vs, ve, ok := valueAt(s, p, false); ok {
		d.add(vs, ve, rGeneric)
	}
}
