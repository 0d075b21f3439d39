package guard

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestMayAssignKeepsEveryMatch checks that the cheap test in front of
// secretAssignment never skips a string the expression would change.
func TestMayAssignKeepsEveryMatch(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool // whether secretAssignment must see it
	}{
		{"assignment", "PGPASSWORD=hunter2 psql", true},
		{"lower case", "export api_key=abc", true},
		{"digit before =", "TOKEN2=x", true},
		{"folded long s", "PAſS=x", true},
		{"kelvin sign", "API_\u212aEY=x", true},
		{"sql comparison", "SELECT * FROM t WHERE key = 'x'", false},
		{"no equals", "orders", false},
		{"equals first", "=PASS", false},
		{"spaced", "TOKEN =x", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mayAssign(tc.in); got != tc.want {
				t.Errorf("mayAssign(%q) = %v, want %v", tc.in, got, tc.want)
			}
			changed := secretAssignment.ReplaceAllString(tc.in, "${1}[REDACTED]") != tc.in
			if changed && !mayAssign(tc.in) {
				t.Errorf("%q is changed by the expression but skipped", tc.in)
			}
		})
	}

	// Random strings over the characters that matter.
	parts := []string{"PASS", "pwd", "Token", "KEY", "ſ", "\u212a", "S", "_", "9", "=", " ",
		"'", "\"", ";", "x", "é", "-", "\n"}
	rng := rand.New(rand.NewPCG(1, 2))
	matched := 0
	for i := 0; i < 20000; i++ {
		var b strings.Builder
		for n := rng.IntN(10); n >= 0; n-- {
			b.WriteString(parts[rng.IntN(len(parts))])
		}
		s := b.String()
		if secretAssignment.ReplaceAllString(s, "${1}[REDACTED]") == s {
			continue
		}
		matched++
		if !mayAssign(s) {
			t.Fatalf("%q is changed by the expression but skipped", s)
		}
	}
	if matched < 100 {
		t.Fatalf("only %d random strings matched; the check proves little", matched)
	}
}
