package masking

import (
	"slices"
	"strings"
	"sync"
)

// A finding is a span of text that one rule wants masked. Detectors only
// collect spans; overlapping spans are merged, and the merged span is
// named by the rule with the highest priority (lowest ruleID).
type span struct {
	start, end int
	rule       ruleID
	// merged is set when the span grew beyond the winning rule's own
	// finding; it is then redacted with the plain marker.
	merged bool
	// encoded is set on a finding inside hex or base64 text; it too is
	// redacted with the plain marker.
	encoded bool
	// open is set on a private key block whose END line is missing.
	open bool
}

// scratch holds per-call buffers, reused through a pool so the common
// case (nothing to mask) allocates nothing.
type scratch struct {
	secrets []interval
	hits    []hit
	digits  int
	runs    []int // starts of base64 runs that may be encoded text (scan)
	spans   []span
	buf     []byte
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(sc *scratch) {
	if cap(sc.hits) > 4096 || cap(sc.spans) > 4096 || cap(sc.secrets) > 4096 ||
		cap(sc.runs) > 4096 ||
		cap(sc.buf) > 2*maxEncodedRun {
		return // do not keep buffers grown by one huge input
	}
	scratchPool.Put(sc)
}

// maskString is the pipeline behind String, ScrubSecrets and the log
// handler: scrub secrets, run the detectors in set, then scrub secrets
// again in case a masked form now borders on one. changed reports whether
// anything was masked.
func (m *Masker) maskString(s string, set ruleSet, t *tally) (string, bool) {
	sc := getScratch()
	defer putScratch(sc)
	return m.maskWith(s, set, t, sc)
}

// maskWith is maskString with the caller's scratch, which it may reuse.
func (m *Masker) maskWith(s string, set ruleSet, t *tally, sc *scratch) (string, bool) {
	m.ac.scan(s, sc)
	out, changed := s, false
	if len(sc.secrets) > 0 {
		t[rSecret] += len(sc.secrets)
		out, changed = redactIntervals(s, sc.secrets), true
		if set == 0 {
			return out, true
		}
		m.ac.scan(out, sc)
	}
	if set == 0 || !mayDetect(sc, set, out) {
		return out, changed
	}

	spans := m.spans(out, sc, set, true)
	if len(spans) == 0 {
		return out, changed
	}
	out = render(out, spans, t)
	if m.rescrub {
		out = m.scrubOnly(out, t)
	}
	return out, true
}

// scrubOnly removes secrets from s and nothing else.
func (m *Masker) scrubOnly(s string, t *tally) string {
	sc := getScratch()
	defer putScratch(sc)
	m.ac.scan(s, sc)
	if len(sc.secrets) == 0 {
		return s
	}
	t[rSecret] += len(sc.secrets)
	return redactIntervals(s, sc.secrets)
}

// redactIntervals replaces each interval of s with the secret marker.
func redactIntervals(s string, ivs []interval) string {
	var b strings.Builder
	b.Grow(len(s) + len(ivs)*len(markers[rSecret]))
	last := 0
	for _, iv := range ivs {
		b.WriteString(s[last:iv.start])
		b.WriteString(markers[rSecret])
		last = iv.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// Digits a text needs before the number detectors can find anything.
const (
	minCardDigits = 13
	minSSNDigits  = 9
	minIBANDigits = 8
)

// mayDetect reports whether a scanned text s can hold any finding of set.
func mayDetect(sc *scratch, set ruleSet, s string) bool {
	for _, h := range sc.hits {
		if keywordRules[h.kw]&set != 0 {
			return true
		}
	}
	return numberRulesApply(sc.digits, set) ||
		set.has(rDecode) && hasEncodedRun(s, sc.runs)
}

func numberRulesApply(digits int, set ruleSet) bool {
	return set.has(rCard) && digits >= minCardDigits ||
		set.has(rSSN) && digits >= minSSNDigits ||
		set.has(rIBAN) && digits >= minIBANDigits
}

// spans returns the resolved findings of set in s, sorted and disjoint.
// Private key blocks split the text into segments that are searched
// separately, the same way the Writer sees them. final says that s ends
// the input (an incomplete key header at its end still counts).
func (m *Masker) spans(s string, sc *scratch, set ruleSet, final bool) []span {
	if !set.has(rPrivateKey) || !hasKeyword(sc, kwBegin) {
		return m.segmentSpans(s, sc, set)
	}

	var all []span
	pos := 0
	for pos < len(s) {
		kb, ok := findKeyBlock(s, pos, final)
		if !ok {
			break
		}
		all = m.appendSegment(all, s, pos, kb.start, set)
		all = append(all, span{start: kb.start, end: kb.end,
			rule: rPrivateKey, open: kb.open})
		pos = kb.end
	}
	return m.appendSegment(all, s, pos, len(s), set)
}

// appendSegment appends the findings in s[from:to], offset to s.
func (m *Masker) appendSegment(all []span, s string, from, to int,
	set ruleSet) []span {
	if from >= to {
		return all
	}
	sc := getScratch()
	defer putScratch(sc)
	m.ac.scan(s[from:to], sc)
	for _, sp := range m.segmentSpans(s[from:to], sc, set) {
		sp.start += from
		sp.end += from
		all = append(all, sp)
	}
	return all
}

func hasKeyword(sc *scratch, kw int8) bool {
	for _, h := range sc.hits {
		if h.kw == kw {
			return true
		}
	}
	return false
}

// segmentSpans runs the detectors on a text that holds no key block. The
// result lives in sc.spans.
func (m *Masker) segmentSpans(s string, sc *scratch, set ruleSet) []span {
	d := finder{m: m, s: s, set: set, spans: sc.spans[:0], buf: sc.buf}
	for _, h := range sc.hits {
		if keywordRules[h.kw]&set != 0 {
			d.atKeyword(h)
		}
	}
	if numberRulesApply(sc.digits, set) {
		d.numbers()
	}
	if set.has(rDecode) && len(sc.runs) > 0 {
		d.encoded(sc.runs)
	}
	sc.buf = d.buf
	sc.spans = resolve(d.spans)
	return sc.spans
}

// resolve sorts spans and merges the overlapping ones in place.
func resolve(spans []span) []span {
	if len(spans) < 2 {
		return spans
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return b.end - a.end
	})
	out := spans[:1]
	// own is the winning rule's own extent in the last output span.
	own := interval{spans[0].start, spans[0].end}
	for _, sp := range spans[1:] {
		last := &out[len(out)-1]
		if sp.start >= last.end {
			out = append(out, sp)
			own = interval{sp.start, sp.end}
			continue
		}
		last.end = max(last.end, sp.end)
		last.open = last.open || sp.open
		if sp.rule < last.rule {
			last.rule = sp.rule
			last.encoded = sp.encoded
			own = interval{sp.start, sp.end}
		}
		last.merged = own != interval{last.start, last.end}
	}
	return out
}

// render writes s with each span replaced by its masked form.
func render(s string, spans []span, t *tally) string {
	var b strings.Builder
	b.Grow(len(s) + 16*len(spans))
	last := 0
	for _, sp := range spans {
		b.WriteString(s[last:sp.start])
		writeMasked(&b, s[sp.start:sp.end], sp)
		t[sp.rule]++
		last = sp.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// writeMasked writes the masked form of the finding text.
func writeMasked(b *strings.Builder, text string, sp span) {
	if sp.merged || sp.encoded {
		b.WriteString(markers[sp.rule])
		return
	}
	switch sp.rule {
	case rEmail:
		writeEmailHint(b, text)
	case rCard:
		b.WriteString(cardMaskPrefix)
		writeLastDigits(b, text, 4)
	case rSSN:
		b.WriteString("***-**-")
		writeLastDigits(b, text, 4)
	default:
		b.WriteString(markers[sp.rule])
	}
}

// writeLastDigits writes the last n (at most 8) ASCII digits of s.
func writeLastDigits(b *strings.Builder, s string, n int) {
	var buf [8]byte
	k := len(buf)
	for i := len(s) - 1; i >= 0 && k > len(buf)-n; i-- {
		if c := s[i]; c >= '0' && c <= '9' {
			k--
			buf[k] = c
		}
	}
	b.Write(buf[k:])
}
