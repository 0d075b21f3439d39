package shellfacts

// sedScanner walks a GNU sed script far enough to find its commands.
type sedScanner struct {
	s     string
	i     int
	exec  bool
	write bool
}

// scanSed reports whether a GNU sed script runs a command (the e command
// or the e flag of s) or writes a file (w, W, the w flag of s). ok is false
// when the script does not scan; callers treat that as opaque.
func scanSed(script string) (exec, write, ok bool) {
	p := &sedScanner{s: script}
	ok = p.run()
	return p.exec, p.write, ok
}

func (p *sedScanner) eof() bool  { return p.i >= len(p.s) }
func (p *sedScanner) peek() byte { return p.s[p.i] }

func (p *sedScanner) skip(set string) {
	for !p.eof() && indexByte(set, p.peek()) {
		p.i++
	}
}

func indexByte(set string, b byte) bool {
	for i := 0; i < len(set); i++ {
		if set[i] == b {
			return true
		}
	}
	return false
}

func (p *sedScanner) run() bool {
	for {
		p.skip(" \t\n;")
		if p.eof() {
			return true
		}
		if !p.address() {
			return false
		}
		p.skip(" \t")
		for !p.eof() && p.peek() == '!' {
			p.i++
			p.skip(" \t")
		}
		if p.eof() {
			return false
		}
		c := p.peek()
		p.i++
		if !p.command(c) {
			return false
		}
		if c == '{' || c == '}' || c == '#' {
			continue
		}
		p.skip(" \t")
		if !p.eof() && !indexByte(";\n}#", p.peek()) {
			return false
		}
	}
}

func (p *sedScanner) command(c byte) bool {
	switch c {
	case '{', '}', '=', 'd', 'D', 'g', 'G', 'h', 'H', 'n', 'N', 'p', 'P',
		'x', 'z', 'F':
	case '#':
		p.toEOL()
	case ':', 'b', 't', 'T', 'v':
		p.skip(" \t")
		for !p.eof() && !indexByte(";\n", p.peek()) {
			p.i++
		}
	case 'q', 'Q', 'l', 'L':
		p.skip(" \t")
		p.skip("0123456789")
	case 'a', 'i', 'c':
		p.text()
	case 'r', 'R':
		p.toEOL()
	case 'w', 'W':
		p.write = true
		p.toEOL()
	case 'e':
		p.exec = true
		p.toEOL()
	case 's':
		return p.subst()
	case 'y':
		return p.delimited(2)
	default:
		return false
	}
	return true
}

// address reads an optional address or address range.
func (p *sedScanner) address() bool {
	got, ok := p.one()
	if !ok {
		return false
	}
	if !got || p.eof() || p.peek() != ',' {
		return true
	}
	p.i++
	p.skip(" \t")
	if !p.eof() && (p.peek() == '+' || p.peek() == '~') {
		p.i++
		p.skip("0123456789")
		return true
	}
	got, ok = p.one()
	return ok && got
}

// one reads a single address: a line number, first~step, $, /re/ or
// \cREc, with I and M flags after a regex.
func (p *sedScanner) one() (got, ok bool) {
	if p.eof() {
		return false, true
	}
	switch c := p.peek(); {
	case c >= '0' && c <= '9':
		p.skip("0123456789")
		if !p.eof() && p.peek() == '~' {
			p.i++
			p.skip("0123456789")
		}
	case c == '$':
		p.i++
	case c == '/' || c == '\\':
		p.i++
		delim := byte('/')
		if c == '\\' {
			if p.eof() {
				return false, false
			}
			delim = p.peek()
			p.i++
		}
		if !p.until(delim) {
			return false, false
		}
		p.skip("IM")
	default:
		return false, true
	}
	return true, true
}

// until reads up to an unescaped delim and past it.
func (p *sedScanner) until(delim byte) bool {
	for !p.eof() {
		c := p.peek()
		p.i++
		switch {
		case c == '\\':
			p.i++
		case c == delim:
			return true
		}
	}
	return false
}

func (p *sedScanner) delimited(parts int) bool {
	if p.eof() || p.peek() == '\n' || p.peek() == '\\' {
		return false
	}
	delim := p.peek()
	p.i++
	for range parts {
		if !p.until(delim) {
			return false
		}
	}
	return true
}

func (p *sedScanner) subst() bool {
	if !p.delimited(2) {
		return false
	}
	for !p.eof() {
		switch c := p.peek(); {
		case c == 'e':
			p.exec = true
		case c == 'w':
			p.write = true
			p.toEOL()
			return true
		case indexByte("gpiImM0123456789", c):
		default:
			return true
		}
		p.i++
	}
	return true
}

// text reads the text of a, i and c: to the end of the line, where a
// line ending in a backslash continues.
func (p *sedScanner) text() {
	for !p.eof() {
		c := p.peek()
		p.i++
		switch c {
		case '\\':
			p.i++
		case '\n':
			return
		}
	}
}

func (p *sedScanner) toEOL() {
	for !p.eof() && p.peek() != '\n' {
		p.i++
	}
}
