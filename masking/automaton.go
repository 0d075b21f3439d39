package masking

// The masker finds every keyword that anchors a detector and every encoded
// secret in one pass over the text, with one Aho–Corasick automaton whose
// transitions are a dense table over byte classes. ASCII letters fold to
// one class, so all matching ignores ASCII case.

// Keyword ids, one per anchor string a detector starts from.
const (
	kwAt int8 = iota
	kwPct40
	kwBearer
	kwAuthorization
	kwBegin
	kwAKIA
	kwASIA
	kwGHP
	kwGHO
	kwGHU
	kwGHS
	kwGHR
	kwGitHubPAT
	kwXox
	kwXapp
	kwSlackHook
	kwSkLive
	kwSkTest
	kwRkLive
	kwRkTest
	kwPkLive
	kwPkTest
	kwWhsec
	kwSkDash
	kwAIza
	kwEyJ
	kwScheme
	kwPass
	kwSecret
	kwKey
	kwToken
	kwIdentifiedBy
	numKeywords
)

// keywords are the anchor strings, lower case, indexed by keyword id.
var keywords = [numKeywords]string{
	kwAt:            "@",
	kwPct40:         "%40",
	kwBearer:        "bearer",
	kwAuthorization: "authorization",
	kwBegin:         "-----begin",
	kwAKIA:          "akia",
	kwASIA:          "asia",
	kwGHP:           "ghp_",
	kwGHO:           "gho_",
	kwGHU:           "ghu_",
	kwGHS:           "ghs_",
	kwGHR:           "ghr_",
	kwGitHubPAT:     "github_pat_",
	kwXox:           "xox",
	kwXapp:          "xapp-",
	kwSlackHook:     "hooks.slack.com/",
	kwSkLive:        "sk_live_",
	kwSkTest:        "sk_test_",
	kwRkLive:        "rk_live_",
	kwRkTest:        "rk_test_",
	kwPkLive:        "pk_live_",
	kwPkTest:        "pk_test_",
	kwWhsec:         "whsec_",
	kwSkDash:        "sk-",
	kwAIza:          "aiza",
	kwEyJ:           "eyj",
	kwScheme:        "://",
	kwPass:          "pass",
	kwSecret:        "secret",
	kwKey:           "key",
	kwToken:         "token",
	kwIdentifiedBy:  "identified by",
}

// keywordRules says which detectors a keyword can start; a hit whose rules
// are all disabled is ignored.
var keywordRules = [numKeywords]ruleSet{
	kwAt:            setOf(rEmail),
	kwPct40:         setOf(rEmail),
	kwBearer:        setOf(rBearer),
	kwAuthorization: setOf(rAuthorization, rBearer),
	kwBegin:         setOf(rPrivateKey),
	kwAKIA:          setOf(rAWSAccess),
	kwASIA:          setOf(rAWSAccess),
	kwGHP:           setOf(rGitHub),
	kwGHO:           setOf(rGitHub),
	kwGHU:           setOf(rGitHub),
	kwGHS:           setOf(rGitHub),
	kwGHR:           setOf(rGitHub),
	kwGitHubPAT:     setOf(rGitHub),
	kwXox:           setOf(rSlack),
	kwXapp:          setOf(rSlack),
	kwSlackHook:     setOf(rSlack),
	kwSkLive:        setOf(rStripe),
	kwSkTest:        setOf(rStripe),
	kwRkLive:        setOf(rStripe),
	kwRkTest:        setOf(rStripe),
	kwPkLive:        setOf(rStripe),
	kwPkTest:        setOf(rStripe),
	kwWhsec:         setOf(rStripe),
	kwSkDash:        setOf(rOpenAI, rAnthropic),
	kwAIza:          setOf(rGoogle),
	kwEyJ:           setOf(rJWT),
	kwScheme:        setOf(rURLPassword),
	kwPass:          setOf(rGeneric, rAWSSecret),
	kwSecret:        setOf(rGeneric, rAWSSecret),
	kwKey:           setOf(rGeneric, rAWSSecret),
	kwToken:         setOf(rGeneric, rAWSSecret),
	kwIdentifiedBy:  setOf(rGeneric),
}

// acPattern is one string the automaton looks for. kw is a keyword id, or
// -1 for an encoded secret.
type acPattern struct {
	text string // ASCII-folded to lower case
	kw   int8
}

func keywordPatterns() []acPattern {
	pats := make([]acPattern, 0, numKeywords)
	for id, k := range keywords {
		pats = append(pats, acPattern{text: k, kw: int8(id)})
	}
	return pats
}

// Output flags of a state.
const (
	outSecret = 1 << iota
	outKeyword
)

// automaton states are numbered 0..n-1 while building. Scanning walks
// row offsets instead (state*nclass), and delta stores the next state's
// offset, or -offset-1 when that state has an output, so the hot loop
// needs no multiply and one well-predicted branch.
type automaton struct {
	class  [256]uint16
	nclass int
	delta  []int32 // row offset + class -> encoded next row offset
	out    []uint8 // by state
	secLen []int32 // by state: longest secret pattern ending here, or 0
	kw     []int8  // by state: keyword ending exactly here, or -1
	kwNext []int32 // by state: nearest suffix state with a keyword, or -1
	depth  []int32 // by state: length of the prefix it stands for
}

func foldByte(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

func foldString(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = foldByte(c)
	}
	return string(b)
}

func buildAutomaton(pats []acPattern) *automaton {
	a := &automaton{}

	// Give each byte that occurs in a pattern its own class; all other
	// bytes share class 0, and upper case letters share their lower case
	// letter's class.
	var seen [256]bool
	for _, p := range pats {
		for i := 0; i < len(p.text); i++ {
			seen[p.text[i]] = true
		}
	}
	n := 1
	for b := range 256 {
		if seen[b] {
			a.class[b] = uint16(n)
			n++
		}
	}
	for b := 'A'; b <= 'Z'; b++ {
		a.class[b] = a.class[b+'a'-'A']
	}
	a.nclass = n

	// Build the trie.
	a.newState(0)
	for _, p := range pats {
		st := int32(0)
		for i := 0; i < len(p.text); i++ {
			c := int(st)*n + int(a.class[p.text[i]])
			next := a.delta[c]
			if next < 0 {
				next = a.newState(int32(i + 1))
				a.delta[c] = next
			}
			st = next
		}
		if p.kw >= 0 {
			a.kw[st] = p.kw
		} else {
			a.secLen[st] = max(a.secLen[st], int32(len(p.text)))
		}
	}

	a.link()
	a.out = make([]uint8, len(a.depth))
	for st := range a.out {
		if a.secLen[st] > 0 {
			a.out[st] |= outSecret
		}
		if a.kw[st] >= 0 || a.kwNext[st] >= 0 {
			a.out[st] |= outKeyword
		}
	}
	for i, next := range a.delta {
		off := next * int32(n)
		if a.out[next] != 0 {
			off = -off - 1
		}
		a.delta[i] = off
	}
	return a
}

func (a *automaton) newState(depth int32) int32 {
	id := int32(len(a.depth))
	a.depth = append(a.depth, depth)
	a.secLen = append(a.secLen, 0)
	a.kw = append(a.kw, -1)
	for range a.nclass {
		a.delta = append(a.delta, -1)
	}
	return id
}

// link computes failure links breadth first, completes the transition
// table with them, and propagates outputs along them.
func (a *automaton) link() {
	n := a.nclass
	fail := make([]int32, len(a.depth))
	a.kwNext = make([]int32, len(a.depth))
	a.kwNext[0] = -1
	var queue []int32
	for c := range n {
		if next := a.delta[c]; next < 0 {
			a.delta[c] = 0
		} else {
			queue = append(queue, next)
		}
	}
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		f := fail[st]
		a.secLen[st] = max(a.secLen[st], a.secLen[f])
		if a.kw[f] >= 0 {
			a.kwNext[st] = f
		} else {
			a.kwNext[st] = a.kwNext[f]
		}
		for c := range n {
			i := int(st)*n + c
			if next := a.delta[i]; next < 0 {
				a.delta[i] = a.delta[int(f)*n+c]
			} else {
				fail[next] = a.delta[int(f)*n+c]
				queue = append(queue, next)
			}
		}
	}
}

// step advances the automaton from row offset off by one byte. It returns
// the new row offset and, if that state has an output, its state number.
func (a *automaton) step(off int32, c byte) (int32, int32) {
	next := a.delta[int(off)+int(a.class[c])]
	if next >= 0 {
		return next, -1
	}
	next = -next - 1
	return next, next / int32(a.nclass)
}

// state returns the state number of a row offset.
func (a *automaton) state(off int32) int32 { return off / int32(a.nclass) }

// interval is a half-open byte range.
type interval struct{ start, end int }

// hit is a keyword occurrence ending (exclusive) at end.
type hit struct {
	end int
	kw  int8
}

func (h hit) start() int { return h.end - len(keywords[h.kw]) }

// addInterval appends [start, end) to ivs, merging it with the intervals
// it overlaps. Ends arrive in increasing order.
func addInterval(ivs []interval, start, end int) []interval {
	for len(ivs) > 0 && ivs[len(ivs)-1].end > start {
		start = min(start, ivs[len(ivs)-1].start)
		ivs = ivs[:len(ivs)-1]
	}
	return append(ivs, interval{start, end})
}

var digitTab = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = 1
	}
	return t
}()

// Bits of byteInfo.
const (
	biDigit  = 1 << iota // an ASCII digit
	biB64                // a character of either base64 alphabet
	biUpper              // an upper case letter
	biNotHex             // a base64 character that is not hex (nor the x of \x, 0x)
)

// byteInfo classifies each byte for the scan.
var byteInfo = func() (t [256]uint8) {
	for c := range 256 {
		t[c] = digitTab[c]
		if charClass[c]&cB64 == 0 {
			continue
		}
		t[c] |= biB64
		if charClass[c]&cUpper != 0 {
			t[c] |= biUpper
		}
		if charClass[c]&cHex == 0 && c != 'x' {
			t[c] |= biNotHex
		}
	}
	return t
}()

// encodedCandidate reports whether a base64 run whose bytes' byteInfo
// bits add up to flags may be what candidateRun accepts: base64 of text
// has a capital letter, and hex has no other letter than a prefix's x.
func encodedCandidate(flags int) bool {
	return flags&biUpper != 0 || flags&biNotHex == 0
}

// scan runs the automaton over s, recording in sc the secret intervals,
// keyword hits, the number of ASCII digits and where runs of at least
// minEncodedRun base64 characters start that may be encoded text
// (encodedCandidate).
func (a *automaton) scan(s string, sc *scratch) {
	sc.secrets = sc.secrets[:0]
	sc.hits = sc.hits[:0]
	sc.runs = sc.runs[:0]
	off := int32(0)
	digits, run, flags := 0, 0, 0
	delta := a.delta
	for i := 0; i < len(s); i++ {
		c := s[i]
		info := int(byteInfo[c])
		digits += info & biDigit
		b64 := info >> 1 & 1
		if b64 == 0 && run >= minEncodedRun && encodedCandidate(flags) {
			sc.runs = append(sc.runs, i-run)
		}
		run = (run + 1) * b64
		flags = (flags | info) * b64
		off = delta[int(off)+int(a.class[c])]
		if off >= 0 {
			continue
		}
		off = -off - 1
		st := a.state(off)
		o := a.out[st]
		if o&outSecret != 0 {
			sc.secrets = addInterval(sc.secrets, i+1-int(a.secLen[st]), i+1)
		}
		if o&outKeyword != 0 {
			for k := st; k >= 0; k = a.kwNext[k] {
				if a.kw[k] >= 0 {
					sc.hits = append(sc.hits, hit{end: i + 1, kw: a.kw[k]})
				}
			}
		}
	}
	if run >= minEncodedRun && encodedCandidate(flags) {
		sc.runs = append(sc.runs, len(s)-run)
	}
	sc.digits = digits
}
