package masking

import "strings"

// Card numbers, US social security numbers and IBANs are found without
// keywords, by scanning digit runs; they run only when the text holds
// enough digits.

// cardMaskPrefix starts the masked form of a card number.
const cardMaskPrefix = "**** **** **** "

// numbers finds card numbers and SSNs in every chain of digit groups
// joined by single spaces or dashes ("4242 4242 4242 4242", "3714-496353-
// 98431", "123-45-6789"), and IBANs where a chain starts after two
// capitals ("DE89 3704 ...", "GB29NWBK...").
func (d *finder) numbers() {
	s := d.s
	minChain := 0 // digits a chain needs to hold a card or SSN; 0: none
	switch {
	case d.set.has(rSSN):
		minChain = minSSNDigits
	case d.set.has(rCard):
		minChain = minCardDigits
	}
	ibans := d.set.has(rIBAN)
	var buf [24]interval
	for i := 0; i < len(s); {
		if !is(s[i], cDigit) {
			i++
			continue
		}
		if ibans && i >= 2 && is(s[i-2], cUpper) && is(s[i-1], cUpper) &&
			(i == 2 || !is(s[i-3], cAlnum)) && i+1 < len(s) && is(s[i+1], cDigit) {
			if end := ibanEnd(s, i-2); end > 0 {
				d.add(i-2, end, rIBAN)
			}
		}

		groups, digits := buf[:0], 0
		j := i
		for {
			k := j
			for k < len(s) && is(s[k], cDigit) {
				k++
			}
			groups = append(groups, interval{j, k})
			digits += k - j
			if k+1 < len(s) && (s[k] == ' ' || s[k] == '-') && is(s[k+1], cDigit) {
				j = k + 1
				continue
			}
			j = k
			break
		}
		if minChain > 0 && digits >= minChain {
			d.chain(groups)
		}
		i = j
	}
}

// chain looks for cards and SSNs in one chain of digit groups. A digit
// run is never split; a chain may be split between groups.
func (d *finder) chain(groups []interval) {
	s := d.s
	lo, hi := 0, len(groups)

	// A group glued to a word, a phone number's "+" or a decimal point is
	// not a boundary: drop it. A marker's "]" counts as the digit it may
	// have replaced, and the last group of a masked card ("**** 1111") is
	// dropped too, or masking twice could find something new.
	if first := groups[0].start; first > 0 {
		c := s[first-1]
		if is(c, cAlnum) || c == '+' ||
			c == '.' && first >= 2 && (is(s[first-2], cDigit) || s[first-2] == ']') ||
			strings.HasSuffix(s[:first], cardMaskPrefix) {
			lo = 1
		}
	}
	if last := groups[hi-1].end; last < len(s) {
		c := s[last]
		if is(c, cAlnum) || c == '.' && last+1 < len(s) && is(s[last+1], cDigit) {
			hi--
		}
	}

	if d.set.has(rSSN) {
		d.ssns(groups, lo, hi)
	}
	if !d.set.has(rCard) {
		return
	}
	for g := lo; g < hi; {
		best, digits := -1, 0
		for e := g; e < hi; e++ {
			digits += groups[e].end - groups[e].start
			if digits > 19 {
				break
			}
			if digits >= 13 && cardLayout(groups[g:e+1]) && card(s, groups[g:e+1]) {
				best = e
			}
		}
		if best < 0 {
			g++
			continue
		}
		d.add(groups[g].start, groups[best].end, rCard)
		g = best + 1
	}
}

// cardLayout accepts one run of 13-19 digits, groups of four with a last
// group of one to four (4-4-4-4, 4-4-4-4-3), and the Amex and Diners
// layouts 4-6-5 and 4-6-4.
func cardLayout(gs []interval) bool {
	size := func(i int) int { return gs[i].end - gs[i].start }
	if len(gs) == 1 {
		return true // the caller checked 13-19 digits
	}
	if len(gs) == 3 && size(0) == 4 && size(1) == 6 && (size(2) == 5 || size(2) == 4) {
		return true
	}
	for i := range len(gs) - 1 {
		if size(i) != 4 {
			return false
		}
	}
	return size(len(gs)-1) <= 4
}

// card checks the issuer prefix and the Luhn sum of the digits in gs.
func card(s string, gs []interval) bool {
	var buf [19]byte
	digits := buf[:0]
	for _, g := range gs {
		digits = append(digits, s[g.start:g.end]...)
	}
	return cardPrefix(digits) && luhn(digits)
}

// cardPrefix accepts the major issuer ranges: 3 (Amex, Diners, JCB),
// 4 (Visa), 5 (Mastercard, Maestro), 6 (Discover, UnionPay, Maestro),
// and 2221-2720 (Mastercard) and 2200-2204 (Mir). Other leading digits,
// like the 1 of millisecond timestamps, are not cards.
func cardPrefix(d []byte) bool {
	switch d[0] {
	case '3', '4', '5', '6':
		return true
	case '2':
		p := int(d[0]-'0')*1000 + int(d[1]-'0')*100 + int(d[2]-'0')*10 + int(d[3]-'0')
		return p >= 2221 && p <= 2720 || p >= 2200 && p <= 2204
	}
	return false
}

func luhn(d []byte) bool {
	sum := 0
	for i := range d {
		n := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return sum%10 == 0
}

// ssns finds SSNs: runs of exactly three groups joined by dashes, 3-2-4
// digits, within the usable groups lo..hi of a chain.
func (d *finder) ssns(groups []interval, lo, hi int) {
	for g := 0; g < len(groups); {
		e := g
		for e+1 < len(groups) && d.s[groups[e].end] == '-' {
			e++
		}
		if e-g == 2 && g >= lo && e < hi && ssn(d.s, groups[g:e+1]) {
			d.add(groups[g].start, groups[e].end, rSSN)
		}
		g = e + 1
	}
}

// ssn checks a 3-2-4 dashed chain against the rules for issued numbers:
// area not 000, 666 or 900-999, group not 00, serial not 0000.
func ssn(s string, g []interval) bool {
	if g[0].end-g[0].start != 3 || g[1].end-g[1].start != 2 || g[2].end-g[2].start != 4 {
		return false
	}
	if s[g[0].end] != '-' || s[g[1].end] != '-' {
		return false
	}
	area, group, serial := s[g[0].start:g[0].end], s[g[1].start:g[1].end],
		s[g[2].start:g[2].end]
	return area != "000" && area != "666" && area[0] != '9' &&
		group != "00" && serial != "0000"
}

// ibanEnd returns the end of a valid IBAN starting at i, or -1: country
// code, check digits, the country's length (compact or in groups of four)
// and the mod-97 check. Only upper case letters are accepted.
func ibanEnd(s string, i int) int {
	var chars [34]byte
	var ends [34]int
	n, j := 0, i
	for j < len(s) && n < len(chars) {
		c := s[j]
		if is(c, cUpper|cDigit) {
			chars[n] = c
			n++
			j++
			ends[n-1] = j
			continue
		}
		if c == ' ' && n%4 == 0 && j+1 < len(s) && is(s[j+1], cUpper|cDigit) {
			j++
			continue
		}
		break
	}

	try := func(l int) bool {
		if l > n {
			return false
		}
		end := ends[l-1]
		return (end == len(s) || !is(s[end], cAlnum)) && ibanValid(chars[:l])
	}
	if l := ibanLength(chars[0], chars[1]); l > 0 {
		if try(l) {
			return ends[l-1]
		}
		return -1
	}
	for l := n; l >= 15; l-- {
		if try(l) {
			return ends[l-1]
		}
	}
	return -1
}

// ibanValid runs the mod-97 check and asks for at least 8 digits, which
// every issued IBAN has (and which the digit trigger relies on).
func ibanValid(iban []byte) bool {
	digits, rem := 0, 0
	for k := range iban {
		c := iban[(k+4)%len(iban)]
		if c >= '0' && c <= '9' {
			digits++
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A') + 10) % 97
		}
	}
	return rem == 1 && digits >= minIBANDigits
}

// ibanLengths holds the IBAN length of each registered country; a country
// not listed may have any length from 15 to 34.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16,
	"BG": 22, "BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28,
	"CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24,
	"FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
	"GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23,
	"IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
	"LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22,
	"MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
	"PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
	"SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
	"TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

var ibanLengthTab = func() (t [26 * 26]uint8) {
	for cc, l := range ibanLengths {
		t[int(cc[0]-'A')*26+int(cc[1]-'A')] = uint8(l)
	}
	return t
}()

func ibanLength(a, b byte) int {
	if a < 'A' || a > 'Z' || b < 'A' || b > 'Z' {
		return 0
	}
	return int(ibanLengthTab[int(a-'A')*26+int(b-'A')])
}
