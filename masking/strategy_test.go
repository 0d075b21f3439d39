package masking

import (
	"strings"
	"testing"
	"time"
)

func TestApply(t *testing.T) {
	m := newMasker(t, Options{HashKey: []byte("0123456789abcdef-test-key")})
	cases := []struct {
		name string
		s    Strategy
		in   any
		want any
	}{
		{"redact", Strategy{Kind: StrategyRedact}, "alice@example.com", "[MASKED:column]"},
		{"redact with tag", Strategy{Kind: StrategyRedact, Tag: "email"}, 42,
			"[MASKED:email]"},
		{"null stays null", Strategy{Kind: StrategyRedact}, nil, nil},
		{"last4 card", Strategy{Kind: StrategyLast4}, "4111 1111 1111 1234", "****1234"},
		{"last4 number", Strategy{Kind: StrategyLast4}, int64(4111111111111234), "****1234"},
		{"keep 2", Strategy{Kind: StrategyLast4, Keep: 2}, "secret-99", "****99"},
		{"last is last4", Strategy{Kind: "last", Keep: 3}, "ACC-0042", "****042"},
		{"never more than half", Strategy{Kind: StrategyLast4}, "1234", "****34"},
		{"one character", Strategy{Kind: StrategyLast4}, "x", "****"},
		{"runes not bytes", Strategy{Kind: StrategyLast4, Keep: 3}, "Zoë Müller", "****ler"},
		{"unknown kind redacts", Strategy{Kind: "shuffle"}, "x", "[MASKED:column]"},
		{"bad tag redacts plainly", Strategy{Kind: StrategyRedact, Tag: "<b>"}, "x",
			"[MASKED:column]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := m.Apply(tc.s, tc.in); got != tc.want {
				t.Errorf("Apply(%+v, %v) = %v, want %v", tc.s, tc.in, got, tc.want)
			}
		})
	}
}

func TestApplyHash(t *testing.T) {
	key := []byte("0123456789abcdef-test-key")
	m := newMasker(t, Options{HashKey: key})
	h := Strategy{Kind: StrategyHash}

	a := m.Apply(h, "alice@example.com").(string)
	if !strings.HasPrefix(a, "hash:") || len(a) != len("hash:")+hashHexLen {
		t.Fatalf("hash form %q", a)
	}
	if strings.Contains(a, "alice") {
		t.Fatalf("hash %q shows the value", a)
	}
	if b := newMasker(t, Options{HashKey: key}).Apply(h, "alice@example.com"); b != a {
		t.Errorf("same key gave %v then %v", a, b)
	}
	if b := m.Apply(h, "bob@example.com"); b == a {
		t.Errorf("different values share hash %v", a)
	}
	other := newMasker(t, Options{HashKey: []byte("another-key-0123456789")})
	if b := other.Apply(h, "alice@example.com"); b == a {
		t.Errorf("different keys share hash %v", a)
	}

	// Joins: the same id as a number, a float and text hashes alike.
	n := m.Apply(h, int64(1042))
	if f, s := m.Apply(h, float64(1042)), m.Apply(h, "1042"); f != n || s != n {
		t.Errorf("1042 hashes differ: %v %v %v", n, f, s)
	}
	when := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	if m.Apply(h, when) != m.Apply(h, when.In(time.FixedZone("x", 3600))) {
		t.Error("the same instant in two zones hashes differently")
	}

	noKey := newMasker(t, Options{})
	if got := noKey.Apply(h, "alice@example.com"); got != "[MASKED:column]" {
		t.Errorf("hash without key = %v, want redaction", got)
	}
}

func TestStrategyValidate(t *testing.T) {
	cases := []struct {
		name string
		s    Strategy
		ok   bool
	}{
		{"redact", Strategy{Kind: "redact"}, true},
		{"last4 keep 6", Strategy{Kind: "last4", Keep: 6}, true},
		{"hash with tag", Strategy{Kind: "hash", Tag: "customer_id"}, true},
		{"empty kind", Strategy{}, false},
		{"unknown kind", Strategy{Kind: "rot13"}, false},
		{"negative keep", Strategy{Kind: "last4", Keep: -1}, false},
		{"huge keep", Strategy{Kind: "last4", Keep: 1000}, false},
		{"tag with markup", Strategy{Kind: "redact", Tag: "a]b"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.s.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate(%+v) = %v, want ok=%v", tc.s, err, tc.ok)
			}
		})
	}
}
