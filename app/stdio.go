package app

import "io"

// MaxStdioMessageBytes caps one stdio message (one line), as the HTTP body
// cap (http.max_body_bytes, default 1 MiB) caps a request.
const MaxStdioMessageBytes = 1 << 20

// lineCap passes stdio input through but cuts every line longer than max:
// the first max bytes pass, then a control byte that no JSON text may
// hold, and the rest of the line up to its newline is dropped. The MCP
// server so answers an overlong line with a parse error, and never holds
// more than max bytes of it.
type lineCap struct {
	r   io.Reader
	max int
	n   int  // bytes of the current line passed so far
	cut bool // the current line is over max; drop until the newline
}

func (l *lineCap) Read(p []byte) (int, error) {
	for {
		n, err := l.r.Read(p)
		// Filter in place: each byte read gives at most one byte out.
		out := p[:0]
		for _, b := range p[:n] {
			switch {
			case b == '\n':
				l.n, l.cut = 0, false
				out = append(out, b)
			case l.cut:
			case l.n == l.max:
				l.cut = true
				out = append(out, 0x01)
			default:
				l.n++
				out = append(out, b)
			}
		}
		if len(out) > 0 || err != nil || n == 0 {
			return len(out), err
		}
	}
}
