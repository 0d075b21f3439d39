package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

func TestCheckJSON(t *testing.T) {
	hugeID := `{"jsonrpc":"2.0","id":"` + strings.Repeat("x", 900_000) + `","method":"ping"}`

	tests := []struct {
		name string
		in   string
		want error // nil: accepted
	}{
		{name: "tool call", in: `{"jsonrpc":"2.0","id":1,"method":"tools/call",` +
			`"params":{"name":"read_file","arguments":{"path":"/etc/hosts"}}}`},
		{name: "batch array", in: `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"x"}]`},
		{name: "same key in sibling objects", in: `{"a":{"k":1},"b":{"k":2},"c":[{"k":1},{"k":2}]}`},
		{name: "empty object and array", in: `{"a":{},"b":[],"c":[[]]}`},
		{name: "tiny number rounds to zero", in: `{"id":1e-400}`},
		{name: "number beyond float64", in: `{"id":1e400}`, want: ErrNumberRange},
		{name: "huge id string under the cap", in: hugeID},
		{name: "scalar top level", in: ` "x" `},
		{name: "multibyte text", in: `{"q":"grüße 日本 😀"}`},

		{name: "duplicate top-level key", in: `{"id":1,"method":"ping","id":2}`, want: ErrDuplicateKey},
		{name: "duplicate in params.arguments", in: `{"jsonrpc":"2.0","id":1,"method":"tools/call",` +
			`"params":{"name":"run_shell","arguments":{"cmd":"ls","cmd":"rm -rf /"}}}`,
			want: ErrDuplicateKey},
		{name: "duplicate through an escape", in: `{"name":1,"\u006eame":2}`, want: ErrDuplicateKey},
		{name: "duplicate by ASCII case", in: `{"method":"ping","METHOD":"tools/call"}`, want: ErrDuplicateKey},
		{name: "duplicate by Kelvin sign", in: `{"kind":1,"\u212aind":2}`, want: ErrDuplicateKey},
		{name: "duplicate by long s", in: `{"sql":1,"\u017fql":2}`, want: ErrDuplicateKey},
		{name: "duplicate deep in an array", in: `[[{"a":[{"x":1,"x":1}]}]]`, want: ErrDuplicateKey},

		{name: "too deep", in: strings.Repeat("[", 65) + strings.Repeat("]", 65), want: ErrTooDeep},
		{name: "deepest allowed", in: strings.Repeat("[", 64) + strings.Repeat("]", 64)},
		{name: "100000 open brackets", in: strings.Repeat("[", 100_000), want: ErrTooDeep},

		{name: "empty", in: ``, want: ErrMalformedJSON},
		{name: "truncated", in: `{"jsonrpc":"2.0","id":1,`, want: ErrMalformedJSON},
		{name: "missing value", in: `{"a":}`, want: ErrMalformedJSON},
		{name: "trailing comma", in: `{"a":1,}`, want: ErrMalformedJSON},
		{name: "two top-level values", in: `{"id":1} {"id":2}`, want: ErrMalformedJSON},
		{name: "trailing garbage", in: `{"id":1}x`, want: ErrMalformedJSON},
		{name: "bare word", in: `ping`, want: ErrMalformedJSON},
		{name: "invalid UTF-8 in a string", in: "{\"q\":\"a\xffb\"}", want: ErrMalformedJSON},
		{name: "UTF-8 cut at the end", in: "\"a\xe6\x97", want: ErrMalformedJSON},
		{name: "overlong UTF-8", in: "{\"q\":\"\xc0\xaf\"}", want: ErrMalformedJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckJSON(strings.NewReader(tt.in), DefaultMaxJSONDepth, DefaultMaxJSONTokens)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckJSON = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckJSON = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCheckJSONOneByteReads(t *testing.T) {
	// Runes split across reads must be joined, not reported.
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{name: "valid multibyte", in: `{"q":"grüße 日本 😀"}`, ok: true},
		{name: "invalid continuation", in: "{\"q\":\"\xe6\x41\x97\"}"},
		{name: "stray continuation", in: "{\"q\":\"\x97\"}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := iotest.OneByteReader(strings.NewReader(tt.in))
			err := CheckJSON(r, 8, 100)
			if tt.ok && err != nil {
				t.Fatalf("CheckJSON = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrMalformedJSON) {
				t.Fatalf("CheckJSON = %v, want ErrMalformedJSON", err)
			}
		})
	}
}

// endless repeats its pattern forever and counts the bytes it gave out.
type endless struct {
	head, pattern []byte
	served        int
}

func (e *endless) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		src := e.pattern
		if e.served < len(e.head) {
			src = e.head[e.served:]
		}
		k := copy(p[n:], src[:min(len(src), len(p)-n)])
		n += k
		e.served += k
	}
	return n, nil
}

func TestCheckJSONStopsEarlyOnEndlessInput(t *testing.T) {
	// An endless input can only be refused by a checker that streams: it
	// must stop after a bounded amount of input.
	tests := []struct {
		name string
		src  *endless
		want error
	}{
		{name: "endless nesting", src: &endless{pattern: []byte("[")}, want: ErrTooDeep},
		{name: "endless array", src: &endless{head: []byte("["), pattern: []byte("1,")},
			want: ErrTooManyTokens},
		{name: "endless object", src: &endless{head: []byte(`{"a":1`), pattern: []byte(`,"b":[]`)},
			want: ErrDuplicateKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckJSON(tt.src, 64, 10_000)
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckJSON = %v, want %v", err, tt.want)
			}
			if tt.src.served > 1<<20 {
				t.Errorf("read %d bytes before refusing, want under 1 MiB", tt.src.served)
			}
		})
	}
}

func TestCheckJSONLimits(t *testing.T) {
	tests := []struct {
		name              string
		maxDepth, maxToks int
		in                string
		want              error
	}{
		{name: "tokens at the limit", maxDepth: 4, maxToks: 5, in: `{"a":[]}`},
		{name: "one token over", maxDepth: 4, maxToks: 5, in: `{"a":[1]}`, want: ErrTooManyTokens},
		{name: "depth one allows flat", maxDepth: 1, maxToks: 10, in: `[1,2]`},
		{name: "depth one refuses nested", maxDepth: 1, maxToks: 10, in: `[[1]]`, want: ErrTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckJSON(strings.NewReader(tt.in), tt.maxDepth, tt.maxToks)
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckJSON = %v, want %v", err, tt.want)
			}
		})
	}
	if err := CheckJSON(strings.NewReader(`{}`), 0, 10); err == nil {
		t.Error("CheckJSON accepted a zero depth limit")
	}
}

func TestFoldKeyMatchesEqualFold(t *testing.T) {
	pairs := [][2]string{
		{"Name", "nAME"}, {"kind", "\u212aind"}, {"sql", "\u017fql"}, {"ǅ", "ǆ"},
		{"name", "names"}, {"a", "b"}, {"é", "É"}, {"ß", "ss"},
	}
	for _, p := range pairs {
		if got, want := foldKey(p[0]) == foldKey(p[1]), strings.EqualFold(p[0], p[1]); got != want {
			t.Errorf("foldKey(%q) == foldKey(%q) is %v, EqualFold says %v", p[0], p[1], got, want)
		}
	}
}

// FuzzCheckJSON checks that CheckJSON never panics, never accepts what
// encoding/json cannot parse, and never calls valid JSON malformed.
func FuzzCheckJSON(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	f.Add([]byte(`{"a":1,"A":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := CheckJSON(bytes.NewReader(data), 16, 1000)
		valid := json.Valid(data) && utf8.Valid(data)
		switch {
		case err == nil && !valid:
			t.Fatalf("accepted invalid input %q", data)
		case err == nil:
			var v any
			if uerr := json.Unmarshal(data, &v); uerr != nil {
				t.Fatalf("accepted %q but Unmarshal fails: %v", data, uerr)
			}
		case errors.Is(err, ErrMalformedJSON) && valid:
			t.Fatalf("called valid input %q malformed: %v", data, err)
		}
	})
}
