package masking

import (
	"bytes"
	"strings"
	"testing"
)

var fuzzSecrets = []string{corpusSecret, "hunter2-pw-77", "ÿsecr€t☃", " 1111;p*"}

// FuzzString checks that masking never panics, never lets an enabled
// secret through, is idempotent, and that the Writer agrees with String
// whatever the split.
func FuzzString(f *testing.F) {
	for _, s := range snippets() {
		f.Add(s, uint16(len(s)/2))
	}
	f.Add("-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----", uint16(20))
	f.Add("password='hunter2-pw-77' a@b.co 123-45-6789", uint16(9))
	f.Add("hunter2-pw-7[MASKED:secret]7", uint16(3))
	f.Add("4111111111111111;p* x", uint16(5))

	m := newMasker(f, Options{Secrets: fuzzSecrets,
		Detectors: append(DefaultDetectors(), "national_id_us_ssn")})
	f.Fuzz(func(t *testing.T, in string, split uint16) {
		out, _ := m.String(in)
		folded := foldString(out)
		for _, s := range fuzzSecrets {
			if strings.Contains(folded, foldString(s)) {
				t.Fatalf("secret %q in %q (from %q)", s, out, in)
			}
		}
		if again, _ := m.String(out); again != out {
			t.Fatalf("not idempotent:\n in    %q\n once  %q\n twice %q", in, out, again)
		}

		cut := int(split) % (len(in) + 1)
		var buf bytes.Buffer
		w := m.NewWriter(&buf)
		w.Write([]byte(in[:cut]))
		w.Write([]byte(in[cut:]))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if buf.String() != out {
			t.Fatalf("Writer split at %d gave %q, String %q (in %q)", cut, buf.String(), out, in)
		}
	})
}
