// Package masking hides personal data, tokens and server-held secrets in
// everything a guarded tool returns before it reaches the model, the
// transcript or an approver.
//
// A Masker is built once from Options and is safe for concurrent use. It
// works in three layers:
//
//   - secret scrubbing: the exact values the server holds (DSN passwords,
//     API keys) are removed in their common encodings (raw, hex, base64 at
//     every alignment, URL and JSON escaping), matched without regard to
//     ASCII case, before anything else runs;
//   - value detectors: emails, card numbers, IBANs, JWTs, bearer tokens,
//     private key blocks, vendor API keys and password assignments are
//     found by pattern (personal data also inside hex and base64 text) and
//     replaced by a fixed masked form;
//   - column strategies (Apply): redact, keep the last N characters, or a
//     keyed hash that keeps joins working, chosen by policy per column.
//
// String masks text, Value masks decoded results recursively, a Writer
// masks a stream in bounded memory, and NewLogHandler scrubs log records.
// The same input always gives the same output, so the model, the
// transcript and approvers see one masked form; masking masked text
// changes nothing more.
package masking

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ruleID orders the rules by priority: when two findings overlap, the rule
// with the lower id names the merged finding.
type ruleID uint8

const (
	rSecret ruleID = iota
	rPrivateKey
	rJWT
	rGitHub
	rSlack
	rStripe
	rAnthropic
	rOpenAI
	rGoogle
	rAWSAccess
	rAWSSecret
	rURLPassword
	rBearer
	rAuthorization
	rGeneric
	rIBAN
	rCard
	rSSN
	rEmail
	numRules

	// rDecode is not a rule: in a ruleSet it asks the detectors to look
	// inside hex and base64 text too.
	rDecode ruleID = 31
)

// ruleNames are the stable names that appear in Counts and masked forms.
var ruleNames = [numRules]string{
	rSecret:        "secret",
	rPrivateKey:    "private_key",
	rJWT:           "jwt",
	rGitHub:        "github_token",
	rSlack:         "slack_token",
	rStripe:        "stripe_key",
	rAnthropic:     "anthropic_key",
	rOpenAI:        "openai_key",
	rGoogle:        "google_api_key",
	rAWSAccess:     "aws_access_key",
	rAWSSecret:     "aws_secret_key",
	rURLPassword:   "url_password",
	rBearer:        "bearer",
	rAuthorization: "authorization",
	rGeneric:       "generic_api_key",
	rIBAN:          "iban",
	rCard:          "card",
	rSSN:           "national_id_us_ssn",
	rEmail:         "email",
}

// markers holds "[MASKED:<rule>]" for every rule, built once.
var markers = func() (m [numRules]string) {
	for i, n := range ruleNames {
		m[i] = "[MASKED:" + n + "]"
	}
	return m
}()

// markerPrefix starts every redaction marker; detectors leave values that
// begin with it alone so masking twice changes nothing.
const markerPrefix = "[MASKED:"

// ruleSet is a set of rules, one bit per ruleID.
type ruleSet uint32

func (s ruleSet) has(r ruleID) bool { return s&(1<<r) != 0 }

func setOf(rs ...ruleID) ruleSet {
	var s ruleSet
	for _, r := range rs {
		s |= 1 << r
	}
	return s
}

// tokenRules are the detectors for credentials; the log handler applies
// them whatever Options.Detectors says.
var tokenRules = setOf(rPrivateKey, rJWT, rGitHub, rSlack, rStripe,
	rAnthropic, rOpenAI, rGoogle, rAWSAccess, rAWSSecret, rURLPassword,
	rBearer, rAuthorization, rGeneric)

// defaultRules is every detector except the opt-in national id.
var defaultRules = tokenRules | setOf(rIBAN, rCard, rEmail)

// decodeRules are looked for inside hex and base64 text: the personal
// data a query can hide with encode(), a bytea cast or to_hex.
var decodeRules = setOf(rIBAN, rCard, rEmail, rSSN)

// allDetectors is every rule that Options.Detectors may name.
var allDetectors = defaultRules | setOf(rSSN)

func names(s ruleSet) []string {
	var out []string
	for r := ruleID(0); r < numRules; r++ {
		if s.has(r) {
			out = append(out, ruleNames[r])
		}
	}
	return out
}

// DefaultDetectors returns the names of the detectors enabled when
// Options.Detectors is nil: all of them except "national_id_us_ssn".
func DefaultDetectors() []string { return names(defaultRules) }

// AllDetectors returns the name of every detector Options.Detectors may
// list.
func AllDetectors() []string { return names(allDetectors) }

// MinSecretLen is the shortest server-held secret that is scrubbed. Shorter
// values would mask ordinary words and numbers everywhere, and a secret
// that short gives no protection worth keeping; New skips them and
// SkippedSecrets reports how many.
const MinSecretLen = 4

// minHashKeyLen is the shortest accepted HashKey.
const minHashKeyLen = 16

// Options configures a Masker. The zero value enables the default
// detectors, scrubs no secrets and makes the "hash" strategy redact.
type Options struct {
	// Detectors names the enabled detectors (see AllDetectors). Nil means
	// DefaultDetectors; an empty, non-nil slice enables none, leaving only
	// secret scrubbing.
	Detectors []string
	// Secrets are server-held values (DSN passwords, API keys, tokens) to
	// remove from all output, in any common encoding. Values shorter than
	// MinSecretLen are skipped.
	Secrets []string
	// HashKey keys the "hash" strategy (HMAC-SHA256). Empty means the
	// strategy redacts instead; otherwise it must be at least 16 bytes.
	HashKey []byte
}

// Masker masks text and values. It is safe for concurrent use.
type Masker struct {
	set     ruleSet // enabled detectors
	logSet  ruleSet // detectors the log handler applies
	ac      *automaton
	secrets bool // whether any secret pattern is loaded
	// rescrub is set when a secret could run into a masked form, so
	// secrets are scrubbed again after the detectors.
	rescrub bool
	skipped int
	hashKey []byte
}

// ErrWeakSecret is returned by New when a secret cannot be scrubbed
// reliably because it overlaps the masker's own output.
var ErrWeakSecret = errors.New("masking: the masked output would reveal this secret")

// New builds a Masker. It fails on an unknown detector name, a short
// HashKey, or a secret that the masked output itself would reveal (one
// that appears inside "[MASKED:secret]" or runs into its edges); errors
// name secrets by position only.
func New(opts Options) (*Masker, error) {
	m := &Masker{set: defaultRules, logSet: tokenRules}
	if opts.Detectors != nil {
		set, err := parseDetectors(opts.Detectors)
		if err != nil {
			return nil, err
		}
		m.set = set
	}
	if m.set&decodeRules != 0 {
		m.set |= setOf(rDecode)
	}

	if n := len(opts.HashKey); n > 0 && n < minHashKeyLen {
		return nil, fmt.Errorf("masking: hash key is %d bytes, want at least %d",
			n, minHashKeyLen)
	}
	m.hashKey = slices.Clone(opts.HashKey)

	pats, skipped, err := secretPatterns(opts.Secrets)
	if err != nil {
		return nil, err
	}
	m.skipped = skipped
	m.secrets = len(pats) > 0
	for _, p := range pats {
		m.rescrub = m.rescrub || strings.ContainsAny(p.text, maskedFormEdges)
	}
	m.ac = buildAutomaton(append(keywordPatterns(), pats...))
	return m, nil
}

func parseDetectors(list []string) (ruleSet, error) {
	var set ruleSet
	for _, name := range list {
		found := false
		for r := ruleID(0); r < numRules; r++ {
			if ruleNames[r] == name && allDetectors.has(r) {
				set |= 1 << r
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("masking: unknown detector %q (known: %s)",
				name, strings.Join(AllDetectors(), ", "))
		}
	}
	return set, nil
}

// WithDetectors returns a copy of m with the named detectors enabled as
// well, for a policy decision that asks for more (such as
// "national_id_us_ssn") on one call. The copy shares m's compiled
// patterns, so it is cheap.
func (m *Masker) WithDetectors(detectors ...string) (*Masker, error) {
	extra, err := parseDetectors(detectors)
	if err != nil {
		return nil, err
	}
	c := *m
	c.set |= extra
	if c.set&decodeRules != 0 {
		c.set |= setOf(rDecode)
	}
	return &c, nil
}

// SkippedSecrets reports how many Options.Secrets were too short (under
// MinSecretLen) to be scrubbed; callers should warn about them.
func (m *Masker) SkippedSecrets() int { return m.skipped }

// String masks secrets and detector findings in free text. It returns s
// itself, and nil Counts, when nothing was found.
func (m *Masker) String(s string) (string, Counts) {
	var t tally
	out, _ := m.maskString(s, m.set, &t)
	return out, t.counts()
}

// ScrubSecrets removes only the server-held secrets from s, in every
// encoding; it is meant for log lines and error texts.
func (m *Masker) ScrubSecrets(s string) string {
	var t tally
	out, _ := m.maskString(s, 0, &t)
	return out
}

// tally counts findings per rule without allocating.
type tally [numRules]int

func (t *tally) counts() Counts {
	var c Counts
	for r, n := range t {
		if n > 0 {
			c.Add(ruleNames[r], n)
		}
	}
	return c
}

// Counts maps a rule name to how many findings of that rule were masked.
// A nil Counts means nothing was masked.
type Counts map[string]int

// Add adds n findings of rule, allocating the map if needed.
func (c *Counts) Add(rule string, n int) {
	if n == 0 {
		return
	}
	if *c == nil {
		*c = make(Counts)
	}
	(*c)[rule] += n
}

// Merge adds every count of o to c.
func (c *Counts) Merge(o Counts) {
	for rule, n := range o {
		c.Add(rule, n)
	}
}

// Total returns the number of findings over all rules.
func (c Counts) Total() int {
	total := 0
	for _, n := range c {
		total += n
	}
	return total
}
