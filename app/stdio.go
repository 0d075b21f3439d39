package app

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"time"

	"github.com/mcp-guard/mcp-guard/identity"
)

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

	buf     []byte // read ahead from r, not yet filtered
	scratch []byte // the one buffer reads go to
	rerr    error  // the error r returned, given out once buf is empty
}

func (l *lineCap) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if len(l.buf) == 0 {
			if l.rerr != nil {
				return 0, l.rerr
			}
			// Read in large chunks whatever the caller's buffer, so that
			// dropping the rest of a long line does not go byte by byte.
			if l.scratch == nil {
				l.scratch = make([]byte, 64<<10)
			}
			n, err := l.r.Read(l.scratch)
			l.buf, l.rerr = l.scratch[:n], err
			if n == 0 && err == nil {
				continue
			}
		}
		out := 0
		i := 0
		for ; i < len(l.buf) && out < len(p); i++ {
			b := l.buf[i]
			switch {
			case b == '\n':
				l.n, l.cut = 0, false
				p[out] = b
				out++
			case l.cut:
			case l.n == l.max:
				l.cut = true
				p[out] = 0x01
				out++
			default:
				l.n++
				p[out] = b
				out++
			}
		}
		l.buf = l.buf[i:]
		if out > 0 {
			return out, nil
		}
	}
}

// tokenExpiry returns the exp of a start-up token that has already been
// verified (identity.Verifier.VerifyStartupToken requires exp), so that
// stdio stops serving when the token runs out.
func tokenExpiry(raw string) (time.Time, error) {
	tok := strings.TrimSpace(raw)
	if scheme, rest, ok := strings.Cut(tok, " "); ok && strings.EqualFold(scheme, "bearer") {
		tok = strings.TrimSpace(rest)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, errors.New("token is not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, errors.New("token payload is not base64url")
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var c struct {
		Exp json.Number `json:"exp"`
	}
	if err := dec.Decode(&c); err != nil {
		return time.Time{}, errors.New("token payload is not a JSON object")
	}
	f, err := c.Exp.Float64()
	if err != nil || math.IsNaN(f) || f <= 0 || f > 1e11 {
		return time.Time{}, errors.New("token has no usable exp")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// checkedLines returns a reader that passes each stdio message through
// identity.CheckJSON, as the HTTP front does for request bodies: a message
// with a duplicate key anywhere (the guard and the tool must read the same
// value), too deep a nesting or too many tokens is replaced by a byte no
// JSON text may hold, so the server answers it with a parse error and
// keeps serving. Lines are capped by lineCap first, so at most one capped
// line is held at a time.
func checkedLines(in io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), MaxStdioMessageBytes+2)
		for sc.Scan() {
			line := sc.Bytes()
			if len(bytes.TrimSpace(line)) > 0 && identity.CheckJSON(bytes.NewReader(line),
				identity.DefaultMaxJSONDepth, identity.DefaultMaxJSONTokens) != nil {
				line = []byte{0x01}
			}
			if _, err := pw.Write(append(line, '\n')); err != nil {
				return
			}
		}
		pw.CloseWithError(sc.Err())
	}()
	return pr
}
