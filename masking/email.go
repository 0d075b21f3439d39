package masking

import "strings"

// email finds an address around the separator s[sepStart:sepEnd] ("@" or
// its URL-encoded "%40"). The local part is the whole run of
// [A-Za-z0-9._%+-] before it, back to the previous separator at most; the
// domain needs two labels and an alphabetic top-level label, so "foo@bar",
// "user@localhost" and "pkg@1.2.3" are left alone. Addresses that share
// characters ("a@b.com@c.com") overlap and are masked as one.
//
// Nothing here depends on the length of a run or on what a neighbouring
// finding looks like once masked, so masking twice finds nothing new.
func (d *finder) email(sepStart, sepEnd int) {
	s := d.s
	i := sepStart
	for i > d.emailFloor && is(s[i-1], cLocal) {
		i--
	}
	d.emailFloor = sepEnd
	for i < sepStart && s[i] == '.' {
		i++
	}
	if i == sepStart || userinfo(s, i) {
		return
	}
	if end := domainEnd(s, sepEnd); end > 0 {
		d.add(i, end, rEmail)
	}
}

// domainEnd returns the end of the longest domain name starting at j whose
// last label is alphabetic, or -1. Labels are maximal runs of letters,
// digits and hyphens, so what follows a domain never decides whether it
// is one: masking a neighbour cannot turn a near miss into an address.
func domainEnd(s string, j int) int {
	start, end := j, -1
	for labels := 1; ; labels++ {
		k := j
		for k < len(s) && is(s[k], cLabel) {
			k++
		}
		if k == j || k-j > maxLabel || k-start > maxDomain {
			return end // an overlong label or name ends the domain before it
		}
		if labels >= 2 && k-j >= 2 && allLetters(s[j:k]) {
			end = k
		}
		if k+1 < len(s) && s[k] == '.' && is(s[k+1], cAlnum) {
			j = k + 1
			continue
		}
		return end
	}
}

// writeEmailHint writes the masked form of an address: the first
// character of the local part and of the domain, then the top-level label,
// as in "a***@n***.example". The rest of the local part and the domain
// are never shown.
func writeEmailHint(b *strings.Builder, addr string) {
	sep, n := strings.LastIndexByte(addr, '@'), 1
	if sep < 0 {
		sep, n = strings.LastIndex(addr, "%40"), 3
	}
	if sep <= 0 || sep+n >= len(addr) {
		b.WriteString(markers[rEmail]) // not an address after all
		return
	}
	domain := addr[sep+n:]
	b.WriteByte(addr[0])
	b.WriteString("***")
	b.WriteString(addr[sep : sep+n])
	b.WriteByte(domain[0])
	b.WriteString("***.")
	b.WriteString(domain[strings.LastIndexByte(domain, '.')+1:])
}

// userinfo reports whether the text before a local part starting at i is
// "scheme://user:", so the "@" ends a URL's credentials, not an address.
func userinfo(s string, i int) bool {
	if i == 0 || s[i-1] != ':' {
		return false
	}
	j := i - 1
	for j > 0 && i-j < maxToken && s[j-1] != '/' && !is(s[j-1], cStop) {
		j--
	}
	return j >= 3 && s[j-3:j] == "://"
}

func allLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if !is(s[i], cUpper|cLower) {
			return false
		}
	}
	return true
}
