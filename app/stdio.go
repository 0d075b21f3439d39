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
