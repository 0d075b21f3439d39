package guard

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/mcp-guard/mcp-guard/masking"
)

func newUnhider(tb testing.TB) ResultMasker {
	tb.Helper()
	m, err := masking.New(masking.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return ResultMasker{M: m}
}

// wrap breaks s into lines of n characters, as encode(..., 'base64') does
// at 76.
func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + "\n")
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}

// TestUnhideString checks the runs unhide finds in text, without a
// database: which are masked, and that what is around them stays.
func TestUnhideString(t *testing.T) {
	rm := newUnhider(t)
	secret := "write to dev.patel@tailspin.example or use card 4242 4242 4242 4242 today"
	b64 := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("padding text ", 5) + secret))
	tests := []struct {
		name   string
		in     string
		masked bool
		keep   string // must stay
	}{
		{"blank between characters", "note: " + strings.Join(strings.Split("dev.patel@tailspin.example", ""), " "), true, "note"},
		{"three-byte separator", strings.Join(strings.Split("4242424242424242", ""), "._,"), true, ""},
		{"wrapped base64", "a\n" + wrap(b64, 76) + "\nz", true, "a\n"},
		{"base64 wrapped at 64", wrap(b64, 64), true, ""},
		{"one line of base64", "value " + b64, true, "value "},
		{"spaced words", "a b c d e f g h i j", false, "a b c d e f g h i j"},
		{"plain base64", base64.StdEncoding.EncodeToString([]byte("nothing to see in this text at all")), false, "bm90aGluZ"},
		{"dotted version", "1.2.3.4.5.6.7.8.9.10", false, "1.2.3.4.5.6.7.8.9.10"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			counts := masking.Counts{}
			got, _ := rm.unhideString(tc.in, counts)
			if masked := counts["hidden_text"] > 0; masked != tc.masked {
				t.Errorf("masked %v, want %v: %q", masked, tc.masked, got)
			}
			if !strings.Contains(got, tc.keep) {
				t.Errorf("%q lost: %q", tc.keep, got)
			}
			if tc.masked && strings.Contains(got, "4 2 4 2") {
				t.Errorf("spaced card survives: %q", got)
			}
		})
	}
}

// BenchmarkUnhide measures the hidden-text pass over typical result values
// (compare BenchmarkUnhideBaseline, the value detectors on the same).
func BenchmarkUnhide(b *testing.B) {
	rm := newUnhider(b)
	counts := masking.Counts{}
	for b.Loop() {
		for _, v := range benchValues {
			rm.unhideString(v, counts)
		}
	}
}

// BenchmarkUnhideBaseline is the masker's own pass over the same values.
func BenchmarkUnhideBaseline(b *testing.B) {
	rm := newUnhider(b)
	for b.Loop() {
		for _, v := range benchValues {
			rm.M.String(v)
		}
	}
}

var benchValues = []string{"customer 1234", "user1234@shop.example", "ref-1234",
	"4111 1111 1111 1111", "d41d8cd98f00b204e9800998ecf8427e",
	"Hi, my card was declined twice today. Your app asked for our token, so I pasted it here."}
