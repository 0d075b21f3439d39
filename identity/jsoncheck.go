package identity

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Errors returned by CheckJSON. ErrMalformedJSON maps to the JSON-RPC
// parse error; the others to invalid request.
var (
	ErrMalformedJSON = errors.New("identity: malformed json")
	ErrDuplicateKey  = errors.New("identity: duplicate object key")
	ErrTooDeep       = errors.New("identity: json nested too deeply")
	ErrTooManyTokens = errors.New("identity: too many json tokens")
	ErrNumberRange   = errors.New("identity: json number out of float64 range")
)

// errInvalidUTF8 is returned by utf8Reader and reported as malformed.
var errInvalidUTF8 = errors.New("invalid utf-8")

// CheckJSON reads one JSON value from r and rejects it when it is not
// valid JSON in valid UTF-8 (ErrMalformedJSON, also for trailing data),
// nests arrays and objects deeper than maxDepth (ErrTooDeep), has more
// than maxTokens tokens (ErrTooManyTokens), repeats an object key at any
// depth (ErrDuplicateKey), or holds a number too large for a float64
// (ErrNumberRange), which encoding/json would refuse later.
//
// Keys count as repeated when they are equal after unescaping and Unicode
// case folding, because encoding/json matches struct fields
// case-insensitively: {"name":..,"NAME":..} would let the guard and the
// tool read different values.
//
// It streams with json.Decoder.Token, so memory is bounded by maxDepth,
// maxTokens and the longest single string, whatever the input length.
func CheckJSON(r io.Reader, maxDepth, maxTokens int) error {
	if maxDepth < 1 || maxTokens < 1 {
		return errors.New("identity: CheckJSON limits must be positive")
	}
	dec := json.NewDecoder(&utf8Reader{r: r})
	dec.UseNumber()

	c := jsonChecker{maxDepth: maxDepth, maxTokens: maxTokens}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if !c.done {
				return fmt.Errorf("%w: no value", ErrMalformedJSON)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrMalformedJSON, err)
		}
		if err := c.step(tok); err != nil {
			return err
		}
	}
}

// jsonFrame is one open array or object.
type jsonFrame struct {
	object  bool
	wantKey bool                // object only: the next token is a key
	keys    map[string]struct{} // object only: folded keys seen
}

// jsonChecker follows the token stream of one JSON value.
type jsonChecker struct {
	maxDepth, maxTokens int
	stack               []jsonFrame
	tokens              int
	done                bool // the top-level value is complete
}

// step takes the next token.
func (c *jsonChecker) step(tok json.Token) error {
	if c.done {
		return fmt.Errorf("%w: data after the top-level value", ErrMalformedJSON)
	}
	c.tokens++
	if c.tokens > c.maxTokens {
		return fmt.Errorf("%w: more than %d", ErrTooManyTokens, c.maxTokens)
	}

	// A key in an object: check it, then expect its value.
	if n := len(c.stack); n > 0 && c.stack[n-1].object && c.stack[n-1].wantKey {
		top := &c.stack[n-1]
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return c.close()
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("%w: object key is not a string", ErrMalformedJSON)
		}
		folded := foldKey(key)
		if _, dup := top.keys[folded]; dup {
			return ErrDuplicateKey
		}
		top.keys[folded] = struct{}{}
		top.wantKey = false
		return nil
	}

	switch d, _ := tok.(json.Delim); d {
	case '{', '[':
		if len(c.stack) >= c.maxDepth {
			return fmt.Errorf("%w: more than %d levels", ErrTooDeep, c.maxDepth)
		}
		f := jsonFrame{object: d == '{', wantKey: d == '{'}
		if f.object {
			f.keys = make(map[string]struct{})
		}
		c.stack = append(c.stack, f)
		return nil
	case '}', ']':
		return c.close()
	}
	if n, ok := tok.(json.Number); ok {
		if _, err := n.Float64(); err != nil {
			return ErrNumberRange
		}
	}
	c.valueDone()
	return nil
}

// close pops the innermost array or object; the decoder has already
// checked that the delimiter matches.
func (c *jsonChecker) close() error {
	if len(c.stack) == 0 {
		return fmt.Errorf("%w: unbalanced delimiter", ErrMalformedJSON)
	}
	c.stack = c.stack[:len(c.stack)-1]
	c.valueDone()
	return nil
}

// valueDone records that a complete value was read.
func (c *jsonChecker) valueDone() {
	n := len(c.stack)
	if n == 0 {
		c.done = true
		return
	}
	if c.stack[n-1].object {
		c.stack[n-1].wantKey = true
	}
}

// foldKey maps s to a canonical form such that foldKey(a) == foldKey(b)
// exactly when strings.EqualFold(a, b): each rune becomes the smallest
// rune of its simple case-folding orbit.
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		// The least rune of an ASCII letter's orbit is its upper case
		// (K for k and the Kelvin sign, S for s and the long s).
		return strings.ToUpper(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// foldRune returns the smallest rune that case-folds to the same as r.
func foldRune(r rune) rune {
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return least
}

// utf8Reader passes bytes through and fails with errInvalidUTF8 at the
// first byte sequence that is not UTF-8, including one cut by the end of
// input. encoding/json would otherwise replace such bytes silently.
type utf8Reader struct {
	r       io.Reader
	pending []byte // start of a rune cut by the previous read, < 4 bytes
}

func (u *utf8Reader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	data := p[:n]

	// Complete the rune left over from the previous read.
	i := 0
	for len(u.pending) > 0 && i < n {
		u.pending = append(u.pending, data[i])
		i++
		if utf8.FullRune(u.pending) {
			if !utf8.Valid(u.pending) {
				return 0, errInvalidUTF8
			}
			u.pending = u.pending[:0]
		}
	}

	// Hold back a rune cut at the end of this read.
	end := n
	for k := n - 1; k >= i && k >= n-utf8.UTFMax+1; k-- {
		if utf8.RuneStart(data[k]) {
			if !utf8.FullRune(data[k:n]) {
				end = k
			}
			break
		}
	}
	if !utf8.Valid(data[i:end]) {
		return 0, errInvalidUTF8
	}
	u.pending = append(u.pending, data[end:n]...)

	if err == io.EOF && len(u.pending) > 0 {
		return 0, errInvalidUTF8
	}
	return n, err
}
