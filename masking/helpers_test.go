package masking

import (
	"encoding/base64"
	"strings"
	"testing"
)

// newMasker builds a Masker or fails the test.
func newMasker(t testing.TB, opts Options) *Masker {
	t.Helper()
	m, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// maskCase is one row of a detector table: in masks to want, with the
// given counts. A near miss has want == in and no counts.
type maskCase struct {
	name string
	in   string
	want string
	// counts lists rule=n pairs; empty means nothing was masked.
	counts map[string]int
}

func runMaskCases(t *testing.T, m *Masker, cases []maskCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, counts := m.String(tc.in)
			if got != tc.want {
				t.Errorf("String(%q)\n got  %q\n want %q", tc.in, got, tc.want)
			}
			if !sameCounts(counts, tc.counts) {
				t.Errorf("counts = %v, want %v", counts, tc.counts)
			}
			if again, _ := m.String(got); again != got {
				t.Errorf("masking twice changed %q to %q", got, again)
			}
		})
	}
}

func sameCounts(got Counts, want map[string]int) bool {
	if len(got) != len(want) {
		return false
	}
	for k, n := range want {
		if got[k] != n {
			return false
		}
	}
	return true
}

// jwtOf builds a JWT-shaped token from a JSON header and payload.
func jwtOf(header, payload, sig string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + sig
}

// repeat returns s repeated to exactly n bytes.
func repeat(s string, n int) string {
	return strings.Repeat(s, n/len(s)+1)[:n]
}
